#!/usr/bin/env bash
# Pass-through forwarding cost of cacheproxy, against nginx.
#
#   scripts/bench/forwarding.sh [--duration 10s] [--rounds 3] [--threads-proxy N[,M...]]
#
# An upstream nginx answers every request with a fixed ~150-byte balance JSON
# (return 200, keep-alive). In each round, one after the other, wrk
# (-t1 -c50 --latency) loads:
#   (a) nginx directly                  - the ceiling: no proxy hop
#   (b) cacheproxy, no rules            - pure pass-through, upstream pool of 64
#   (c) nginx proxy_pass, keepalive 64  - the same hop done by nginx
# and the report gives each target's median req/s, p50 and p99 over the rounds,
# and cacheproxy's ratios to (a) and (c), as markdown on stdout (progress on
# stderr). Options:
#   --duration D        wrk duration per run (wrk syntax: 10s, 1m)    [10s]
#   --rounds N          rounds; medians are taken over them            [3]
#   --threads-proxy N   cacheproxy worker threads                      [1]
#                       a list (1,2) runs one cacheproxy per value, each its own
#                       target (b) in the same interleaved rounds: an A/B under
#                       the same background noise
#   --connections N     wrk connections                                [50]
# Env: CACHEPROXY_BIN=path picks the binary (default: build-release/, then build/);
#      BENCH_KEEP_TMP=1 keeps the temp dir (configs, logs, raw wrk output).
# Exit status: 0 with a table; 1 if any target produced no number.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,24s/^# \{0,1\}//p' "$0"; }

DURATION=10s
ROUNDS=3
PROXY_THREADS=1
CONNECTIONS=50
bench_options forwarding.sh "--duration:DURATION:duration --rounds:ROUNDS:count
  --threads-proxy:PROXY_THREADS:threads --connections:CONNECTIONS:count" "$@"
IFS=, read -r -a THREAD_LIST <<<"$PROXY_THREADS"
export WRK_CONNECTIONS=$CONNECTIONS

need_tools nginx wrk curl python3 setsid timeout

