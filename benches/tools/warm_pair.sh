#!/usr/bin/env bash
# Server CPU per warm invoke of two Kindling binaries measured in the same run: both serve at
# once (each with the rust-echo function deployed) and short batches alternate, so both see
# the same machine load. Needs `benches/run` to have built target/bench-fn's rust-echo and
# kindling-bench.
#
#   benches/tools/warm_pair.sh OLD_BIN NEW_BIN [process|namespaces] [ROUNDS] [CONNS]
#
# CONNS: client counts of the concurrent batches, comma-separated (default 4). OLD_ARGS and
# NEW_ARGS (environment) add `kindling serve` arguments to one side, e.g. the same binary
# twice with NEW_ARGS='--worker-threads 2'.
#
# Prints per batch: isolation, which binary, single-client server CPU us/invoke and the
# foreign CPU share, then per client count the same plus invokes/s and the environments'
# (descendants') CPU us/invoke.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/benches/kindling-bench/target/release/kindling-bench
fn=$root/target/bench-fn/release/rust-echo
declare -A bin=([old]=$1 [new]=$2)
declare -A extra=([old]=${OLD_ARGS:-} [new]=${NEW_ARGS:-})
iso=${3:-process}
rounds=${4:-8}
conns=${5:-4}
work=$(mktemp -d)
. "$root/benches/tools/warm_servers.sh"
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT
max=0
for c in ${conns//,/ }; do [ "$c" -gt "$max" ] && max=$c; done
for v in old new; do
  # shellcheck disable=SC2086 # extra arguments are split on purpose
  start_server "$v" "${bin[$v]}" "$iso" ${extra[$v]}
  # Every environment the largest batch needs exists before the first timed batch.
  "$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --conns "$max" --warmup-ms 200 \
    --secs 1 > /dev/null
done
for _ in $(seq 1 "$rounds"); do
  for v in old new; do
    s=$("$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --warmup 100 --n 3000 \
      --max-secs 30 | sed -E 's/.*cpu\/inv: server=([0-9.]+)us.*foreign=([0-9]+)%.*/\1 \2/')
    line="$iso $v single $s"
    for c in ${conns//,/ }; do
      t=$("$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --conns "$c" --warmup-ms 200 \
        --secs 2 | sed -E 's/.*rps=([0-9]+).*cpu\/inv: server=([0-9.]+)us children=([0-9.]+)us.*foreign=([0-9]+)%.*/\2 \4 \1 fn \3/')
      line="$line x$c $t"
    done
    echo "$line"
  done
done
