#!/usr/bin/env bash
# The cost of metrics on the hit path: cache-hit throughput of cacheproxy with
# its per-thread stats compiled in (the normal build) against the same source
# built with -DCACHEPROXY_NO_STATS (record() and the per-request clock reads
# compiled out), in one run, interleaved.
#
#   scripts/bench/metrics_cost.sh [--duration 10s] [--rounds 3] [--threads-proxy 1]
#
# Binaries: $CACHEPROXY_BIN (stats on; default: build-release/cacheproxy, else
# build/cacheproxy) and $CACHEPROXY_NOSTATS_BIN (stats off; default: built here
# into build-nostats/ as Release with -DCACHEPROXY_NO_STATS, which takes a few
# minutes the first time). Both see the same upstream nginx (`return 200`,
# 143-byte balance JSON) and the same rules (balance, ttl 15s, per user); the
# stats-on instance also serves its admin listener, which is scraped once
# after the run to show the counters did count. wrk -t1 -c50 --latency, rounds
# interleaved (the order alternates), medians reported.
# Env: BENCH_RESULTS_FILE (KEY=VALUE lines), BENCH_KEEP_TMP=1.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; }

DURATION=10s
ROUNDS=3
PROXY_THREADS=1
bench_options metrics_cost.sh "--duration:DURATION:duration --rounds:ROUNDS:count
  --threads-proxy:PROXY_THREADS:count" "$@"
need_tools nginx wrk curl cmake setsid timeout

ON_BIN=$(cacheproxy_bin) || exit 1
if [[ -z "${CACHEPROXY_NOSTATS_BIN:-}" ]]; then
  log "building build-nostats/cacheproxy (Release, -DCACHEPROXY_NO_STATS)"
  timeout 1800 cmake -S "$BENCH_ROOT" -B "$BENCH_ROOT/build-nostats" -DCMAKE_BUILD_TYPE=Release \
    -DCACHEPROXY_TESTS=OFF -DCMAKE_CXX_FLAGS=-DCACHEPROXY_NO_STATS >/dev/null \
    || die "cmake configure of build-nostats failed"
  timeout 1800 cmake --build "$BENCH_ROOT/build-nostats" -j2 --target cacheproxy >/dev/null \
    || die "build of build-nostats/cacheproxy failed"
  CACHEPROXY_NOSTATS_BIN="$BENCH_ROOT/build-nostats/cacheproxy"
fi
[[ -x "$CACHEPROXY_NOSTATS_BIN" ]] || die "CACHEPROXY_NOSTATS_BIN=$CACHEPROXY_NOSTATS_BIN is not executable"

secs=$(duration_seconds "$DURATION")
bench_init metrics_cost $(( ROUNDS * 2 * (secs + 15) + 120 ))

UP_PORT=$(free_port)
ON_PORT=$(free_port)
OFF_PORT=$(free_port)
ADMIN_PORT=$(free_port)
PATH_QS="/api/trading/balance?exchange=bybit&account_type=demo"
TOKEN="Bearer user1"

start_nginx upstream "$(balance_server "$UP_PORT")"
wait_port "$UP_PORT" 5 || die "upstream: port $UP_PORT not accepting"

user_route_rules "$BENCH_TMP/rules.yaml" balance /api/trading/balance 15s
cacheproxy_config "$BENCH_TMP/on.yaml" "$ON_PORT" "$PROXY_THREADS" "$UP_PORT" \
  admin="listen: 127.0.0.1:$ADMIN_PORT" rules="$BENCH_TMP/rules.yaml"
cacheproxy_config "$BENCH_TMP/off.yaml" "$OFF_PORT" "$PROXY_THREADS" "$UP_PORT" rules="$BENCH_TMP/rules.yaml"
CACHEPROXY_BIN=$ON_BIN start_cacheproxy stats_on "$ON_PORT" "$BENCH_TMP/on.yaml" "$PROXY_THREADS"
CACHEPROXY_BIN=$CACHEPROXY_NOSTATS_BIN start_cacheproxy stats_off "$OFF_PORT" "$BENCH_TMP/off.yaml" "$PROXY_THREADS"

