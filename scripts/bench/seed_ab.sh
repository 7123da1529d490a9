#!/usr/bin/env bash
# The seed's own load test, through cacheproxy: ab -n 1000 -c 50 on one user's
# balance, the legacy simulator behind at 3 s per exchange call.
#
#   scripts/bench/seed_ab.sh [--requests 1000] [--concurrency 50] [--latency 3.0] [--threads-proxy N]
#
# Upstream: scripts/legacy_sim.py --latency S (every exchange route S seconds).
# cacheproxy: the shipped rules (rules/trading.yaml; balance: ttl 15s, per
# user + exchange + account_type, coalescing on), upstream pool 50, access
# log off. Then, once, cold (nobody asked for that balance before):
#
#   ab -n N -c C -H 'Authorization: Bearer user1' \
#      'http://127.0.0.1:PORT/api/trading/balance?exchange=bybit&account_type=demo'
#
# (no -k: a new connection per request, as in the seed's test). Reported:
# ab's failed requests (Connect / Receive / Length / Exceptions) and non-2xx
# answers, mean time per request (ab's "Time per request (mean)" and the mean
# of "Connection Times: Total"), ab's percentiles (p50, p99, max), requests/s,
# and the balance requests the simulator received (upstream calls). Targets
# (issue): 0 failures, 1 upstream call, mean <= 160 ms. ab's "Length"
# failures would mean the body changed between answers (it should not: it is
# one cached answer); they are reported, not hidden.
#
# Options:
#   --requests N        ab -n                                      [1000]
#   --concurrency C     ab -c                                      [50]
#   --latency S         simulator latency, seconds                 [3.0]
#   --threads-proxy N   cacheproxy worker threads                  [1]
# Env: CACHEPROXY_BIN, BENCH_KEEP_TMP=1 as for hits.sh; BENCH_RESULTS_FILE.
# Exit status: 0 with a table; 1 if ab produced no numbers.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,30s/^# \{0,1\}//p' "$0"; }

REQUESTS=1000
CONCURRENCY=50
LATENCY=3.0
PROXY_THREADS=1
bench_options seed_ab.sh "--requests:REQUESTS:count --concurrency:CONCURRENCY:count
  --latency:LATENCY:seconds --threads-proxy:PROXY_THREADS:count" "$@"
((CONCURRENCY <= REQUESTS)) || die "--concurrency must not exceed --requests"

need_tools --hint "scripts/deps.sh --bench installs apache2-utils" ab curl python3 setsid timeout

raise_nofile 8192
bench_init seed-ab 300

QS="/api/trading/balance?exchange=bybit&account_type=demo"
TOKEN="Bearer user1"

# The simulator (SIM_PORT) and cacheproxy (PROXY_PORT) with the shipped rules.
start_sim_cacheproxy seed_ab.sh "$LATENCY" "$PROXY_THREADS"

# Ready check on another user (leaves user1's balance cold), then zero the counters.
sim_ready "$LATENCY"

AB_CMD="ab -n $REQUESTS -c $CONCURRENCY -H 'Authorization: $TOKEN' 'http://127.0.0.1:PORT$QS'"
log "running: $AB_CMD"
timeout --kill-after=5 $(( 120 + REQUESTS / 10 )) ab -n "$REQUESTS" -c "$CONCURRENCY" -H "Authorization: $TOKEN" \
  "http://127.0.0.1:$PROXY_PORT$QS" >"$BENCH_TMP/ab.txt" 2>"$BENCH_TMP/ab.err" &
ab_pid=$!
BENCH_PIDS+=("$ab_pid")
wait "$ab_pid"
ab_rc=$?
((ab_rc == 0)) || { log "WARNING: ab exited $ab_rc"; cat "$BENCH_TMP/ab.err" >&2; }
sleep 0.3
UPSTREAM=$(sim_count "$SIM_PORT" balance)

# After the run: a last request is a HIT with the simulator's body.
AFTER=$(curl -sS --max-time 5 -D - -o /dev/null -H "Authorization: $TOKEN" "http://127.0.0.1:$PROXY_PORT$QS" |
  header_value x-cache)

f="$BENCH_TMP/ab.txt"
COMPLETE=$(awk '/^Complete requests:/ {print $3}' "$f")
FAILED=$(awk '/^Failed requests:/ {print $3}' "$f")
FAILED_DETAIL=$(awk '/^Failed requests:/ {getline; gsub(/^ +/, ""); print}' "$f")
[[ "$FAILED_DETAIL" == "("* ]] || FAILED_DETAIL="(none)"
NON2XX=$(awk '/^Non-2xx responses:/ {print $3}' "$f")
RPS=$(awk '/^Requests per second:/ {print $4}' "$f")
TPR=$(awk '/^Time per request:/ && /\(mean\)/ {print $4; exit}' "$f")
TOTAL_MEAN=$(awk '$1 == "Total:" {print $3}' "$f")
P50=$(awk '$1 == "50%" {print $2}' "$f")
P99=$(awk '$1 == "99%" {print $2}' "$f")
PMAX=$(awk '$1 == "100%" {print $2}' "$f")
TAKEN=$(awk '/^Time taken for tests:/ {print $5}' "$f")
FAILED=${FAILED:-NaN}; NON2XX=${NON2XX:-0}
MEAN=$(awk -v a="${TPR:-NaN}" -v b="${TOTAL_MEAN:-NaN}" 'BEGIN { if (a == "NaN") print b; else if (b == "NaN" || a + 0 >= b + 0) print a; else print b }')

echo
bench_header "the seed's load test through cacheproxy: ab -n $REQUESTS -c $CONCURRENCY on a cold balance"
echo "- setup: legacy simulator, latency ${LATENCY}s; cacheproxy --threads $PROXY_THREADS with rules/trading.yaml, pool 50, access log off"
echo "- \`$AB_CMD\` (no keep-alive: one connection per request)"
echo "- a request after the run: X-Cache: ${AFTER:-?}"
echo
echo "| complete | failed (connect, receive, length, exceptions) | non-2xx | mean ms (ab time per request) | mean ms (connection total) | p50 ms | p99 ms | max ms | req/s | test time s | upstream calls |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| ${COMPLETE:-NaN} | ${FAILED} $FAILED_DETAIL | $NON2XX | ${TPR:-NaN} | ${TOTAL_MEAN:-NaN} | ${P50:-NaN} | ${P99:-NaN} | ${PMAX:-NaN} | ${RPS:-NaN} | ${TAKEN:-NaN} | $UPSTREAM |"
echo
echo "<details><summary>ab output</summary>"
echo
echo '```'
sed -n '/^Server Software/,$p' "$f"
echo '```'
echo
echo "</details>"

bench_result seed_ab.complete "${COMPLETE:-NaN}"
bench_result seed_ab.failed "$FAILED"
bench_result seed_ab.failed_detail "$FAILED_DETAIL"
bench_result seed_ab.non2xx "$NON2XX"
bench_result seed_ab.mean_ms "$MEAN"
bench_result seed_ab.p99_ms "${P99:-NaN}"
bench_result seed_ab.upstream "$UPSTREAM"
bench_result seed_ab.requests "$REQUESTS"

if [[ -z "$COMPLETE" || -z "$TPR" ]]; then
  echo "ERROR: ab produced no numbers" >&2
  cat "$f" "$BENCH_TMP/ab.err" >&2
  exit 1
fi
if [[ "$FAILED" != 0 || "$NON2XX" != 0 ]]; then
  echo
  echo "**WARNING**: $FAILED failed requests $FAILED_DETAIL and $NON2XX non-2xx answers."
fi
exit 0
