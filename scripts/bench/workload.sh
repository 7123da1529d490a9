#!/usr/bin/env bash
# A seed-shaped workload through cacheproxy: 1000 users (Zipf) polling
# balance / positions / ticker, 2% order POSTs, with a read-your-writes check.
#
#   scripts/bench/workload.sh [--duration 60s] [--users 1000] [--concurrency 64]
#                             [--latency 0.3] [--order-pct 2] [--threads-proxy N]
#
# Upstream: the legacy simulator, every exchange route (reads and orders) at
# --latency seconds: short enough for a 60 s run to matter, still ~1000x a
# cache hit. cacheproxy: the shipped rules (rules/trading.yaml: balance 15s
# with refresh-ahead, positions 10s, ticker 5s shared + stale-while-revalidate;
# an order invalidates the user's positions / balance / orders), pool 50.
# Load: workload_client.py (see its header): --concurrency workers on
# keep-alive connections, each operation a Zipf(s=1.1) user, 2% orders (a
# market buy of 1 on a symbol only that user trades), the rest reads weighted
# balance 35 / positions 35 / ticker 30.
#
# Reported: reads, hit ratio (X-Cache HIT or STALE over all reads, and per
# route), upstream read calls (simulator's balance + positions + ticker
# counters) and how many reads they saved, orders, and stale-after-own-write
# reads: positions reads sent after the same user's order was answered
# success that do not show it. Targets (issue): hit ratio >= 90%, 0 stale.
#
# Options:
#   --duration D        how long the load runs (60s, 1m)              [60s]
#   --users N           distinct users (Bearer user1..userN)          [1000]
#   --concurrency N     requests in flight (client connections)       [64]
#   --latency S         simulator latency per exchange call, seconds  [0.3]
#   --order-pct P       percentage of operations that are orders       [2]
#   --threads-proxy N   cacheproxy worker threads                     [1]
# Env: CACHEPROXY_BIN, BENCH_KEEP_TMP=1 as for hits.sh; BENCH_RESULTS_FILE.
# Exit status: 0 with a table; 1 if the client produced no numbers.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,33s/^# \{0,1\}//p' "$0"; }

DURATION=60s
USERS=1000
CONCURRENCY=64
LATENCY=0.3
ORDER_PCT=2
PROXY_THREADS=1
WEIGHTS="balance=35,positions=35,ticker=30"
bench_options workload.sh "--duration:DURATION:duration --users:USERS:count --concurrency:CONCURRENCY:count
  --latency:LATENCY:seconds --order-pct:ORDER_PCT:percent --threads-proxy:PROXY_THREADS:count" "$@"

need_tools --hint "" curl python3 setsid timeout

secs=$(duration_seconds "$DURATION")
raise_nofile 8192
bench_init workload $(( secs + 180 ))

# The simulator (SIM_PORT) and cacheproxy (PROXY_PORT) with the shipped rules;
# a ready check as a throw-away user, then the simulator's counters zeroed.
start_sim_cacheproxy workload.sh "$LATENCY" "$PROXY_THREADS"
sim_ready "$LATENCY"

log "workload: $USERS users, zipf 1.1, $CONCURRENCY in flight, ${ORDER_PCT}% orders, $WEIGHTS, $DURATION, upstream ${LATENCY}s"
timeout --kill-after=5 $(( secs + 60 )) python3 "$BENCH_LIB_DIR/workload_client.py" --url "http://127.0.0.1:$PROXY_PORT" \
  --users "$USERS" --zipf 1.1 --duration "$secs" --concurrency "$CONCURRENCY" --order-pct "$ORDER_PCT" \
  --weights "$WEIGHTS" >"$BENCH_TMP/client.json" 2>"$BENCH_TMP/client.err" &
cpid=$!
BENCH_PIDS+=("$cpid")
wait "$cpid"
crc=$?
((crc == 0)) || { log "WARNING: the client exited $crc"; }
cat "$BENCH_TMP/client.err" >&2
sleep 0.5   # refreshes in flight land in the counters
curl -sS --max-time 5 "http://127.0.0.1:$SIM_PORT/__sim/stats" >"$BENCH_TMP/sim-stats.json" 2>/dev/null
# shellcheck disable=SC2154  # set by start_cacheproxy
RSS=$(rss_kb "$CACHEPROXY_PID_cacheproxy")

# One python pass turns both JSON files into shell variables and table rows.
eval "$(python3 - "$BENCH_TMP/client.json" "$BENCH_TMP/sim-stats.json" <<'PY'
import json, shlex, sys
try:
    c = json.load(open(sys.argv[1]))
except Exception:
    print("CLIENT_OK=0"); sys.exit(0)
try:
    s = json.load(open(sys.argv[2]))["requests"]
except Exception:
    s = None
v = {"CLIENT_OK": 1}
reads = c["reads"]
v["READS"] = reads
v["OPS"] = c["ops"]
v["DUR"] = c["duration_s"]
v["HITS"] = c["hits"]
v["HIT_RATIO"] = "%.4f" % c["hit_ratio"] if c["hit_ratio"] is not None else "NaN"
h2 = c.get("hit_ratio_second_half")
v["HIT_RATIO2"] = "%.4f" % h2 if h2 is not None else "NaN"
v["ORDERS_OK"] = c["orders_ok"]
v["ORDERS_FAILED"] = c["orders_failed"]
v["STALE"] = c["stale_after_own_write"]
v["CHECKED"] = c["checked_reads"]
v["ERRORS"] = c["errors"]
v["NON200"] = c["non200"]
v["HIT_P50"] = c["latency_ms"]["hit"]["p50"]
v["HIT_P99"] = c["latency_ms"]["hit"]["p99"]
v["MISS_P50"] = c["latency_ms"]["miss"]["p50"]
v["MISS_P99"] = c["latency_ms"]["miss"]["p99"]
if s is not None:
    up = s["balance"] + s["positions"] + s["ticker"]
    v["UP_READS"] = up
    v["UP_ORDERS"] = s["order"]
    v["AVOIDED"] = reads - up
    v["AVOIDED_PCT"] = "%.1f" % (100.0 * (reads - up) / reads) if reads else "NaN"
