#!/usr/bin/env bash
# Coalescing: N concurrent identical cold requests against a 1 s upstream,
# cacheproxy vs nginx proxy_cache_lock.
#
#   scripts/bench/coalescing.sh [--requests 1000] [--rounds 3] [--threads-proxy N] [--latency 1.0]
#
# Upstream: the legacy simulator (scripts/legacy_sim.py) with every exchange
# route at --latency seconds; its /__sim/stats counts the balance requests
# that reach it. In front of it:
#   (a) cacheproxy with the shipped rules (rules/trading.yaml: balance per
#       user, coalesce max_waiters 10000), --threads N, upstream pool 50
#   (b) nginx proxy_cache (1 worker): key "$request_uri$http_authorization",
#       valid 200 15s, proxy_cache_lock on, proxy_cache_lock_timeout 5s,
#       upstream keepalive 64
# In each round, for each target in turn, coalesce_client.py opens N
# connections, waits 0.5 s, then sends the same GET of a balance nobody has
# asked for yet (a new user per round and target: always cold) on all of
# them at once, and records when each answer arrived (kernel receive
# timestamps). Reported per target (median over rounds, and every round):
#   upstream requests   balance requests the simulator received for the run
#   fill landed         first answer, ms after the first request was sent
#   last waiter         last answer, ms after the first request was sent
#   spread              last - first answer: how long after the fill landed
#                       the last waiter was answered
# and the status / X-Cache counts. Targets (issue): 1 upstream request, the
# last waiter answered within 1 ms of the fill.
#
# Options:
#   --requests N        concurrent identical requests                 [1000]
#   --rounds N          rounds; medians are taken over them            [3]
#   --threads-proxy N   cacheproxy worker threads                      [1]
#   --latency S         upstream latency in seconds                    [1.0]
# Env: CACHEPROXY_BIN, BENCH_KEEP_TMP=1 as for hits.sh; BENCH_RESULTS_FILE.
# Exit status: 0 with a table; 1 if a target produced no number.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,36s/^# \{0,1\}//p' "$0"; }

REQUESTS=1000
ROUNDS=3
PROXY_THREADS=1
LATENCY=1.0
bench_options coalescing.sh "--requests:REQUESTS:count --rounds:ROUNDS:count
  --threads-proxy:PROXY_THREADS:count --latency:LATENCY:seconds" "$@"

need_tools nginx curl python3 setsid timeout

raise_nofile $(( REQUESTS * 2 + 8192 ))
(( $(ulimit -n) > REQUESTS + 64 )) || die "ulimit -n is $(ulimit -n): too low for $REQUESTS connections"
bench_init coalescing $(( ROUNDS * 2 * 40 + 120 ))

CLIENT="$BENCH_LIB_DIR/coalesce_client.py"
QS="/api/trading/balance?exchange=bybit&account_type=demo"

# The simulator (SIM_PORT) and cacheproxy (PROXY_PORT) with the shipped rules.
start_sim_cacheproxy coalescing.sh "$LATENCY" "$PROXY_THREADS" "limits:
  max_client_connections: $(( REQUESTS + 1000 ))"

NGX_PORT=$(free_port)
start_nginx_cache nginx-cache "$NGX_PORT" "$SIM_PORT" valid=15s cache="proxy_cache_lock_timeout 5s;" keepalive_requests=

TARGETS=(cacheproxy nginx)
declare -A URL=([cacheproxy]="http://127.0.0.1:$PROXY_PORT$QS" [nginx]="http://127.0.0.1:$NGX_PORT$QS")
declare -A LABEL=([cacheproxy]="(a) cacheproxy (${PROXY_THREADS}t)" [nginx]="(b) nginx proxy_cache_lock")

# Both answer a (different, throw-away) user's balance before we start.
for t in "${TARGETS[@]}"; do
  code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer warm-$t" "${URL[$t]}") \
    || die "$t: warm-up request failed"
  [[ "$code" == 200 ]] || die "$t: warm-up request answered $code"
done

