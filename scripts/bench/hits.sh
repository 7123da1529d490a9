#!/usr/bin/env bash
# Cache-hit throughput on a cached per-user route: cacheproxy vs nginx
# proxy_cache vs Varnish, with the upstream served directly as the ceiling.
#
#   scripts/bench/hits.sh [--duration 10s] [--rounds 3] [--threads-proxy N] [--nginx-workers N|auto]
#                         [--targets LIST] [--key-prefix hits]
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
#   --nginx-workers N   nginx proxy_cache worker_processes, N or auto (then
#                       with listen ... reuseport)                 [1]
#   --targets LIST      the targets to load, of cacheproxy,nginx_cache,varnish,
#                       direct (cacheproxy and nginx_cache always run; Varnish
#                       is not started if left out)                [all four]
#   --key-prefix P      prefix of the BENCH_RESULTS_FILE keys (P.cacheproxy.rps
#                       ...), so a second run with other settings lands
#                       beside the first (run_all.sh: hits_mt)      [hits]
# Env: CACHEPROXY_BIN, BENCH_KEEP_TMP=1 as for forwarding.sh.
# Exit status: 0 with a table; 1 if a target produced no number or nginx's or
# Varnish's cache is not hitting (a broken comparison).
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,48s/^# \{0,1\}//p' "$0"; }

DURATION=10s
ROUNDS=3
PROXY_THREADS=1
CONNECTIONS=50
BENCH_NGINX_WORKERS=1
TARGET_LIST=cacheproxy,nginx_cache,varnish,direct
KEY_PREFIX=hits
bench_options hits.sh "--duration:DURATION:duration --rounds:ROUNDS:count
  --threads-proxy:PROXY_THREADS:count --connections:CONNECTIONS:count --nginx-workers:BENCH_NGINX_WORKERS:workers
  --targets:TARGET_LIST:- --key-prefix:KEY_PREFIX:-" "$@"
export BENCH_NGINX_WORKERS
export WRK_CONNECTIONS=$CONNECTIONS
[[ "$KEY_PREFIX" =~ ^[A-Za-z0-9_]+$ ]] || usage_error hits.sh "--key-prefix: expected letters, digits, _"
# The targets in their fixed order (a, b, c, d); cacheproxy and nginx_cache always.
TARGETS=(cacheproxy nginx_cache)
for t in varnish direct; do
  [[ ",$TARGET_LIST," == *",$t,"* ]] && TARGETS+=("$t")
done
for t in ${TARGET_LIST//,/ }; do
  [[ " cacheproxy nginx_cache varnish direct " == *" $t "* ]] \
    || usage_error hits.sh "--targets: unknown target '$t' (cacheproxy, nginx_cache, varnish, direct)"
done
has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }

need_tools nginx wrk curl python3 setsid timeout
if has_target varnish; then need_tools varnishd; fi

