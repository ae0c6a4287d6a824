#!/usr/bin/env bash
# Scheduler counters per warm invoke (benches/tools/warm_sched.py) of one Kindling binary in
# both isolation modes, servers started side by side, client counts in turns.
#
#   benches/tools/warm_sched.sh BIN [ROUNDS] [CONNS] [SERVE_ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$root/benches/kindling-bench/target/release/kindling-bench
fn=$root/target/bench-fn/release/rust-echo
bin=$1
rounds=${2:-2}
conns=${3:-4,16}
shift $(( $# < 3 ? $# : 3 ))
work=$(mktemp -d)
. "$root/benches/tools/warm_servers.sh"
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT
for iso in process namespaces; do start_server "$iso" "$bin" "$iso" "$@"; done
for r in $(seq 1 "$rounds"); do
  for iso in process namespaces; do
    python3 "$root/benches/tools/warm_sched.py" --pid "${pid[$iso]}" --addr "127.0.0.1:${port[$iso]}" \
      --bench "$bench" --conns "$conns" --label "$iso.$r" --rounds 1 ${PERF_DIR:+--perf-dir "$PERF_DIR"}
  done
done