declare -A UP FIRST LAST SPREAD OKS XC ERRS
failures=0
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${TARGETS[@]}"; do
    user="co-$t-$r-$RANDOM"
    sim_post "$SIM_PORT" /__sim/reset || die "simulator reset failed"
    before=$(sim_count "$SIM_PORT" balance)
    log "round $r/$ROUNDS: $t, $REQUESTS concurrent requests for Bearer $user"
    out="$BENCH_TMP/round$r-$t.json"
    if ! timeout --kill-after=5 $(( 60 + REQUESTS / 50 )) python3 "$CLIENT" --url "${URL[$t]}" \
        -H "Authorization: Bearer $user" -n "$REQUESTS" >"$out" 2>"$BENCH_TMP/round$r-$t.err"; then
      log "WARNING: the client against $t failed (round $r):"; cat "$BENCH_TMP/round$r-$t.err" >&2
      failures=$((failures + 1))
    fi
    sleep 0.3   # let a late upstream request (if any) be counted
    after=$(sim_count "$SIM_PORT" balance)
    up=NaN; [[ "$before" != NaN && "$after" != NaN ]] && up=$((after - before))
    read -r first last spread ok xc errs < <(python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    xc = ",".join("%s:%d" % kv for kv in sorted(d["x_cache"].items())) or "-"
    f = lambda v: "NaN" if v is None else v
    print(f(d["first_ms"]), f(d["last_ms"]), f(d["spread_ms"]), d["ok"], xc, d["errors"])
except Exception:
    print("NaN NaN NaN 0 - NaN")' "$out")
    UP[$t]+="$up "; FIRST[$t]+="$first "; LAST[$t]+="$last "; SPREAD[$t]+="$spread "
    OKS[$t]+="$ok "; XC[$t]+="$xc "; ERRS[$t]+="$errs "
    log "  $t: upstream $up, fill landed at $first ms, last waiter at $last ms, spread $spread ms, 200s $ok/$REQUESTS, X-Cache $xc, errors $errs"
  done
done

declare -A M_FIRST M_LAST M_SPREAD
per_target median M_FIRST FIRST "${TARGETS[@]}"
per_target median M_LAST LAST "${TARGETS[@]}"
per_target median M_SPREAD SPREAD "${TARGETS[@]}"

echo
bench_header "coalescing: $REQUESTS concurrent identical cold requests, ${LATENCY} s upstream"
echo "- setup: legacy simulator, latency ${LATENCY}s; cacheproxy --threads $PROXY_THREADS with rules/trading.yaml (balance: per user, coalesce max_waiters 10000), pool 50;"
echo "  nginx proxy_cache (1 worker), key \$request_uri\$http_authorization, valid 200 15s, proxy_cache_lock on, lock_timeout 5s;"
echo "  coalesce_client.py: $REQUESTS connections opened first, then the same GET $QS (Authorization: a new user each run) sent on all at once;"
echo "  times are kernel receive timestamps, ms after the first request was sent; $ROUNDS round(s), medians below"
echo
echo "| target | upstream requests | fill landed ms | last waiter ms | spread (last - fill) ms | 200s (per round) | X-Cache (per round) | errors |"
echo "|---|---:|---:|---:|---:|---|---|---:|"
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086  # space-separated list, split on purpose
  printf '| %s | %s | %.1f | %.1f | %.3f | %s | %s | %s |\n' "${LABEL[$t]}" "$(tr ' ' '\n' <<<"${UP[$t]% }" | paste -sd, -)" \
    "${M_FIRST[$t]}" "${M_LAST[$t]}" "${M_SPREAD[$t]}" "$(tr ' ' '\n' <<<"${OKS[$t]% }" | paste -sd, -)" \
    "$(tr ' ' '\n' <<<"${XC[$t]% }" | paste -sd ' ' -)" "$(sum ${ERRS[$t]})"
done
per_round_table "upstream requests / fill landed ms / last waiter ms / spread ms" "UP FIRST LAST SPREAD" "${TARGETS[@]}"

status=0
bench_result coalescing.requests "$REQUESTS"
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086
  max_up=$(printf '%s\n' ${UP[$t]} | sort -g | tail -1)
  # shellcheck disable=SC2086
  min_ok=$(printf '%s\n' ${OKS[$t]} | sort -g | head -1)
  bench_result "coalescing.$t.upstream_max" "$max_up"
  bench_result "coalescing.$t.fill_ms" "${M_FIRST[$t]}"
  bench_result "coalescing.$t.last_ms" "${M_LAST[$t]}"
  bench_result "coalescing.$t.spread_ms" "${M_SPREAD[$t]}"
  bench_result "coalescing.$t.ok_min" "$min_ok"
  if [[ "${M_SPREAD[$t]}" == NaN ]]; then
    echo "ERROR: no timing for ${LABEL[$t]}" >&2
    status=1
  fi
  if [[ "$min_ok" != "$REQUESTS" ]]; then
    echo
    echo "**WARNING**: ${LABEL[$t]}: not every request was answered 200 in every round (200s per round: ${OKS[$t]% })."
  fi
done
((failures)) && echo && echo "**WARNING**: $failures client run(s) failed."
exit "$status"
