#!/usr/bin/env bash
# A/B of two kindling binaries: warm Invoke and function URL, single client and 4 clients,
# server CPU per invoke (kindling-bench load), syscalls per invoke (strace -c -f).
set -u
OLD=$1; NEW=$2; OUT=$3; ROUNDS=${4:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
B=$root/benches/kindling-bench/target/release/kindling-bench
FN=$root/target/bench-fn/release/rust-echo
W=$(mktemp -d /tmp/hot-ab.XXXX)
AWS=${AWS:-aws}  # the aws CLI (any version)
export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1
: > "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for v in old new; do
    bin=$OLD; [ $v = new ] && bin=$NEW
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    addr=127.0.0.1:$port
    KINDLING_LOG=warn "$bin" serve --listen $addr --data-dir $W/$v-$round --isolation process --idle-timeout 600 > $W/$v-$round.log 2>&1 &
    pid=$!
    for i in $(seq 1 100); do curl -s -o /dev/null http://$addr/2015-03-31/functions && break; sleep 0.2; done
    "$B" deploy --addr $addr --rust-fn "$FN" > /dev/null
    export AWS_ENDPOINT_URL=http://$addr
    url=$("$AWS" lambda create-function-url-config --function-name echo-rs --auth-type NONE --query FunctionUrl --output text)
    "$AWS" lambda add-permission --function-name echo-rs --statement-id url --action lambda:InvokeFunctionUrl --principal '*' --function-url-auth-type NONE > /dev/null
    upath=$(python3 -c "import sys,urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).path)" "$url")
    echo "== round $round $v ($bin) load $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT"
    echo -n "invoke c1 : " >> "$OUT"; "$B" load --addr $addr --pid $pid --n 5000 --warmup 500 >> "$OUT"
    echo -n "invoke c4 : " >> "$OUT"; "$B" load --addr $addr --pid $pid --conns 4 --secs 3 >> "$OUT"
    echo -n "url    c1 : " >> "$OUT"; "$B" load --addr $addr --pid $pid --n 5000 --warmup 500 --path "$upath" >> "$OUT"
    if [ $round = 1 ]; then
      strace -c -f -p $pid -o $W/strace-$v.txt & spid=$!
      sleep 1
      "$B" load --addr $addr --pid $pid --n 1000 --warmup 0 > $W/strace-load-$v.txt
      kill -INT $spid; wait $spid 2>/dev/null
      echo "strace (1000 invokes):" >> "$OUT"; head -25 $W/strace-$v.txt >> "$OUT"
    fi
    kill $pid; wait $pid 2>/dev/null
  done
done
echo "work dir $W" >> "$OUT"
