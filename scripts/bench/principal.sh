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
set -uo pipefail
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
source "$ROOT/scripts/bench/lib.sh"
BUILD=${BUILD_DIR:-$ROOT/build}
export CACHEPROXY_BIN=${CACHEPROXY_BIN:-$BUILD/cacheproxy}
TIMING=$BUILD/principal_timing
[ -x "$CACHEPROXY_BIN" ] || die "no cacheproxy binary at $CACHEPROXY_BIN: run scripts/build.sh"
[ -x "$TIMING" ] || die "no $TIMING: build with -DCACHEPROXY_BENCH=ON"
bench_init principal $((SECONDS_MAX + 360))

echo "== invalidation step and map memory (in process, $REPS writes each)"
timeout 300 "$TIMING" --reps "$REPS" --credentials 100000

SIM=$(free_port); PROXY=$(free_port); ADMIN=$(free_port)
start_sim sim "$SIM" 0.02
cacheproxy_config "$BENCH_TMP/cacheproxy.yaml" "$PROXY" 2 "$SIM" \
  admin="enabled: true
  listen: 127.0.0.1:$ADMIN" rules="$ROOT/rules/trading.yaml"
start_cacheproxy proxy "$PROXY" "$BENCH_TMP/cacheproxy.yaml"

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
