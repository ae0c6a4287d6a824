#!/usr/bin/env bash
# The bench's floor rows next to a warm_pair.sh run, in the same window: server CPU per request of
# a bare tokio+hyper echo (one hop) and of the proxy in proxy->echo (two hops, the shape of
# client->Kindling->runtime), single client (5,000 requests) and 4 clients (2 s).
#
#   benches/tools/warm_floor.sh [ROUNDS]
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
B=$root/benches/kindling-bench/target/release/kindling-bench
rounds=${1:-3}
p1=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
p2=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
p3=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
# Waits (10 s at most) until something answers HTTP on port $1.
wait_port() {
  local deadline=$((SECONDS + 10))
  until curl -s -o /dev/null "http://127.0.0.1:$1/"; do
    [ $SECONDS -lt $deadline ] || { echo "echo server on port $1 did not start" >&2; exit 1; }
    sleep 0.05
  done
}
$B echo-serve --port $p1 > /dev/null 2>&1 & e1=$!
$B echo-serve --port $p3 > /dev/null 2>&1 & e3=$!
trap 'kill $e1 $e3 ${e2:-} 2>/dev/null' EXIT
wait_port $p1; wait_port $p3
$B echo-serve --port $p2 --upstream 127.0.0.1:$p3 > /dev/null 2>&1 & e2=$!
wait_port $p2
for r in $(seq 1 $rounds); do
  for v in echo proxy; do
    if [ $v = echo ]; then port=$p1; pid=$e1; else port=$p2; pid=$e2; fi
    s=$($B load --addr 127.0.0.1:$port --pid $pid --warmup 100 --n 5000 --max-secs 30 | sed -E 's/.*p50=([0-9.]+)us.*cpu\/inv: server=([0-9.]+)us.*foreign=([0-9]+)%.*/p50 \1 srv \2 foreign \3/')
    t=$($B load --addr 127.0.0.1:$port --pid $pid --conns 4 --warmup-ms 200 --secs 2 | sed -E 's/.*rps=([0-9]+).*cpu\/inv: server=([0-9.]+)us.*foreign=([0-9]+)%.*/rps \1 srv \2 foreign \3/')
    echo "floor $v single $s | x4 $t"
  done
done