wrk_lua "$BENCH_TMP/balance.lua" "$PATH_QS" "$TOKEN"

declare -A URL=([on]="http://127.0.0.1:$ON_PORT$PATH_QS" [off]="http://127.0.0.1:$OFF_PORT$PATH_QS")
for t in on off; do   # warm: MISS then HIT
  seen=""
  for _ in 1 2; do
    st=$(curl -sS --max-time 5 -o /dev/null -D - -H "Authorization: $TOKEN" "${URL[$t]}" | header_value x-cache)
    seen+="${st:--} "
  done
  [[ "$seen" == "MISS HIT " ]] || die "stats_$t warm-up: expected MISS HIT, got $seen"
done

declare -A RPS P50 P99
for ((r = 1; r <= ROUNDS; r++)); do
  order=(on off); ((r % 2 == 0)) && order=(off on)
  for t in "${order[@]}"; do
    log "round $r/$ROUNDS: stats $t for $DURATION"
    run_wrk "$BENCH_TMP/wrk.$t.$r" "$DURATION" "${URL[$t]}" -s "$BENCH_TMP/balance.lua" \
      || die "wrk failed for stats $t: $(tail -3 "$BENCH_TMP/wrk.$t.$r")"
    read -r rps p50 p99 _ non2xx sock < <(wrk_parse "$BENCH_TMP/wrk.$t.$r")
    ((non2xx == 0 && sock == 0)) || die "stats $t: $non2xx non-2xx, $sock socket errors"
    RPS[$t]+="$rps "; P50[$t]+="$p50 "; P99[$t]+="$p99 "
    log "  stats $t: $rps req/s, p50 $p50 ms, p99 $p99 ms"
  done
done

hits_counted=$(curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/stats" \
  | python3 -c 'import json,sys; r=json.load(sys.stdin)["routes"][0]; print(r["requests"], "requests, by cache status", json.dumps(r["responses"]["by_cache"]))' 2>/dev/null || echo "?")

# shellcheck disable=SC2086  # word splitting on purpose
{ m_on=$(median ${RPS[on]}); m_off=$(median ${RPS[off]});
  p50_on=$(median ${P50[on]}); p50_off=$(median ${P50[off]});
  p99_on=$(median ${P99[on]}); p99_off=$(median ${P99[off]}); }
cost=$(awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%.1f", (b - a) / b * 100 }')

bench_header "cost of metrics on the hit path (stats compiled in vs -DCACHEPROXY_NO_STATS)"
cat <<EOF
- setup: upstream nginx \`return 200\` 143-byte JSON; two cacheproxy instances, --threads $PROXY_THREADS, rule balance ttl 15s per user, access log off;
  stats on: $ON_BIN (admin listener on, scraped after the run);
  stats off: $CACHEPROXY_NOSTATS_BIN (-DCACHEPROXY_NO_STATS: no counters, no histograms, no per-request clock read);
  wrk -t1 -c50 -d$DURATION --latency, $ROUNDS round(s), interleaved; medians below
- what the stats-on instance counted on the balance route (its /stats after the run): $hits_counted

| build | req/s | p50 ms | p99 ms | per round req/s |
|---|---:|---:|---:|---|
| stats on (normal build) | $m_on | $p50_on | $p99_on | ${RPS[on]} |
| stats compiled out | $m_off | $p50_off | $p99_off | ${RPS[off]} |

Throughput cost of metrics: **$cost %** (on/off = $(ratio "$m_on" "$m_off")).
EOF
bench_result metrics_cost.on.rps "$m_on"
bench_result metrics_cost.off.rps "$m_off"
bench_result metrics_cost.cost_pct "$cost"
