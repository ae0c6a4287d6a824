#!/usr/bin/env bash
# A/B of a machine or cgroup setting on ONE running Kindling server: the setting is switched
# between short load batches (same server, same environments, alternating turns), e.g. the
# environments' cgroup placement or a parent's CPU weight. Diagnostics, not for adoption as is.
#
#   benches/tools/warm_toggle.sh BIN ISOLATION CONNS ROUNDS 'CMD_A' 'CMD_B' [SERVE_ARGS...]
#
# CMD_A / CMD_B run through bash before each batch with SERVER_PID set (the server's pid).
# Prints per batch: the state, client count, invokes/s and the CPU / run-queue wait per invoke
# of the server, its descendants (the environments) and the client.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/benches/kindling-bench/target/release/kindling-bench
fn=$root/target/bench-fn/release/rust-echo
bin=$1 iso=$2 conns=$3 rounds=$4
declare -A cmd=([A]=$5 [B]=$6)
shift 6
work=$(mktemp -d)
. "$root/benches/tools/warm_servers.sh"
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT
start_server s "$bin" "$iso" "$@"
export SERVER_PID=${pid[s]}
max=0
for c in ${conns//,/ }; do [ "$c" -gt "$max" ] && max=$c; done
"$bench" load --addr "127.0.0.1:${port[s]}" --pid "${pid[s]}" --conns "$max" --warmup-ms 300 --secs 1 > /dev/null
for _ in $(seq 1 "$rounds"); do
  for c in ${conns//,/ }; do
    for v in A B; do
      bash -c "${cmd[$v]}"
      "$bench" load --addr "127.0.0.1:${port[s]}" --pid "${pid[s]}" --conns "$c" --warmup-ms 300 --secs 2 \
        | sed -E "s/^/$iso $v x$c /; s/ (p90|p99|max)=[0-9.]+us//g; s/429=0 fn_err=0 err=0 //"
    done
  done
done
