#!/usr/bin/env bash
# Cache-hit throughput on a cached per-user route: cacheproxy vs nginx
# proxy_cache vs Varnish, with the upstream served directly as the ceiling.
#
#   scripts/bench/hits.sh [--duration 10s] [--rounds 3] [--threads-proxy N]
#
# An upstream nginx answers /api/trading/balance with a fixed ~150-byte JSON.
# In front of it, configured alike:
#   (a) cacheproxy: a rules file caching GET /api/trading/balance for 15s per
#       user (key: identity = Authorization header + exchange + account_type)
#   (b) nginx proxy_cache: key "$request_uri$http_authorization", 200 for 15s,
#       proxy_cache_lock on, upstream keepalive 64
#   (c) Varnish: malloc storage 64m, vcl_hash on URL + Authorization, a GET
#       with Authorization is looked up (Varnish passes it by default), ttl
#       15s, grace 0s (no stale answers, as for the others)
#   (d) the upstream nginx itself, no cache in between: the ceiling
# Each cache is warmed with curl and the second call must be a hit
# (cacheproxy and Varnish: X-Cache: HIT, Varnish's set in vcl_deliver from
# obj.hits; nginx: X-Cache-Status: HIT). Then, interleaved in each round, wrk
# (-t1 -c50 --latency, a Lua script sending "Authorization: Bearer user1")
# loads the same URL on each, and the report gives the median req/s, p50 and
# p99, cacheproxy's ratios to the others, and how many requests reached the
# upstream during each cache's runs (from the upstream's access logs: one per
# cache, so they cannot be mixed up). With a 15 s TTL that count should be
# about one per expiry: ~1 per run.
#
# If cacheproxy does not answer HIT (caching not wired in this build), the
# report says so in a banner and the cacheproxy numbers are pass-through
# numbers; the script still runs and exits 0.
#
# Options:
#   --duration D        wrk duration per run (10s, 1m)           [10s]
#   --rounds N          rounds; medians are taken over them       [3]
#   --threads-proxy N   cacheproxy worker threads                 [1]
#   --connections N     wrk connections                           [50]
# Env: CACHEPROXY_BIN, BENCH_KEEP_TMP=1 as for forwarding.sh.
# Exit status: 0 with a table; 1 if a target produced no number or nginx's or
# Varnish's cache is not hitting (a broken comparison).
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,40s/^# \{0,1\}//p' "$0"; }

DURATION=10s
ROUNDS=3
PROXY_THREADS=1
CONNECTIONS=50
BENCH_COMMAND="scripts/bench/hits.sh${*:+ $*}"

while (($#)); do
  case "$1" in
    --duration) DURATION=${2:?--duration needs a value}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift ;;
    --threads-proxy) PROXY_THREADS=${2:?--threads-proxy needs a value}; shift ;;
    --connections) CONNECTIONS=${2:?--connections needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "hits.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
valid_duration "$DURATION" || die "--duration: expected e.g. 10s or 1m, got '$DURATION'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds: expected a positive integer"
[[ "$PROXY_THREADS" =~ ^[1-9][0-9]*$ ]] || die "--threads-proxy: expected a positive integer"
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || die "--connections: expected a positive integer"
export WRK_CONNECTIONS=$CONNECTIONS

for tool in nginx varnishd wrk curl python3 setsid timeout; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh --bench installs the bench tools)"
done

secs=$(duration_seconds "$DURATION")
bench_init hits $(( ROUNDS * 4 * (secs + 15) + 180 ))

UP_PORT_CP=$(free_port)     # upstream as seen by cacheproxy
UP_PORT_NGX=$(free_port)    # upstream as seen by nginx proxy_cache
UP_PORT_VARNISH=$(free_port)  # upstream as seen by Varnish
UP_PORT_DIRECT=$(free_port)   # upstream loaded directly (the ceiling)
PROXY_PORT=$(free_port)
NGX_CACHE_PORT=$(free_port)
VARNISH_PORT=$(free_port)
PATH_QS="/api/trading/balance?exchange=bybit&account_type=demo"
TOKEN="Bearer user1"

# ---------------------------------------------------------------- servers --

# One upstream nginx, two ports, one access log each: the log tells exactly
# which cache went upstream.
upstream_server() {
  local port=$1 logname=$2
  cat <<EOF
    server {
        listen 127.0.0.1:$port backlog=4096;
        access_log $BENCH_TMP/upstream/$logname;
        location / {
            default_type application/json;
            return 200 '$BALANCE_JSON';
        }
    }
EOF
}
start_nginx upstream "$(upstream_server "$UP_PORT_CP" for-cacheproxy.log)
$(upstream_server "$UP_PORT_NGX" for-nginx.log)
$(upstream_server "$UP_PORT_VARNISH" for-varnish.log)
    server {
        listen 127.0.0.1:$UP_PORT_DIRECT backlog=4096;
        access_log off;
        location / {
            default_type application/json;
            return 200 '$BALANCE_JSON';
        }
    }"
