# Sourced by the warm-path tools (warm_pair.sh, haltpoll.sh): starts Kindling servers with the
# rust-echo function deployed and warm, and stops them at exit. Needs `bench`, `fn` (the
# load generator and the function, as `benches/run` builds them) and `work` (a scratch dir).
declare -A port pid
stop_servers() {
  for v in "${!pid[@]}"; do kill "${pid[$v]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# start_server NAME BIN ISOLATION [SERVE_ARGS...]: port[NAME], pid[NAME]; exits if it fails.
start_server() {
  local v=$1 bin=$2 iso=$3
  shift 3
  port[$v]=$(free_port)
  mkdir -p "$work/$v"
  KINDLING_LOG=warn "$bin" serve --listen "127.0.0.1:${port[$v]}" --data-dir "$work/$v" \
    --isolation "$iso" --idle-timeout 600 "$@" > "$work/$v.log" 2>&1 &
  pid[$v]=$!
  local deadline=$((SECONDS + 30))
  until curl -s -o /dev/null "http://127.0.0.1:${port[$v]}/2015-03-31/functions"; do
    [ $SECONDS -lt $deadline ] || { echo "$v did not start:"; cat "$work/$v.log"; exit 1; }
    sleep 0.1
  done
  "$bench" deploy --addr "127.0.0.1:${port[$v]}" --rust-fn "$fn" > /dev/null
  "$bench" load --addr "127.0.0.1:${port[$v]}" --pid "${pid[$v]}" --warmup 300 --n 300 > /dev/null
}
