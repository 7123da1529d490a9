#!/usr/bin/env bash
# The principal scope (issue 17): what widening a write to every token of its
# user costs, and whether a second token reads the first one's writes.
#
#   scripts/bench/principal.sh [--reps 500] [--orders 100] [--seconds 60]
#
# Prints:
#   - the invalidation step (Cache::widen + Cache::invalidate, in process) with
#     1, 10 and 100 credentials per principal: median and max over --reps writes;
#   - the credential -> principal map's memory per credential;
#   - a two-token read-your-writes check under load: the simulator and the
#     proxy (rules/trading.yaml) on loopback, background readers through both
#     tokens, --orders orders through token A, each followed at once by a read
#     through token B (and A): reads checked and stale reads (must be 0).
# Every loop is bounded in count and time. Needs a build with benchmarks
# (CACHEPROXY_BENCH, default on): BUILD_DIR (default build/) holds cacheproxy
# and principal_timing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REPS=500
ORDERS=100
SECONDS_MAX=60
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=$2; shift 2 ;;
    --orders) ORDERS=$2; shift 2 ;;
    --seconds) SECONDS_MAX=$2; shift 2 ;;
    *) echo "usage: $0 [--reps N] [--orders N] [--seconds S]" >&2; exit 2 ;;
  esac
done
BUILD=${BUILD_DIR:-$ROOT/build}
BIN=${CACHEPROXY_BIN:-$BUILD/cacheproxy}
TIMING=$BUILD/principal_timing
[ -x "$BIN" ] || { echo "no cacheproxy binary at $BIN: run scripts/build.sh" >&2; exit 1; }
[ -x "$TIMING" ] || { echo "no $TIMING: build with -DCACHEPROXY_BENCH=ON" >&2; exit 1; }

echo "== invalidation step and map memory (in process, $REPS writes each)"
timeout 300 "$TIMING" --reps "$REPS" --credentials 100000

TMP=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

SIM=$(free_port); PROXY=$(free_port); ADMIN=$(free_port)
/usr/bin/python3 "$ROOT/scripts/legacy_sim.py" --host 127.0.0.1 --port "$SIM" --latency 0.02 >"$TMP/sim.log" 2>&1 & pids+=($!)
wait_port "$SIM"
cat >"$TMP/cacheproxy.yaml" <<YAML
listen: 127.0.0.1:$PROXY
threads: 2
upstream: { url: "http://127.0.0.1:$SIM" }
logging: { level: info, access_log: false }
admin: { enabled: true, listen: 127.0.0.1:$ADMIN }
rules: $ROOT/rules/trading.yaml
YAML
"$BIN" --config "$TMP/cacheproxy.yaml" >"$TMP/proxy.log" 2>&1 & pids+=($!)
wait_port "$PROXY"

echo "== two-token read-your-writes under load (loopback, simulator latency 20 ms)"
status=0
timeout $((SECONDS_MAX + 60)) /usr/bin/python3 "$ROOT/scripts/bench/principal_ryw.py" --port "$PROXY" \
  --orders "$ORDERS" --seconds "$SECONDS_MAX" || status=$?
stats=$(curl -s --max-time 5 "http://127.0.0.1:$ADMIN/stats" || true)
/usr/bin/python3 -c '
import json, sys
p = json.loads(sys.argv[1]).get("principals", {})
print("map after the run: size %s, principals %s, learned %s, remapped %s, evicted %s, widened writes %s, unknown-writer writes %s"
      % tuple(p.get(k) for k in ("size", "principals", "learned", "remapped", "evicted", "widened_writes", "unknown_writer_writes")))
' "$stats" 2>/dev/null || echo "(no /stats)"
exit $status