for p in "$UP_PORT_NGX" "$UP_PORT_VARNISH" "$UP_PORT_DIRECT"; do
  wait_port "$p" 5 || die "upstream: port $p not accepting"
done
UP_LOG_CP="$BENCH_TMP/upstream/for-cacheproxy.log"
UP_LOG_NGX="$BENCH_TMP/upstream/for-nginx.log"
UP_LOG_VARNISH="$BENCH_TMP/upstream/for-varnish.log"

mkdir -p "$BENCH_TMP/nginx-cache/cache"
chmod 777 "$BENCH_TMP/nginx-cache/cache"   # written by the (unprivileged) worker
start_nginx nginx-cache "
    server {
        listen 127.0.0.1:$NGX_CACHE_PORT backlog=4096;
        access_log off;
        location = /api/trading/balance {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache c;
            proxy_cache_key \"\$request_uri\$http_authorization\";
            proxy_cache_valid 200 15s;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
        location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }" "
    proxy_cache_path $BENCH_TMP/nginx-cache/cache levels=1:2 keys_zone=c:10m max_size=100m inactive=10m use_temp_path=off;
    upstream u {
        server 127.0.0.1:$UP_PORT_NGX;
        keepalive 64;
        keepalive_requests 1000000;
    }"

cat >"$BENCH_TMP/varnish.vcl" <<EOF
# hits.sh: Varnish caching the balance per URL + Authorization for 15 s.
vcl 4.1;
backend upstream {
    .host = "127.0.0.1";
    .port = "$UP_PORT_VARNISH";
}
sub vcl_recv {
    # The built-in vcl_recv passes every request with Authorization; look these up.
    if ((req.method == "GET" || req.method == "HEAD") && req.http.Authorization) {
        return (hash);
    }
}
sub vcl_hash {
    hash_data(req.url);
    hash_data(req.http.Authorization);
    return (lookup);
}
sub vcl_backend_response {
    set beresp.ttl = 15s;
    # No stale answers (the default grace is 10s): like nginx without
    # proxy_cache_use_stale and cacheproxy without stale_while_revalidate.
    set beresp.grace = 0s;
}
sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
EOF
start_varnish varnish "$VARNISH_PORT" "$BENCH_TMP/varnish.vcl"

cat >"$BENCH_TMP/rules.yaml" <<'EOF'
# hits.sh: only the balance route, 15 s per user, nothing else (no stale, no
# refresh-ahead) so it matches nginx's proxy_cache_valid 200 15s.
identity: { header: Authorization }
routes:
  - name: balance
    match: { method: GET, path: /api/trading/balance }
    ttl: 15s
    key: { identity: true, query: [exchange, account_type] }
EOF
cat >"$BENCH_TMP/cacheproxy.yaml" <<EOF
# hits.sh: cacheproxy caching /api/trading/balance per user.
listen: 127.0.0.1:$PROXY_PORT
threads: $PROXY_THREADS
upstream:
  url: http://127.0.0.1:$UP_PORT_CP
  max_connections: 64
logging:
  level: warn
  access_log: false
admin:
  enabled: false
rules: $BENCH_TMP/rules.yaml
EOF
start_cacheproxy cacheproxy "$PROXY_PORT" "$BENCH_TMP/cacheproxy.yaml" "$PROXY_THREADS"

cat >"$BENCH_TMP/balance.lua" <<EOF
-- hits.sh: one user polling one balance.
wrk.method = "GET"
wrk.path = "$PATH_QS"
wrk.headers["Authorization"] = "$TOKEN"
EOF

TARGETS=(cacheproxy nginx_cache varnish direct)
CACHES=(cacheproxy nginx_cache varnish)
declare -A URL=(
  [cacheproxy]="http://127.0.0.1:$PROXY_PORT$PATH_QS"
  [nginx_cache]="http://127.0.0.1:$NGX_CACHE_PORT$PATH_QS"
  [varnish]="http://127.0.0.1:$VARNISH_PORT$PATH_QS"
  [direct]="http://127.0.0.1:$UP_PORT_DIRECT$PATH_QS"
)
declare -A LABEL=(
  [cacheproxy]="(a) cacheproxy cache (${PROXY_THREADS}t)"
  [nginx_cache]="(b) nginx proxy_cache"
  [varnish]="(c) Varnish"
  [direct]="(d) upstream direct (ceiling)"
)
declare -A CACHE_HEADER=([cacheproxy]="X-Cache" [nginx_cache]="X-Cache-Status" [varnish]="X-Cache")
declare -A UP_LOG=([cacheproxy]="$UP_LOG_CP" [nginx_cache]="$UP_LOG_NGX" [varnish]="$UP_LOG_VARNISH" [direct]=/dev/null)

upstream_count() {   # balance requests in an upstream access log so far
  grep -c 'GET /api/trading/balance' "$1" 2>/dev/null || true
}

# cache_status TARGET: one request; prints "CODE STATUS" (STATUS "-" if no header).
cache_status() {
  local t=$1 hdrs code st
  hdrs=$(curl -sS --max-time 5 -o "$BENCH_TMP/body.$t" -D - -H "Authorization: $TOKEN" "${URL[$t]}") \
    || { echo "000 -"; return; }
  code=$(awk 'NR == 1 {print $2}' <<<"$hdrs")
  st=$(awk -v h="${CACHE_HEADER[$t]}" -F': *' 'tolower($1) == tolower(h) {gsub("\r", "", $2); print $2}' <<<"$hdrs")
  echo "$code ${st:--}"
}

# ----------------------------------------------------------------- warm-up --

CACHEPROXY_CACHING=1
declare -A WARM
for t in "${CACHES[@]}"; do
  seen=""
  for i in 1 2 3; do
    read -r code st < <(cache_status "$t")
    [[ "$code" == 200 ]] || die "$t: warm-up request $i answered $code (${URL[$t]})"
    cmp -s "$BENCH_TMP/body.$t" <(printf '%s' "$BALANCE_JSON") || die "$t: unexpected body: $(cat "$BENCH_TMP/body.$t")"
    seen+="$st "
  done
  WARM[$t]=$seen
  log "$t warm-up: ${CACHE_HEADER[$t]} = $seen"
  read -r _ second _ <<<"$seen"
  if [[ "$second" != HIT ]]; then
    if [[ $t != cacheproxy ]]; then
      die "${LABEL[$t]#(?) } is not hitting (${CACHE_HEADER[$t]}: $seen): the comparison is broken"
    fi
    CACHEPROXY_CACHING=0
  fi
done
if ((!CACHEPROXY_CACHING)); then
  LABEL[cacheproxy]="(a) cacheproxy (${PROXY_THREADS}t) NOT CACHING: pass-through"
  cat >&2 <<EOF
=====================================================================
WARNING: cacheproxy answered X-Cache: ${WARM[cacheproxy]}on three identical
requests - it is NOT serving hits. Caching is not (yet) wired into this
build, so the cacheproxy numbers below measure pass-through to the
upstream, not cache hits. Running anyway.
=====================================================================
EOF
fi

body=$(curl -sS --max-time 5 -H "Authorization: $TOKEN" "${URL[direct]}") || die "direct: curl failed"
[[ "$body" == "$BALANCE_JSON" ]] || die "direct: unexpected body: $body"

for t in "${TARGETS[@]}"; do
  run_wrk "$BENCH_TMP/warmup-$t.txt" 1s "${URL[$t]}" -s "$BENCH_TMP/balance.lua" || log "warm-up of $t: wrk exit $?"
done

# ------------------------------------------------------------------- runs --

declare -A RPS P50 P99 NON2XX SOCK UPREQ
failures=0
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${TARGETS[@]}"; do
    out="$BENCH_TMP/round$r-$t.txt"
    before=$(upstream_count "${UP_LOG[$t]}")
    log "round $r/$ROUNDS: $t for $DURATION"
    if ! run_wrk "$out" "$DURATION" "${URL[$t]}" -s "$BENCH_TMP/balance.lua"; then
      log "WARNING: wrk against $t exited non-zero (round $r); output:"
      cat "$out" >&2
      failures=$((failures + 1))
    fi
    after=$(upstream_count "${UP_LOG[$t]}")
    up=$((after - before))
    [[ $t == direct ]] && up="-"
    read -r rps p50 p99 reqs non2xx sock < <(wrk_parse "$out")
    RPS[$t]+="$rps "; P50[$t]+="$p50 "; P99[$t]+="$p99 "
    NON2XX[$t]+="$non2xx "; SOCK[$t]+="$sock "; UPREQ[$t]+="$up "
    log "  $t: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms, non-2xx ${non2xx}, socket errors ${sock}, upstream requests ${up} of ${reqs}"
    grep -E 'Non-2xx|Socket errors' "$out" | sed "s/^/  $t round $r: /" >&2
  done
done

# A last look: after the runs, is the second of two requests still a hit?
declare -A AFTER
for t in "${CACHES[@]}"; do
  read -r _ a1 < <(cache_status "$t"); read -r _ a2 < <(cache_status "$t")
  AFTER[$t]="$a1 $a2"
done

# --------------------------------------------------------------- report --

declare -A M_RPS M_P50 M_P99 T_NON2XX T_SOCK T_UP
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
  # shellcheck disable=SC2086  # space-separated lists, split on purpose
  T_UP[$t]=$(sum ${UPREQ[$t]//-/0})
done

echo
bench_header "cacheproxy cache-hit benchmark (GET /api/trading/balance, one user)"
echo "- setup: upstream nginx \`return 200\` ${#BALANCE_JSON}-byte JSON; cacheproxy --threads $PROXY_THREADS, rule ttl 15s key identity+exchange+account_type;"
echo "  nginx proxy_cache (1 worker) key \$request_uri\$http_authorization, valid 200 15s, lock on, upstream keepalive 64;"
echo "  Varnish -s malloc,64m, default thread pools, hash url+Authorization, ttl 15s, grace 0s; (d) = wrk straight at the upstream nginx;"
echo "  wrk -t${WRK_THREADS:-1} -c$CONNECTIONS -d$DURATION --latency -s balance.lua (Authorization: $TOKEN, $PATH_QS), $ROUNDS round(s), interleaved a,b,c,d; medians below"
echo "- warm-up cache status (3 curl calls): cacheproxy X-Cache: ${WARM[cacheproxy]% }; nginx X-Cache-Status: ${WARM[nginx_cache]% }; Varnish X-Cache: ${WARM[varnish]% }"
echo "- after the runs (2 curl calls): cacheproxy: ${AFTER[cacheproxy]}; nginx: ${AFTER[nginx_cache]}; Varnish: ${AFTER[varnish]}"
if ((!CACHEPROXY_CACHING)); then
  echo
  echo "> **WARNING: cacheproxy is NOT caching in this build** (X-Cache: ${WARM[cacheproxy]% } on identical"
  echo "> requests). Its row measures pass-through to the upstream, not cache hits; see its upstream request count."
fi
echo
echo "| target | req/s | p50 ms | p99 ms | upstream requests per run | non-2xx (all rounds) | socket errors (all rounds) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
  printf '| %s | %.0f | %.3f | %.3f | %s | %s | %s |\n' "${LABEL[$t]}" "${M_RPS[$t]}" "${M_P50[$t]}" "${M_P99[$t]}" \
    "$(tr ' ' '\n' <<<"${UPREQ[$t]% }" | paste -sd, -)" "${T_NON2XX[$t]}" "${T_SOCK[$t]}"
done
echo
echo "| ratio | req/s | p50 | p99 |"
echo "|---|---:|---:|---:|"
for base in nginx_cache varnish direct; do
  printf '| cacheproxy / %s | %s | %s | %s |\n' "${LABEL[$base]#(?) }" \
    "$(ratio "${M_RPS[cacheproxy]}" "${M_RPS[$base]}")" \
    "$(ratio "${M_P50[cacheproxy]}" "${M_P50[$base]}")" \
    "$(ratio "${M_P99[cacheproxy]}" "${M_P99[$base]}")"
done
for t in "${TARGETS[@]}"; do
  bench_result "hits.$t.rps" "${M_RPS[$t]}"
  bench_result "hits.$t.p50_ms" "${M_P50[$t]}"
  bench_result "hits.$t.p99_ms" "${M_P99[$t]}"
  bench_result "hits.$t.errors" "$(sum "${T_NON2XX[$t]}" "${T_SOCK[$t]}")"
  [[ $t != direct ]] && bench_result "hits.$t.upstream" "${T_UP[$t]}"
done
bench_result hits.cacheproxy.caching "$CACHEPROXY_CACHING"
echo
echo "<details><summary>per round (req/s / p50 ms / p99 ms / upstream requests)</summary>"
echo
printf '| target |'; for ((r = 1; r <= ROUNDS; r++)); do printf ' round %d |' "$r"; done; echo
printf '|---|'; for ((r = 1; r <= ROUNDS; r++)); do printf -- '---|'; done; echo
for t in "${TARGETS[@]}"; do
  read -r -a a <<<"${RPS[$t]}"; read -r -a b <<<"${P50[$t]}"; read -r -a c <<<"${P99[$t]}"; read -r -a u <<<"${UPREQ[$t]}"
  printf '| %s |' "${LABEL[$t]}"
  for ((i = 0; i < ROUNDS; i++)); do printf ' %s / %s / %s / %s |' "${a[$i]}" "${b[$i]}" "${c[$i]}" "${u[$i]}"; done
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
# ~1 upstream request per run and per TTL expiry; far more means it is not caching.
if ((CACHEPROXY_CACHING)) && (( T_UP[cacheproxy] > 2 * ROUNDS * (secs / 15 + 1) )); then
  echo
  echo "**WARNING**: cacheproxy answered HIT at warm-up but sent ${T_UP[cacheproxy]} requests upstream during the runs."
fi
((failures)) && echo && echo "**WARNING**: $failures wrk run(s) exited non-zero."
exit "$status"