secs=$(duration_seconds "$DURATION")
NTARGETS=$(( 2 + ${#THREAD_LIST[@]} ))
# targets x (duration + slack) per round, a 1 s warm-up each, startup.
bench_init forwarding $(( ROUNDS * NTARGETS * (secs + 15) + 120 ))

UP_PORT=$(free_port)
NGX_PROXY_PORT=$(free_port)

# ---------------------------------------------------------------- servers --

start_nginx upstream "$(balance_server "$UP_PORT")"

start_nginx_proxy nginx-proxy "$NGX_PROXY_PORT" "$UP_PORT"

QS="/api/trading/balance?exchange=bybit&account_type=demo"
TARGETS=(direct)
CP_TARGETS=()
declare -A URL=([direct]="http://127.0.0.1:$UP_PORT$QS" [nginx_proxy]="http://127.0.0.1:$NGX_PROXY_PORT$QS")
declare -A LABEL=([direct]="(a) nginx direct" [nginx_proxy]="(c) nginx proxy_pass")
for n in "${THREAD_LIST[@]}"; do
  t="cacheproxy_${n}t"
  [[ -v "URL[$t]" ]] && die "--threads-proxy: $n given twice"
  port=$(free_port)
  cacheproxy_config "$BENCH_TMP/$t.yaml" "$port" "$n" "$UP_PORT" \
    comment="forwarding.sh: pure pass-through (no rules key: nothing is cached)."
  start_cacheproxy "$t" "$port" "$BENCH_TMP/$t.yaml" "$n"
  URL[$t]="http://127.0.0.1:$port$QS"
  LABEL[$t]="(b) cacheproxy pass-through (${n}t)"
  TARGETS+=("$t"); CP_TARGETS+=("$t")
done
TARGETS+=(nginx_proxy)

# Each target must answer 200 with the upstream's body before we load it.
for t in "${TARGETS[@]}"; do
  body=$(curl -sS --max-time 5 -o - -w '\n%{http_code}' -H 'Authorization: Bearer user1' "${URL[$t]}") \
    || die "$t: curl ${URL[$t]} failed"
  code=${body##*$'\n'}
  body=${body%$'\n'*}
  [[ "$code" == 200 ]] || die "$t: expected 200, got $code from ${URL[$t]}"
  [[ "$body" == "$BALANCE_JSON" ]] || die "$t: unexpected body: $body"
done
log "all three targets answer 200 with the balance JSON"

# Warm-up (discarded): opens the pools and faults in the code paths.
for t in "${TARGETS[@]}"; do
  run_wrk "$BENCH_TMP/warmup-$t.txt" 1s "${URL[$t]}" || log "warm-up of $t: wrk exit $?"
done

# ------------------------------------------------------------------- runs --

# wrk_round fills RPS P50 P99 REQS NON2XX SOCK
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${TARGETS[@]}"; do
    wrk_round "$t" "$r" "${URL[$t]}"
    read -r rps p50 p99 _ non2xx sock <<<"$WRK_LINE"
    log "  $t: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms, non-2xx ${non2xx}, socket errors ${sock}"
    # Whatever wrk wrote about errors goes to the log as is.
    wrk_errors "$t" "$r"
  done
done

# --------------------------------------------------------------- report --

declare -A M_RPS M_P50 M_P99 T_NON2XX T_SOCK
wrk_summary "${TARGETS[@]}"

echo
bench_header "cacheproxy forwarding benchmark (pass-through, no rules)"
echo "- setup: upstream nginx \`return 200\` ${#BALANCE_JSON}-byte JSON, 1 worker; nginx proxy 1 worker, upstream keepalive 64;"
echo "  cacheproxy --threads $PROXY_THREADS$( ((${#THREAD_LIST[@]} > 1)) && echo ' (one instance each, all idle but the one loaded)'), upstream.max_connections 64, access log off;"
echo "  wrk -t${WRK_THREADS:-1} -c$CONNECTIONS -d$DURATION --latency, $ROUNDS round(s), targets interleaved in the order below in each round; medians below"
echo
echo "| target | req/s | p50 ms | p99 ms | non-2xx (all rounds) | socket errors (all rounds) |"
echo "|---|---:|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
  printf '| %s | %.0f | %.3f | %.3f | %s | %s |\n' "${LABEL[$t]}" "${M_RPS[$t]}" "${M_P50[$t]}" "${M_P99[$t]}" \
    "${T_NON2XX[$t]}" "${T_SOCK[$t]}"
done
echo
echo "| ratio | req/s | p50 | p99 |"
echo "|---|---:|---:|---:|"
for cp in "${CP_TARGETS[@]}"; do
  for base in direct nginx_proxy; do
    ratio_row "cacheproxy (${cp#cacheproxy_}) / ${LABEL[$base]#(?) }" "$cp" "$base"
  done
done
for t in "${TARGETS[@]}"; do
  wrk_results forwarding "$t"
done
# The first cacheproxy target under a fixed name, for run_all.sh.
bench_result forwarding.cacheproxy.rps "${M_RPS[${CP_TARGETS[0]}]}"
bench_result forwarding.cacheproxy.p50_ms "${M_P50[${CP_TARGETS[0]}]}"
bench_result forwarding.cacheproxy.p99_ms "${M_P99[${CP_TARGETS[0]}]}"
bench_result forwarding.cacheproxy.threads "${THREAD_LIST[0]}"
per_round_table "req/s / p50 ms / p99 ms" "RPS P50 P99" "${TARGETS[@]}"

status=0
for t in "${TARGETS[@]}"; do
  wrk_check "$t" || status=1
done
((WRK_FAILURES)) && echo && echo "**WARNING**: $WRK_FAILURES wrk run(s) exited non-zero."
exit "$status"
