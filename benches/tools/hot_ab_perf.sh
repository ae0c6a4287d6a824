#!/usr/bin/env bash
set -u
OLD=$1; NEW=$2; OUT=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
B=$root/benches/kindling-bench/target/release/kindling-bench
FN=$root/target/bench-fn/release/rust-echo
W=$(mktemp -d /tmp/hot-ab2.XXXX)
: > "$OUT"
for v in old new old new; do
  bin=$OLD; [ $v = new ] && bin=$NEW
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  addr=127.0.0.1:$port
  KINDLING_LOG=warn "$bin" serve --listen $addr --data-dir $W/$v-$RANDOM --isolation process --idle-timeout 600 > /dev/null 2>&1 &
  pid=$!
  for i in $(seq 1 100); do curl -s -o /dev/null http://$addr/2015-03-31/functions && break; sleep 0.2; done
  "$B" deploy --addr $addr --rust-fn "$FN" > /dev/null
  echo "== $v load $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT"
  echo -n "invoke c1 n=20000: " >> "$OUT"; "$B" load --addr $addr --pid $pid --n 20000 --warmup 500 >> "$OUT"
  echo -n "invoke c4 6s     : " >> "$OUT"; "$B" load --addr $addr --pid $pid --conns 4 --secs 6 >> "$OUT"
  if [ ! -f $W/perf-$v.data ]; then
    "$B" load --addr $addr --pid $pid --conns 4 --secs 5 > /dev/null &
    lp=$!; sleep 0.7
    perf record -q -e cpu-clock -F 2000 -g -p $pid -o $W/perf-$v.data -- sleep 3 > /dev/null 2>&1
    wait $lp
    perf report -i $W/perf-$v.data --no-children --sort sym --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -40 > $W/perf-$v.top
    perf report -i $W/perf-$v.data --children --sort sym --stdio -g none 2>/dev/null | grep -E "^ +[0-9]" > $W/perf-$v.children
  fi
  kill $pid; wait $pid 2>/dev/null
done
echo "work dir $W" >> "$OUT"
