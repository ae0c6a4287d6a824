#!/usr/bin/env bash
# Warm invokes of a Kindling release binary (single client, then 4 clients), process and
# namespaces modes, with the VM's guest halt polling off and on (200 us), in alternating turns:
# how much of the warm path's latency and CPU is this VM's idle policy (cpuidle `haltpoll`, with
# haltpoll.guest_halt_poll_ns=0 on its kernel command line: an idle vCPU halts at once, and
# waking a task onto it is an exit to the hypervisor). Root; restores the setting at exit.
# Needs what `benches/run` builds (target/release, target/bench-fn's rust-echo, kindling-bench).
#
#   benches/tools/haltpoll.sh [KINDLING_BIN] [ROUNDS]
#
# KINDLING_ARGS adds `kindling serve` flags, e.g. KINDLING_ARGS=--cpu-latency-qos (then the
# "halt poll 0" rows show what Kindling's own CPU latency request does).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/release/kindling}
rounds=${2:-4}
bench=$root/benches/kindling-bench/target/release/kindling-bench
fn=$root/target/bench-fn/release/rust-echo
knob=/sys/module/haltpoll/parameters/guest_halt_poll_ns
orig=$(cat $knob)
work=$(mktemp -d)
. "$root/benches/tools/warm_servers.sh"
cleanup() { echo "$orig" > $knob; stop_servers; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck disable=SC2086 # KINDLING_ARGS: zero or more flags
for v in process namespaces; do start_server "$v" "$bin" "$v" ${KINDLING_ARGS:-}; done
echo "# $(date -u '+%F %T UTC') $(git -C $root rev-parse --short HEAD) ${KINDLING_ARGS:-} load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# mode        halt_poll_ns  p50_us  p99_us  srv_cpu_us  foreign%"
for _ in $(seq 1 "$rounds"); do
  for hp in 0 200000; do
    echo $hp > $knob
    for v in process namespaces; do
      out=$("$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --warmup 200 --n 4000 --max-secs 30)
      echo "$out" | sed -E "s/.*p50=([0-9.]+)us.*p99=([0-9.]+)us.*cpu\/inv: server=([0-9.]+)us.*foreign=([0-9]+)%.*/$v $hp \1 \2 \3 \4/" \
        | awk '{printf "%-12s %12s %7s %7s %11s %9s\n", $1, $2, $3, $4, $5, $6}'
    done
  done
done
echo "# mode        halt_poll_ns  rps  p50_us  p99_us  srv_cpu_us  fn_cpu_us  foreign%   (4 clients)"
for _ in $(seq 1 "$rounds"); do
  for hp in 0 200000; do
    echo $hp > $knob
    for v in process namespaces; do
      out=$("$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --conns 4 --warmup-ms 300 --secs 3)
      rps=$(echo "$out" | sed -E 's/.*rps=([0-9]+).*/\1/')
      p50=$(echo "$out" | sed -E 's/.* p50=([0-9.]+)us.*/\1/')
      p99=$(echo "$out" | sed -E 's/.* p99=([0-9.]+)us.*/\1/')
      srv=$(echo "$out" | sed -E 's/.*cpu\/inv: server=([0-9.]+)us.*/\1/')
      ch=$(echo "$out" | sed -E 's/.*cpu\/inv: server=[0-9.]+us children=([0-9.]+)us.*/\1/')
      fr=$(echo "$out" | sed -E 's/.*foreign=([0-9]+)%.*/\1/')
      printf "%-12s %12s %6s %7s %7s %11s %10s %9s\n" $v $hp $rps $p50 $p99 $srv $ch $fr
    done
  done
done
