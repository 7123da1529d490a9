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
BENCH_COMMAND="scripts/bench/forwarding.sh${*:+ $*}"

while (($#)); do
  case "$1" in
    --duration) DURATION=${2:?--duration needs a value}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift ;;
    --threads-proxy) PROXY_THREADS=${2:?--threads-proxy needs a value}; shift ;;
    --connections) CONNECTIONS=${2:?--connections needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "forwarding.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
valid_duration "$DURATION" || die "--duration: expected e.g. 10s or 1m, got '$DURATION'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds: expected a positive integer"
[[ "$PROXY_THREADS" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--threads-proxy: expected N or a list N,M"
IFS=, read -r -a THREAD_LIST <<<"$PROXY_THREADS"
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || die "--connections: expected a positive integer"
export WRK_CONNECTIONS=$CONNECTIONS

for tool in nginx wrk curl python3 setsid timeout; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh --bench installs the bench tools)"
done

secs=$(duration_seconds "$DURATION")
NTARGETS=$(( 2 + ${#THREAD_LIST[@]} ))
# targets x (duration + slack) per round, a 1 s warm-up each, startup.
bench_init forwarding $(( ROUNDS * NTARGETS * (secs + 15) + 120 ))

UP_PORT=$(free_port)
NGX_PROXY_PORT=$(free_port)

# ---------------------------------------------------------------- servers --

start_nginx upstream "
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;
        access_log off;
        location / {
            default_type application/json;
            return 200 '$BALANCE_JSON';
        }
    }"

start_nginx nginx-proxy "
    server {
        listen 127.0.0.1:$NGX_PROXY_PORT backlog=4096;
        access_log off;
        location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }" "
    upstream u {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }"

QS="/api/trading/balance?exchange=bybit&account_type=demo"
TARGETS=(direct)
CP_TARGETS=()
declare -A URL=([direct]="http://127.0.0.1:$UP_PORT$QS" [nginx_proxy]="http://127.0.0.1:$NGX_PROXY_PORT$QS")
declare -A LABEL=([direct]="(a) nginx direct" [nginx_proxy]="(c) nginx proxy_pass")
for n in "${THREAD_LIST[@]}"; do
  t="cacheproxy_${n}t"
  [[ -v "URL[$t]" ]] && die "--threads-proxy: $n given twice"
  port=$(free_port)
  cat >"$BENCH_TMP/$t.yaml" <<EOF
# forwarding.sh: pure pass-through (no rules key: nothing is cached).
listen: 127.0.0.1:$port
threads: $n
upstream:
  url: http://127.0.0.1:$UP_PORT
  max_connections: 64
logging:
  level: warn
  access_log: false
admin:
  enabled: false
EOF
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

declare -A RPS P50 P99 NON2XX SOCK REQS
failures=0
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${TARGETS[@]}"; do
    out="$BENCH_TMP/round$r-$t.txt"
    log "round $r/$ROUNDS: $t for $DURATION"
    if ! run_wrk "$out" "$DURATION" "${URL[$t]}"; then
      log "WARNING: wrk against $t exited non-zero (round $r); output:"
      cat "$out" >&2
      failures=$((failures + 1))
    fi
    read -r rps p50 p99 reqs non2xx sock < <(wrk_parse "$out")
    RPS[$t]+="$rps "; P50[$t]+="$p50 "; P99[$t]+="$p99 "
    REQS[$t]+="$reqs "; NON2XX[$t]+="$non2xx "; SOCK[$t]+="$sock "
    log "  $t: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms, non-2xx ${non2xx}, socket errors ${sock}"
    # Whatever wrk wrote about errors goes to the log as is.
    grep -E 'Non-2xx|Socket errors' "$out" | sed "s/^/  $t round $r: /" >&2
  done
done

# --------------------------------------------------------------- report --

declare -A M_RPS M_P50 M_P99 T_NON2XX T_SOCK
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086  # space-separated lists, split on purpose
  M_RPS[$t]=$(median ${RPS[$t]})
  # shellcheck disable=SC2086  # space-separated lists, split on purpose
  M_P50[$t]=$(median ${P50[$t]})
  # shellcheck disable=SC2086  # space-separated lists, split on purpose
  M_P99[$t]=$(median ${P99[$t]})
  # shellcheck disable=SC2086  # space-separated lists, split on purpose
  T_NON2XX[$t]=$(sum ${NON2XX[$t]})
  # shellcheck disable=SC2086  # space-separated lists, split on purpose
  T_SOCK[$t]=$(sum ${SOCK[$t]})
done

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
    printf '| cacheproxy (%s) / %s | %s | %s | %s |\n' "${cp#cacheproxy_}" "${LABEL[$base]#(?) }" \
      "$(ratio "${M_RPS[$cp]}" "${M_RPS[$base]}")" \
      "$(ratio "${M_P50[$cp]}" "${M_P50[$base]}")" \
      "$(ratio "${M_P99[$cp]}" "${M_P99[$base]}")"
  done
done
for t in "${TARGETS[@]}"; do
  bench_result "forwarding.$t.rps" "${M_RPS[$t]}"
  bench_result "forwarding.$t.p50_ms" "${M_P50[$t]}"
  bench_result "forwarding.$t.p99_ms" "${M_P99[$t]}"
  bench_result "forwarding.$t.errors" "$(sum "${T_NON2XX[$t]}" "${T_SOCK[$t]}")"
done
# The first cacheproxy target under a fixed name, for run_all.sh.
bench_result forwarding.cacheproxy.rps "${M_RPS[${CP_TARGETS[0]}]}"
bench_result forwarding.cacheproxy.p50_ms "${M_P50[${CP_TARGETS[0]}]}"
bench_result forwarding.cacheproxy.p99_ms "${M_P99[${CP_TARGETS[0]}]}"
bench_result forwarding.cacheproxy.threads "${THREAD_LIST[0]}"
echo
echo "<details><summary>per round (req/s / p50 ms / p99 ms)</summary>"
echo
printf '| target |'; for ((r = 1; r <= ROUNDS; r++)); do printf ' round %d |' "$r"; done; echo
printf '|---|'; for ((r = 1; r <= ROUNDS; r++)); do printf -- '---|'; done; echo
for t in "${TARGETS[@]}"; do
  read -r -a a <<<"${RPS[$t]}"; read -r -a b <<<"${P50[$t]}"; read -r -a c <<<"${P99[$t]}"
  printf '| %s |' "${LABEL[$t]}"
  for ((i = 0; i < ROUNDS; i++)); do printf ' %s / %s / %s |' "${a[$i]}" "${b[$i]}" "${c[$i]}"; done
  echo
done
echo
echo "</details>"

status=0
for t in "${TARGETS[@]}"; do
  if [[ "${M_RPS[$t]}" == NaN ]]; then
    echo "ERROR: no req/s number for ${LABEL[$t]} (see wrk output above)" >&2
    status=1
  fi
  if [[ "${T_NON2XX[$t]}" != 0 || "${T_SOCK[$t]}" != 0 ]]; then
    echo
    echo "**WARNING**: ${LABEL[$t]}: ${T_NON2XX[$t]} non-2xx/3xx responses and ${T_SOCK[$t]} socket errors over all rounds."
  fi
done
((failures)) && echo && echo "**WARNING**: $failures wrk run(s) exited non-zero."
exit "$status"
