#!/usr/bin/env bash
# Invalidation under a hit load (issue: write-driven invalidation).
#
# wrk reads user1's cached positions (hits) for DURATION while user1 places
# ORDERS orders through the proxy. After each order's response, one GET must be
# a MISS that shows the new position. Prints how many were, the hit load, and
# how long the invalidation step (generation bump + entry drop) took in the
# proxy (from its debug log).
#
#   scripts/bench/invalidation.sh [--orders 20] [--duration 12s]
#
# Loopback only; starts the legacy simulator and cacheproxy on free ports and
# stops both on exit. Needs wrk (scripts/deps.sh --bench) and a built proxy
# (CACHEPROXY_BIN, default build-release/cacheproxy, else build/cacheproxy).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ORDERS=20
DURATION=12s
while [ $# -gt 0 ]; do
  case "$1" in
    --orders) ORDERS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "usage: $0 [--orders N] [--duration 12s]" >&2; exit 2 ;;
  esac
done
BIN=${CACHEPROXY_BIN:-}
[ -n "$BIN" ] || { [ -x "$ROOT/build-release/cacheproxy" ] && BIN=$ROOT/build-release/cacheproxy || BIN=$ROOT/build/cacheproxy; }
[ -x "$BIN" ] || { echo "no cacheproxy binary at $BIN: run scripts/build.sh Release --dir build-release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/deps.sh --bench" >&2; exit 1; }

TMP=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

SIM=$(free_port); PROXY=$(free_port)
/usr/bin/python3 "$ROOT/scripts/legacy_sim.py" --port "$SIM" --latency 0.05 >"$TMP/sim.log" 2>&1 & pids+=($!)
wait_port "$SIM"
cat >"$TMP/cacheproxy.yaml" <<YAML
listen: 127.0.0.1:$PROXY
threads: 2
upstream: { url: "http://127.0.0.1:$SIM" }
logging: { level: debug, access_log: false }
admin: { enabled: false }
rules: $ROOT/rules/trading.yaml
YAML
"$BIN" --config "$TMP/cacheproxy.yaml" >"$TMP/proxy.log" 2>&1 & pids+=($!)
wait_port "$PROXY"
printf 'wrk.headers["Authorization"] = "Bearer user1"\n' >"$TMP/auth.lua"

P="http://127.0.0.1:$PROXY/api/trading/positions?exchange=bybit&account_type=demo"
curl -s -o /dev/null -H 'Authorization: Bearer user1' "$P"
wrk -t1 -c50 -d"$DURATION" -s "$TMP/auth.lua" "$P" >"$TMP/wrk.txt" & wrk_pid=$!
sleep 1
miss=0; stale=0
for i in $(seq 1 "$ORDERS"); do
  sym="INV${i}USDT"
  curl -s -o /dev/null -H 'Authorization: Bearer user1' -H 'content-type: application/json' \
    -d "{\"exchange\":\"bybit\",\"account_type\":\"demo\",\"symbol\":\"$sym\",\"side\":\"Buy\",\"qty\":1}" \
    "http://127.0.0.1:$PROXY/api/trading/order"
  out=$(curl -s -D- -H 'Authorization: Bearer user1' "$P")
  grep -q "X-Cache: MISS" <<<"$out" && miss=$((miss + 1))
  grep -q "$sym" <<<"$out" || stale=$((stale + 1))
  sleep 0.3
done
wait "$wrk_pid"
echo "orders: $ORDERS; read right after the order's response was a MISS: $miss; missed the order (stale): $stale"
echo "hit load: $(grep -E 'Requests/sec' "$TMP/wrk.txt" | awk '{print $2}') req/s ($(grep -c 'Non-2xx' "$TMP/wrk.txt" || true) non-2xx lines)"
grep -o "dropped in [0-9.]* us" "$TMP/proxy.log" | awk '{print $3}' | sort -n |
  awk '{a[NR]=$1} END {if (NR) print "invalidation step (bump + drop):", NR, "runs, min", a[1], "us, median", a[int((NR+1)/2)], "us, max", a[NR], "us"}'
[ "$stale" -eq 0 ]