else:
    v["UP_READS"] = v["UP_ORDERS"] = v["AVOIDED"] = v["AVOIDED_PCT"] = "NaN"
rows = []
for route in ("balance", "positions", "ticker"):
    n = c["reads_by_route"].get(route, 0)
    xc = c["x_cache"].get(route, {})
    h = xc.get("HIT", 0) + xc.get("STALE", 0)
    up = s[route] if s is not None else "NaN"
    rows.append("| %s | %d | %s | %s | %s |" % (route, n, "%.1f%%" % (100.0 * h / n) if n else "-",
                ", ".join("%s %d" % kv for kv in sorted(xc.items())), up))
v["ROUTE_ROWS"] = "\n".join(rows)
mc = c.get("miss_causes", {})
v["MISS_CAUSES"] = ("collapsed onto a fill in flight %s; went upstream: first read of the key %s, own order since the key's previous read %s, "
                    "other (TTL expiry / LRU eviction) %s; distinct per-user keys read: %s") % (
    mc.get("collapsed", "?"), mc.get("first_read_of_key", "?"), mc.get("own_order_since_last_read", "?"), mc.get("other", "?"),
    c.get("distinct_user_keys_read", "?"))
for k, x in v.items():
    print("%s=%s" % (k, shlex.quote(str(x))))
PY
)"
[[ "${CLIENT_OK:-0}" == 1 ]] || { cat "$BENCH_TMP/client.err" >&2; die "the workload client produced no result"; }

echo
bench_header "seed-shaped workload: $USERS users (Zipf 1.1), reads + ${ORDER_PCT}% orders, $DURATION"
echo "- setup: legacy simulator, latency ${LATENCY}s on every exchange call (reads and orders); cacheproxy --threads $PROXY_THREADS with rules/trading.yaml, pool 50"
echo "- load: workload_client.py, $CONCURRENCY requests in flight on keep-alive connections, users Bearer user1..user$USERS by Zipf(s=1.1),"
echo "  ${ORDER_PCT}% market-buy orders (qty 1 on the user's own symbol WL<k>USDT), reads $WEIGHTS (ticker: 10 symbols, Zipf)"
echo "- stale-after-own-write: a positions read sent after n of the user's orders were answered success must show a position of size >= n"
echo
echo "| reads | hit ratio (HIT+STALE) | hit ratio, 2nd half of the run | upstream read calls | reads served without an upstream call | orders ok / failed | stale-after-own-write reads (checked) | errors / non-200 | ops/s | hit p50 / p99 ms | miss p50 / p99 ms | proxy RSS at end |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '| %s | %.1f%% | %.1f%% | %s | %s (%s%%) | %s / %s | **%s** (%s) | %s / %s | %.0f | %s / %s | %s / %s | %s MiB |\n' \
  "$READS" "$(awk -v r="$HIT_RATIO" 'BEGIN {print r * 100}')" "$(awk -v r="$HIT_RATIO2" 'BEGIN {print r * 100}')" "$UP_READS" "$AVOIDED" "$AVOIDED_PCT" \
  "$ORDERS_OK" "$ORDERS_FAILED" "$STALE" "$CHECKED" "$ERRORS" "$NON200" \
  "$(awk -v o="$OPS" -v d="$DUR" 'BEGIN {print (d > 0 ? o / d : 0)}')" \
  "$HIT_P50" "$HIT_P99" "$MISS_P50" "$MISS_P99" "$(awk -v k="$RSS" 'BEGIN {printf "%.1f", k / 1024}')"
echo
echo "| route | reads | hit ratio | X-Cache | upstream calls |"
echo "|---|---:|---:|---|---:|"
echo "$ROUTE_ROWS"
echo
echo "- balance / positions reads that were not hits, by what preceded them: $MISS_CAUSES"
echo "- upstream order calls: $UP_ORDERS; miss latency includes coalesced waits and reads queued for the upstream pool (50 connections)"

bench_result workload.reads "$READS"
bench_result workload.hit_ratio "$HIT_RATIO"
bench_result workload.hit_ratio_second_half "$HIT_RATIO2"
bench_result workload.upstream_reads "$UP_READS"
bench_result workload.avoided "$AVOIDED"
bench_result workload.avoided_pct "$AVOIDED_PCT"
bench_result workload.orders_ok "$ORDERS_OK"
bench_result workload.stale "$STALE"
bench_result workload.checked "$CHECKED"
bench_result workload.errors "$(( ERRORS + NON200 ))"
bench_result workload.latency_s "$LATENCY"
bench_result workload.duration "$DURATION"

if ((ERRORS + NON200 > 0)); then
  echo
  echo "**WARNING**: $ERRORS client errors and $NON200 non-200 answers (first errors on stderr)."
fi
if ((STALE > 0)); then
  echo
  echo "**WARNING**: $STALE positions reads did not show the user's own order answered before they were sent."
fi
exit 0
