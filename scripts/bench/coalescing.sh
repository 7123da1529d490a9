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
BENCH_COMMAND="scripts/bench/coalescing.sh${*:+ $*}"

while (($#)); do
  case "$1" in
    --requests) REQUESTS=${2:?--requests needs a value}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift ;;
    --threads-proxy) PROXY_THREADS=${2:?--threads-proxy needs a value}; shift ;;
    --latency) LATENCY=${2:?--latency needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "coalescing.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || die "--requests: expected a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds: expected a positive integer"
[[ "$PROXY_THREADS" =~ ^[1-9][0-9]*$ ]] || die "--threads-proxy: expected a positive integer"
[[ "$LATENCY" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--latency: expected seconds, e.g. 1.0"

for tool in nginx curl python3 setsid timeout; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh --bench installs the bench tools)"
done

raise_nofile $(( REQUESTS * 2 + 8192 ))
(( $(ulimit -n) > REQUESTS + 64 )) || die "ulimit -n is $(ulimit -n): too low for $REQUESTS connections"
bench_init coalescing $(( ROUNDS * 2 * 40 + 120 ))

SIM_PORT=$(free_port)
PROXY_PORT=$(free_port)
NGX_PORT=$(free_port)
CLIENT="$BENCH_LIB_DIR/coalesce_client.py"
QS="/api/trading/balance?exchange=bybit&account_type=demo"

start_sim sim "$SIM_PORT" "$LATENCY"

mkdir -p "$BENCH_TMP/nginx-cache/cache"
chmod 777 "$BENCH_TMP/nginx-cache/cache"
start_nginx nginx-cache "
    server {
        listen 127.0.0.1:$NGX_PORT backlog=4096;
        access_log off;
        location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache c;
            proxy_cache_key \"\$request_uri\$http_authorization\";
            proxy_cache_valid 200 15s;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 5s;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }" "
    proxy_cache_path $BENCH_TMP/nginx-cache/cache levels=1:2 keys_zone=c:10m max_size=100m inactive=10m use_temp_path=off;
    upstream u {
        server 127.0.0.1:$SIM_PORT;
        keepalive 64;
    }"

cat >"$BENCH_TMP/cacheproxy.yaml" <<EOF
# coalescing.sh: the shipped rules in front of the simulator.
listen: 127.0.0.1:$PROXY_PORT
threads: $PROXY_THREADS
upstream:
  url: http://127.0.0.1:$SIM_PORT
  max_connections: 50
limits:
  max_client_connections: $(( REQUESTS + 1000 ))
logging:
  level: warn
  access_log: false
admin:
  enabled: false
rules: $BENCH_ROOT/rules/trading.yaml
EOF
start_cacheproxy cacheproxy "$PROXY_PORT" "$BENCH_TMP/cacheproxy.yaml" "$PROXY_THREADS"

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
for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086  # space-separated lists, split on purpose
  M_FIRST[$t]=$(median ${FIRST[$t]})
  # shellcheck disable=SC2086
  M_LAST[$t]=$(median ${LAST[$t]})
  # shellcheck disable=SC2086
  M_SPREAD[$t]=$(median ${SPREAD[$t]})
done

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
echo
echo "<details><summary>per round (upstream requests / fill landed ms / last waiter ms / spread ms)</summary>"
echo
printf '| target |'; for ((r = 1; r <= ROUNDS; r++)); do printf ' round %d |' "$r"; done; echo
printf '|---|'; for ((r = 1; r <= ROUNDS; r++)); do printf -- '---|'; done; echo
for t in "${TARGETS[@]}"; do
  read -r -a a <<<"${UP[$t]}"; read -r -a b <<<"${FIRST[$t]}"; read -r -a c <<<"${LAST[$t]}"; read -r -a d <<<"${SPREAD[$t]}"
  printf '| %s |' "${LABEL[$t]}"
  for ((i = 0; i < ROUNDS; i++)); do printf ' %s / %s / %s / %s |' "${a[$i]}" "${b[$i]}" "${c[$i]}" "${d[$i]}"; done
  echo
done
echo
echo "</details>"

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
