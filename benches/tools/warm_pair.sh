#!/usr/bin/env bash
# Server CPU per warm invoke of two Kindling binaries measured in the same run: both serve at
# once (each with the rust-echo function deployed) and short batches alternate, so both see
# the same machine load. Needs `benches/run` to have built target/bench-fn's rust-echo and
# kindling-bench.
#
#   benches/tools/warm_pair.sh OLD_BIN NEW_BIN [process|namespaces] [ROUNDS]
#
# Prints per batch: isolation, which binary, single-client server CPU us/invoke and the
# foreign CPU share, then the same at 4 clients plus invokes/s.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/benches/kindling-bench/target/release/kindling-bench
fn=$root/target/bench-fn/release/rust-echo
declare -A bin=([old]=$1 [new]=$2)
iso=${3:-process}
rounds=${4:-8}
work=$(mktemp -d)
declare -A port pid
cleanup() {
  for v in old new; do [ -n "${pid[$v]:-}" ] && kill "${pid[$v]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
for v in old new; do
  port[$v]=$(free_port)
  mkdir -p "$work/$v"
  KINDLING_LOG=warn "${bin[$v]}" serve --listen "127.0.0.1:${port[$v]}" --data-dir "$work/$v" \
    --isolation "$iso" --idle-timeout 600 > "$work/$v.log" 2>&1 &
  pid[$v]=$!
  deadline=$((SECONDS + 30))
  until curl -s -o /dev/null "http://127.0.0.1:${port[$v]}/2015-03-31/functions"; do
    [ $SECONDS -lt $deadline ] || { echo "$v did not start:"; cat "$work/$v.log"; exit 1; }
    sleep 0.1
  done
  "$bench" deploy --addr "127.0.0.1:${port[$v]}" --rust-fn "$fn" > /dev/null
  "$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --warmup 300 --n 300 > /dev/null
done
for _ in $(seq 1 "$rounds"); do
  for v in old new; do
    s=$("$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --warmup 100 --n 3000 \
      --max-secs 30 | sed -E 's/.*cpu\/inv: server=([0-9.]+)us.*foreign=([0-9]+)%.*/\1 \2/')
    t=$("$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --conns 4 --warmup-ms 200 \
      --secs 2 | sed -E 's/.*rps=([0-9]+).*cpu\/inv: server=([0-9.]+)us.*foreign=([0-9]+)%.*/\2 \3 \1/')
    echo "$iso $v single $s four $t"
  done
done
