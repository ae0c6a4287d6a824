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
. "$root/benches/tools/warm_servers.sh"
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT
for v in old new; do start_server "$v" "${bin[$v]}" "$iso"; done
for _ in $(seq 1 "$rounds"); do
  for v in old new; do
    s=$("$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --warmup 100 --n 3000 \
      --max-secs 30 | sed -E 's/.*cpu\/inv: server=([0-9.]+)us.*foreign=([0-9]+)%.*/\1 \2/')
    t=$("$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --conns 4 --warmup-ms 200 \
      --secs 2 | sed -E 's/.*rps=([0-9]+).*cpu\/inv: server=([0-9.]+)us.*foreign=([0-9]+)%.*/\2 \3 \1/')
    echo "$iso $v single $s four $t"
  done
done
