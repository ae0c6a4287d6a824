#!/usr/bin/env bash
# Counts what one warm invoke costs Kindling's server, independent of machine load: system
# calls per invoke (strace -c, single client and 4 clients), heap allocations per invoke (perf
# uprobes on libc's malloc/realloc/calloc, single client) and a profile at 4 clients
# (perf record -g, kernel/user shares). Needs root (uprobes), perf, strace, and `benches/run`
# to have built target/bench-fn's rust-echo and kindling-bench.
#
#   benches/tools/warm_costs.sh BIN OUTDIR [process|namespaces]
#
# Writes OUTDIR/summary.txt (the per-invoke figures) next to the raw outputs.
set -euo pipefail
bin=$1
out=$2
iso=${3:-process}
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/benches/kindling-bench/target/release/kindling-bench
fn=$root/target/bench-fn/release/rust-echo
libc=$(ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}')
mkdir -p "$out"
work=$(mktemp -d)
pid=
probes=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  [ -n "$probes" ] && perf probe -q -d 'probe_libc:*' 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
addr=127.0.0.1:$port
KINDLING_LOG=warn "$bin" serve --listen "$addr" --data-dir "$work/data" --isolation "$iso" \
  --idle-timeout 600 > "$work/server.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 30))
until curl -s -o /dev/null "http://$addr/2015-03-31/functions"; do
  [ $SECONDS -lt $deadline ] || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
"$bench" deploy --addr "$addr" --rust-fn "$fn" > /dev/null
"$bench" load --addr "$addr" --pid "$pid" --n 2000 --warmup 500 > /dev/null
"$bench" load --addr "$addr" --pid "$pid" --conns 4 --secs 2 > /dev/null

# System calls: strace -c over the whole process, divided by the invokes the load answered
# (no warm-up inside the window).
syscalls() { # NAME LOAD-ARGS...
  local name=$1
  shift
  strace -f -c -p "$pid" -o "$out/strace-$name.txt" &
  local sp=$!
  sleep 1
  "$bench" load --addr "$addr" --pid "$pid" "$@" > "$out/strace-$name.load"
  sleep 0.3
  kill -INT "$sp"
  wait "$sp" 2>/dev/null || true
}
syscalls c1 --n 2000 --warmup 0
syscalls c4 --conns 4 --secs 2 --warmup-ms 0

# Allocations, single client.
if ! perf probe -l 2>/dev/null | grep -q 'probe_libc:malloc'; then
  perf probe -q -x "$libc" -a malloc -a realloc -a calloc && probes=1
fi
perf stat -e probe_libc:malloc,probe_libc:realloc,probe_libc:calloc -p "$pid" \
  -o "$out/allocs-c1.txt" &
pp=$!
sleep 0.5
"$bench" load --addr "$addr" --pid "$pid" --n 2000 --warmup 0 > "$out/allocs-c1.load"
sleep 0.3
kill -INT "$pp"
wait "$pp" 2>/dev/null || true

# Profile at 4 clients (frame-pointer stacks: the kernel's are complete, user space is per symbol).
"$bench" load --addr "$addr" --pid "$pid" --conns 4 --secs 7 > "$out/perf-c4.load" &
lp=$!
sleep 1
perf record -q -e cpu-clock -F 4000 -g -p "$pid" -o "$out/perf.data" -- sleep 5 > /dev/null 2>&1
wait "$lp"

{
  echo "binary $bin, --isolation $iso, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for name in c1 c4; do
    n=$(sed -E 's/^ok=([0-9]+).*/\1/' "$out/strace-$name.load")
    awk -v name="$name" -v n="$n" '
      $NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ { calls[$NF] = $4 }
      END {
        if (n == 0) { print name ": no invokes answered"; exit }
        total = 0; line = ""
        for (s in calls) if (s != "total") { total += calls[s]; if (calls[s] / n >= 0.01) line = line sprintf(" %s %.2f", s, calls[s] / n) }
        printf "syscalls per invoke (%s, %d invokes): %.2f:%s\n", name, n, total / n, line
      }' "$out/strace-$name.txt"
  done
  n=$(sed -E 's/^ok=([0-9]+).*/\1/' "$out/allocs-c1.load")
  awk -v n="$n" '/probe_libc/ { gsub(",", "", $1); a[$2] = $1 }
    END { printf "allocations per invoke (c1, %d invokes): malloc %.1f realloc %.1f calloc %.1f\n",
          n, a["probe_libc:malloc"] / n, a["probe_libc:realloc"] / n, a["probe_libc:calloc"] / n }' \
    "$out/allocs-c1.txt"
  perf report -i "$out/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null |
    awk '/^ +[0-9.]+%/ { gsub("%", "", $1); if ($2 == "[k]") k += $1; else u += $1 }
      END { printf "profile at 4 clients: kernel %.1f %%, user %.1f %% of the server samples\n", k, u }'
  perf report -i "$out/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
    grep -E '\] (__GI___writev|epoll_wait|__libc_recv|__GI___libc_write|__libc_pread|sock_def_readable|exit_to_user_mode_loop)$' |
    awk '{ printf "  inclusive %-8s %s\n", $1, $NF }'
  echo "load: $(cat "$out/perf-c4.load")"
} | tee "$out/summary.txt"