secs=$(duration_seconds "$DURATION")
bench_init hits $(( ROUNDS * ${#TARGETS[@]} * (secs + 15) + 180 ))

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
UP_LOG_CP="$BENCH_TMP/upstream/for-cacheproxy.log"
UP_LOG_NGX="$BENCH_TMP/upstream/for-nginx.log"
UP_LOG_VARNISH="$BENCH_TMP/upstream/for-varnish.log"
start_nginx upstream "$(balance_server "$UP_PORT_CP" "$UP_LOG_CP")
$(balance_server "$UP_PORT_NGX" "$UP_LOG_NGX")
$(balance_server "$UP_PORT_VARNISH" "$UP_LOG_VARNISH")
$(balance_server "$UP_PORT_DIRECT")"
for p in "$UP_PORT_NGX" "$UP_PORT_VARNISH" "$UP_PORT_DIRECT"; do
  wait_port "$p" 5 || die "upstream: port $p not accepting"
done

start_nginx_cache nginx-cache "$NGX_CACHE_PORT" "$UP_PORT_NGX" location=/api/trading/balance valid=15s

if has_target varnish; then
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
fi

user_route_rules "$BENCH_TMP/rules.yaml" balance /api/trading/balance 15s \
  "hits.sh: only the balance route, 15 s per user, nothing else (no stale, no" \
  "refresh-ahead) so it matches nginx's proxy_cache_valid 200 15s."
cacheproxy_config "$BENCH_TMP/cacheproxy.yaml" "$PROXY_PORT" "$PROXY_THREADS" "$UP_PORT_CP" \
  comment="hits.sh: cacheproxy caching /api/trading/balance per user." rules="$BENCH_TMP/rules.yaml"
start_cacheproxy cacheproxy "$PROXY_PORT" "$BENCH_TMP/cacheproxy.yaml" "$PROXY_THREADS"

wrk_lua "$BENCH_TMP/balance.lua" "$PATH_QS" "$TOKEN" "hits.sh: one user polling one balance."

CACHES=()
for t in "${TARGETS[@]}"; do
  [[ $t == direct ]] || CACHES+=("$t")
done
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

# cache_status TARGET: one request; prints "CODE STATUS ..." (STATUS "-" if no header).
cache_status() {
  http_probe "${URL[$1]}" "$BENCH_TMP/body.$1" "${CACHE_HEADER[$1]}" -H "Authorization: $TOKEN"
}

# ----------------------------------------------------------------- warm-up --

CACHEPROXY_CACHING=1
declare -A WARM
for t in "${CACHES[@]}"; do
  seen=""
  for i in 1 2 3; do
    read -r code st _ < <(cache_status "$t")
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

declare -A UPREQ   # wrk_round fills RPS P50 P99 REQS NON2XX SOCK
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${TARGETS[@]}"; do
    before=$(upstream_count "${UP_LOG[$t]}")
    wrk_round "$t" "$r" "${URL[$t]}" -s "$BENCH_TMP/balance.lua"
    after=$(upstream_count "${UP_LOG[$t]}")
    up=$((after - before))
    [[ $t == direct ]] && up="-"
    read -r rps p50 p99 reqs non2xx sock <<<"$WRK_LINE"
    UPREQ[$t]+="$up "
    log "  $t: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms, non-2xx ${non2xx}, socket errors ${sock}, upstream requests ${up} of ${reqs}"
    wrk_errors "$t" "$r"
  done
done

# A last look: after the runs, is the second of two requests still a hit?
declare -A AFTER
for t in "${CACHES[@]}"; do
  read -r _ a1 _ < <(cache_status "$t"); read -r _ a2 _ < <(cache_status "$t")
  AFTER[$t]="$a1 $a2"
done

# --------------------------------------------------------------- report --

declare -A M_RPS M_P50 M_P99 T_NON2XX T_SOCK T_UP
wrk_summary "${TARGETS[@]}"
per_target sum T_UP UPREQ "${TARGETS[@]}"   # sum counts direct's "-" as 0

echo
bench_header "cacheproxy cache-hit benchmark (GET /api/trading/balance, one user; cacheproxy ${PROXY_THREADS}t, nginx worker_processes $BENCH_NGINX_WORKERS)"
echo "- setup: upstream nginx \`return 200\` ${#BALANCE_JSON}-byte JSON; cacheproxy --threads $PROXY_THREADS, rule ttl 15s key identity+exchange+account_type;"
echo "  nginx proxy_cache (worker_processes $BENCH_NGINX_WORKERS$([[ $BENCH_NGINX_WORKERS == 1 ]] || echo ", listen reuseport")) key \$request_uri\$http_authorization, valid 200 15s, lock on, upstream keepalive 64;"
if has_target varnish; then
  echo "  Varnish -s malloc,64m, default thread pools, hash url+Authorization, ttl 15s, grace 0s;"
fi
if has_target direct; then echo "  (d) = wrk straight at the upstream nginx;"; fi
echo "  wrk -t${WRK_THREADS:-1} -c$CONNECTIONS -d$DURATION --latency -s balance.lua (Authorization: $TOKEN, $PATH_QS), $ROUNDS round(s), interleaved ${TARGETS[*]}; medians below"
echo "- warm-up cache status (3 curl calls): cacheproxy X-Cache: ${WARM[cacheproxy]% }; nginx X-Cache-Status: ${WARM[nginx_cache]% }$(has_target varnish && echo "; Varnish X-Cache: ${WARM[varnish]% }")"
echo "- after the runs (2 curl calls): cacheproxy: ${AFTER[cacheproxy]}; nginx: ${AFTER[nginx_cache]}$(has_target varnish && echo "; Varnish: ${AFTER[varnish]}")"
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
for base in "${TARGETS[@]:1}"; do
  ratio_row "cacheproxy / ${LABEL[$base]#(?) }" cacheproxy "$base"
done
for t in "${TARGETS[@]}"; do
  wrk_results "$KEY_PREFIX" "$t"
  [[ $t != direct ]] && bench_result "$KEY_PREFIX.$t.upstream" "${T_UP[$t]}"
done
bench_result "$KEY_PREFIX.cacheproxy.caching" "$CACHEPROXY_CACHING"
bench_result "$KEY_PREFIX.cacheproxy.threads" "$PROXY_THREADS"
bench_result "$KEY_PREFIX.nginx_cache.workers" "$BENCH_NGINX_WORKERS"
per_round_table "req/s / p50 ms / p99 ms / upstream requests" "RPS P50 P99 UPREQ" "${TARGETS[@]}"

status=0
for t in "${TARGETS[@]}"; do
  wrk_check "$t" || status=1
done
# ~1 upstream request per run and per TTL expiry; far more means it is not caching.
if ((CACHEPROXY_CACHING)) && (( T_UP[cacheproxy] > 2 * ROUNDS * (secs / 15 + 1) )); then
  echo
  echo "**WARNING**: cacheproxy answered HIT at warm-up but sent ${T_UP[cacheproxy]} requests upstream during the runs."
fi
((WRK_FAILURES)) && echo && echo "**WARNING**: $WRK_FAILURES wrk run(s) exited non-zero."
exit "$status"
