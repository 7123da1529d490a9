#!/usr/bin/env bash
# gzip hits vs identity hits on a cached ~20 kB positions route: cacheproxy
# (gzip variant made once per fill) beside nginx proxy_cache + gzip on
# (compresses every hit on the fly).
#
#   scripts/bench/gzip_hits.sh [--duration 10s] [--rounds 3] [--threads-proxy 2[,1]]
#                              [--body literal|varied]
#
# An upstream nginx serves /api/trading/positions: a ~20 kB legacy-shaped JSON
# (200 positions, application/json, generated here, size checked 19-21 kB).
# In front of it, configured alike:
#   cacheproxy   rules: GET /api/trading/positions, ttl 60s, key identity +
#                exchange + account_type; compression { enabled, min_size 1000,
#                level 6 }; access log off; --threads N (one instance per N)
#   nginx        proxy_cache, key "$request_uri$http_authorization", valid 200
#                60s, lock on, upstream keepalive 64; gzip on, gzip_types
#                application/json, gzip_min_length 1000, gzip_comp_level 6,
#                gzip_proxied any, gzip_vary on
# Warm-up (curl) must show MISS HIT HIT, then a HIT with Content-Encoding: gzip
# for "Accept-Encoding: gzip" and a HIT without it for no Accept-Encoding; the
# gzip body must gunzip to the upstream body. Then in each round, interleaved
# (the order rotates by one target per round), wrk -t1 -c50 --latency with a
# Lua script ("Authorization: Bearer user1", plus "Accept-Encoding: gzip" for
# the gzip targets) loads: cacheproxy gzip, cacheproxy identity (per thread
# count), nginx gzip, nginx identity. The report gives median req/s, p50,
# p99, transfer/s, body bytes, bytes per response as wrk read them, upstream
# requests, and the ratios gzip/identity, cacheproxy/nginx.
#
# Options:
#   --duration D        wrk duration per run (10s, 1m)                 [10s]
#   --rounds N          rounds; medians are taken over them             [3]
#   --threads-proxy L   cacheproxy worker threads; a list (2,1) runs one
#                       cacheproxy per value, both in the same rounds    [2]
#   --connections N     wrk connections                                 [50]
#   --body KIND         literal: 200 identical positions as in the issue
#                       ({"symbol":"SYMn","side":"LONG","size":0.5,...}),
#                       gzips ~27:1; varied: per-position side/size/prices
#                       (deterministic), gzips ~6:1, closer to real data [literal]
# Env: CACHEPROXY_BIN, BENCH_KEEP_TMP=1, WRK_THREADS as for hits.sh.
# Exit status: 0 with a table (warnings included); 1 if a target produced no
# number, a warm-up check failed or a server did not start; 2 for bad usage.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,41s/^# \{0,1\}//p' "$0"; }

DURATION=10s
ROUNDS=3
PROXY_THREADS=2
CONNECTIONS=50
BODY_KIND=literal
BENCH_USAGE_EXIT=2   # a bad option value is a usage error (exit 2)
bench_options gzip_hits.sh "--duration:DURATION:duration --rounds:ROUNDS:count
  --threads-proxy:PROXY_THREADS:threads --connections:CONNECTIONS:count --body:BODY_KIND:-" "$@"
[[ "$BODY_KIND" == literal || "$BODY_KIND" == varied ]] || usage_error gzip_hits.sh "--body: literal or varied"
IFS=, read -r -a THREAD_LIST <<<"$PROXY_THREADS"
export WRK_CONNECTIONS=$CONNECTIONS

need_tools nginx wrk curl python3 setsid timeout gzip cmp

secs=$(duration_seconds "$DURATION")
NTARGETS=$(( 2 * ${#THREAD_LIST[@]} + 2 ))
bench_init gzip-hits $(( ROUNDS * NTARGETS * (secs + 15) + NTARGETS * 20 + 120 ))

UP_PORT_CP=$(free_port)     # upstream as seen by cacheproxy (all instances)
UP_PORT_NGX=$(free_port)    # upstream as seen by nginx proxy_cache
NGX_CACHE_PORT=$(free_port)
ROUTE=/api/trading/positions
PATH_QS="$ROUTE?exchange=bybit&account_type=demo"
TOKEN="Bearer user1"

# ------------------------------------------------------------------- body --

# The positions JSON, in the legacy shape (shared/legacy-api.md). Serialised
# with Python's default separators (", " and ": "): 200 compact literal
# objects are only ~17.8 kB, short of the ~20 kB the issue measures.
mkdir -p "$BENCH_TMP/upstream/www"
chmod 755 "$BENCH_TMP/upstream" "$BENCH_TMP/upstream/www"
BODY_FILE="$BENCH_TMP/upstream/www/positions.json"
python3 - "$BODY_KIND" >"$BODY_FILE" <<'EOF' || die "could not generate the positions JSON"
import json, sys
kind = sys.argv[1]
positions = []
for i in range(200):
    if kind == "literal":
        positions.append({"symbol": "SYM%d" % i, "side": "LONG", "size": 0.5,
                          "entry_price": 97000.0, "unrealized_pnl": 61.7})
    else:  # deterministic per-position values, like scripts/legacy_sim.py
        side = "LONG" if i % 2 == 0 else "SHORT"
        size = round(0.01 * ((i * 13 + 7) % 97 + 1), 4)
        entry = round(97000.0 * (1 + ((i * 17) % 21 - 10) / 1000.0) / (1 + i % 37), 6)
        pnl = round(size * entry * 0.0013 * (1 if i % 3 else -1), 2)
        positions.append({"symbol": "SYM%d" % i, "side": side, "size": size,
                          "entry_price": entry, "unrealized_pnl": pnl})
sys.stdout.write(json.dumps({"user_id": 999001, "exchange": "bybit", "account_type": "demo",
                             "ts": 1732470000.123, "positions": positions}))
EOF
chmod 644 "$BODY_FILE"
BODY_BYTES=$(stat -c %s "$BODY_FILE")
((BODY_BYTES >= 19000 && BODY_BYTES <= 21000)) || die "positions JSON is $BODY_BYTES bytes, expected 19-21 kB"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["positions"]) == 200' "$BODY_FILE" \
  || die "positions JSON does not parse or has not 200 positions"
GZIP6_BYTES=$(gzip -6 -c "$BODY_FILE" | wc -c)
log "positions JSON ($BODY_KIND): $BODY_BYTES bytes (gzip -6: $GZIP6_BYTES bytes)"

# ---------------------------------------------------------------- servers --

# The body is a static file: a 20 kB literal in `return 200 '...'` is longer
# than nginx's 4 KiB config token limit. With no `types` map every file gets
# default_type application/json. One upstream nginx, one port and one access
# log per cache, so the log says exactly which cache went upstream.
upstream_server() {
  local port=$1 logname=$2
  cat <<EOF
    server {
        listen 127.0.0.1:$port backlog=4096;
        access_log $BENCH_TMP/upstream/$logname;
        gzip off;
        etag off;
        location = $ROUTE {
            default_type application/json;
            root $BENCH_TMP/upstream/www;
            try_files /positions.json =404;
        }
        location = /health {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
        location / {
            return 404;
        }
    }
EOF
}
start_nginx upstream "$(upstream_server "$UP_PORT_CP" for-cacheproxy.log)
$(upstream_server "$UP_PORT_NGX" for-nginx.log)"
wait_port "$UP_PORT_NGX" 5 || die "upstream: second port $UP_PORT_NGX not accepting"
UP_LOG_CP="$BENCH_TMP/upstream/for-cacheproxy.log"
UP_LOG_NGX="$BENCH_TMP/upstream/for-nginx.log"

start_nginx_cache nginx-cache "$NGX_CACHE_PORT" "$UP_PORT_NGX" location="$ROUTE" valid=60s server="gzip on;
        gzip_types application/json;
        gzip_min_length 1000;
        gzip_comp_level 6;
        gzip_proxied any;
        gzip_vary on;"

user_route_rules "$BENCH_TMP/rules.yaml" positions "$ROUTE" 60s \
  "gzip_hits.sh: only the positions route, 60 s per user, no stale, no" \
  "refresh-ahead, so it matches nginx's proxy_cache_valid 200 60s."

TARGETS=()
declare -A URL LABEL GZ KIND UP_LOG
# add_targets KIND NAME PORT UPSTREAM_LOG LABEL_PREFIX: NAME_gzip and NAME_identity.
add_targets() {
  local kind=$1 name=$2 port=$3 uplog=$4 prefix=$5 enc t
  for enc in gzip identity; do
    t="${name}_$enc"
    TARGETS+=("$t")
    URL[$t]="http://127.0.0.1:$port$PATH_QS"
    LABEL[$t]="$prefix, $enc hits"
    GZ[$t]=$([[ $enc == gzip ]] && echo 1 || echo 0)
    KIND[$t]=$kind
    UP_LOG[$t]=$uplog
  done
}
for n in "${THREAD_LIST[@]}"; do
  [[ -v "URL[cp${n}_gzip]" ]] && die "--threads-proxy: $n given twice"
  port=$(free_port)
  cacheproxy_config "$BENCH_TMP/cacheproxy-$n.yaml" "$port" "$n" "$UP_PORT_CP" \
    comment="gzip_hits.sh: cacheproxy caching $ROUTE per user, $n thread(s)." \
    extra="compression: { enabled: true, min_size: 1000, level: 6 }" rules="$BENCH_TMP/rules.yaml"
  start_cacheproxy "cacheproxy-$n" "$port" "$BENCH_TMP/cacheproxy-$n.yaml" "$n"
  add_targets cacheproxy "cp$n" "$port" "$UP_LOG_CP" "cacheproxy ${n}t"
done
add_targets nginx nginx "$NGX_CACHE_PORT" "$UP_LOG_NGX" "nginx proxy_cache"

wrk_lua "$BENCH_TMP/identity.lua" "$PATH_QS" "$TOKEN" "gzip_hits.sh: one user polling one positions list (identity)."
wrk_lua "$BENCH_TMP/gzip.lua" "$PATH_QS" "$TOKEN" "gzip_hits.sh: one user polling one positions list (gzip)." \
  'wrk.headers["Accept-Encoding"] = "gzip"'
lua_of() { [[ ${GZ[$1]} == 1 ]] && echo "$BENCH_TMP/gzip.lua" || echo "$BENCH_TMP/identity.lua"; }

# ----------------------------------------------------------------- warm-up --

# probe TARGET GZIP(0/1) TAG: one curl request; prints "CODE CACHE_STATUS CONTENT_ENCODING BODY_BYTES"
# ("-" for a missing header). The body is left in $BENCH_TMP/body.TAG.
probe() {
  local t=$1 gz=$2 tag=$3 args=(-H "Authorization: $TOKEN")
  ((gz)) && args+=(-H "Accept-Encoding: gzip")
  http_probe "${URL[$t]}" "$BENCH_TMP/body.$tag" "$([[ ${KIND[$t]} == nginx ]] && echo X-Cache-Status || echo X-Cache)" "${args[@]}"
}

upstream_count() {   # positions requests in an upstream access log so far
  grep -c "GET $ROUTE" "$1" 2>/dev/null || true
}

declare -A WARM BODY
for t in "${TARGETS[@]}"; do
  [[ ${GZ[$t]} == 1 ]] || continue
  base=${t%_gzip}
  id_t="${base}_identity"
  # Three identity requests: MISS HIT HIT.
  seen=""
  for i in 1 2 3; do
    read -r code st ce _ < <(probe "$t" 0 "$base-id$i")
    [[ "$code" == 200 ]] || die "$t: warm-up request $i answered $code (${URL[$t]})"
    [[ "$ce" == - ]] || die "$t: Content-Encoding '$ce' on a request without Accept-Encoding"
    cmp -s "$BENCH_TMP/body.$base-id$i" "$BODY_FILE" || die "$t: identity body differs from the upstream's"
    seen+="$st "
  done
  read -r _ second third <<<"$seen"
  [[ "$second" == HIT && "$third" == HIT ]] || die "$t: cache status on 3 identical requests: $seen(want MISS HIT HIT)"
  # A gzip request: HIT, Content-Encoding: gzip, gunzips to the body.
  read -r code gzst ce gzbytes < <(probe "$t" 1 "$base-gz")
  [[ "$code" == 200 && "$gzst" == HIT ]] || die "$t: gzip request answered $code, cache status $gzst (want 200 HIT)"
  [[ "$ce" == gzip ]] || die "$t: gzip request answered Content-Encoding '$ce' (want gzip)"
  gzip -dc "$BENCH_TMP/body.$base-gz" | cmp -s - "$BODY_FILE" || die "$t: gzip body does not gunzip to the upstream body"
  # And identity again after it: still a HIT, still no Content-Encoding.
  read -r code st ce idbytes < <(probe "$t" 0 "$base-id4")
  [[ "$code" == 200 && "$st" == HIT && "$ce" == - ]] \
    || die "$t: identity request after the gzip one: $code, cache status $st, Content-Encoding $ce"
  WARM[$t]="identity x3: ${seen% }; then gzip: $gzst, Content-Encoding: gzip, $gzbytes bytes; then identity: $st, no Content-Encoding, $idbytes bytes"
  WARM[$id_t]=${WARM[$t]}
  BODY[$t]=$gzbytes
  BODY[$id_t]=$idbytes
  log "$base warm-up: ${seen% }; gzip HIT ($gzbytes bytes, Content-Encoding: gzip); identity HIT ($idbytes bytes)"
done

for t in "${TARGETS[@]}"; do
  run_wrk "$BENCH_TMP/warmup-$t.txt" 1s "${URL[$t]}" -s "$(lua_of "$t")" || log "warm-up of $t: wrk exit $?"
done

# ------------------------------------------------------------------- runs --

# wrk's "Transfer/sec: 24.10MB" -> MiB/s; "N requests in 10.00s, 1.23GB read" -> bytes per response.
wrk_transfer() {
  awk '
    function bytes(v,   n, u) { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
      if (u == "KB") n *= 1024; else if (u == "MB") n *= 1048576; else if (u == "GB") n *= 1073741824
      else if (u == "TB") n *= 1099511627776; return n }
    /^Transfer\/sec:/ { mib = sprintf("%.2f", bytes($2) / 1048576) }
    / requests in .* read$/ { r = $1; b = bytes($(NF - 1)) }
    END { printf "%s %s\n", (mib == "" ? "NaN" : mib), (r > 0 ? sprintf("%.0f", b / r) : "NaN") }' "$1"
}

declare -A MIBS PERRESP UPREQ   # wrk_round fills RPS P50 P99 REQS NON2XX SOCK
for ((r = 1; r <= ROUNDS; r++)); do
  # Rotate the order by one target per round: no target always runs first.
  for ((k = 0; k < NTARGETS; k++)); do
    t=${TARGETS[$(( (k + r - 1) % NTARGETS ))]}
    before=$(upstream_count "${UP_LOG[$t]}")
    wrk_round "$t" "$r" "${URL[$t]}" -s "$(lua_of "$t")"
    after=$(upstream_count "${UP_LOG[$t]}")
    read -r rps p50 p99 reqs non2xx sock <<<"$WRK_LINE"
    read -r mibs perresp < <(wrk_transfer "$BENCH_TMP/round$r-$t.txt")
    MIBS[$t]+="$mibs "; PERRESP[$t]+="$perresp "; UPREQ[$t]+="$((after - before)) "
    log "  $t: $rps req/s, p50 $p50 ms, p99 $p99 ms, $mibs MiB/s, $perresp bytes/response, non-2xx $non2xx, socket errors $sock, upstream requests $((after - before)) of $reqs"
    wrk_errors "$t" "$r"
  done
done

# After the runs: are both variants still hits?
declare -A AFTER
for t in "${TARGETS[@]}"; do
  read -r _ st ce _ < <(probe "$t" "${GZ[$t]}" "after-$t")
  AFTER[$t]="$st/$ce"
done

# --------------------------------------------------------------- report --

declare -A M_RPS M_P50 M_P99 M_MIBS M_PERRESP T_NON2XX T_SOCK T_UP
wrk_summary "${TARGETS[@]}"
per_target median M_MIBS MIBS "${TARGETS[@]}"
per_target median M_PERRESP PERRESP "${TARGETS[@]}"
per_target sum T_UP UPREQ "${TARGETS[@]}"

# per_round_ratios A B: "r1, r2, ..." of A's req/s over B's in the same round.
per_round_ratios() {
  local -a a b; local i out=()
  read -r -a a <<<"${RPS[$1]}"; read -r -a b <<<"${RPS[$2]}"
  for ((i = 0; i < ROUNDS; i++)); do out+=("$(ratio "${a[$i]}" "${b[$i]}")"); done
  local IFS=,; local joined="${out[*]}"
  echo "${joined//,/, }"
}

echo
bench_header "gzip hits vs identity hits, 20 kB cached positions (cacheproxy vs nginx proxy_cache + gzip)"
echo "- body: $BODY_KIND positions JSON, $BODY_BYTES bytes identity, $GZIP6_BYTES bytes \`gzip -6\`; upstream nginx static file, application/json"
echo "- cacheproxy: --threads $PROXY_THREADS (one instance each, idle but the one loaded), rule ttl 60s key identity+exchange+account_type,"
echo "  compression { enabled: true, min_size: 1000, level: 6 }, access log off, upstream.max_connections 64"
echo "- nginx (1 worker): proxy_cache key \$request_uri\$http_authorization, valid 200 60s, lock on, upstream keepalive 64;"
echo "  gzip on, gzip_types application/json, gzip_min_length 1000, gzip_comp_level 6, gzip_proxied any, gzip_vary on"
echo "- load: wrk -t${WRK_THREADS:-1} -c$CONNECTIONS -d$DURATION --latency -s {gzip,identity}.lua (Authorization: $TOKEN; gzip.lua adds Accept-Encoding: gzip), $PATH_QS;"
echo "  $ROUNDS round(s), $NTARGETS targets interleaved (order rotated each round); medians below"
for t in "${TARGETS[@]}"; do
  [[ ${GZ[$t]} == 1 ]] && echo "- warm-up ${LABEL[$t]%, gzip hits}: ${WARM[$t]}"
done
echo "- after the runs (cache status/Content-Encoding): $(for t in "${TARGETS[@]}"; do printf '%s %s; ' "$t" "${AFTER[$t]}"; done)"
echo
echo "| target | req/s | p50 ms | p99 ms | transfer MiB/s | body bytes | bytes/response (wrk) | upstream requests per run | non-2xx | socket errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
  printf '| %s | %.0f | %.3f | %.3f | %.2f | %s | %s | %s | %s | %s |\n' "${LABEL[$t]}" \
    "${M_RPS[$t]}" "${M_P50[$t]}" "${M_P99[$t]}" "${M_MIBS[$t]}" "${BODY[$t]}" "${M_PERRESP[$t]%.*}" \
    "$(tr ' ' '\n' <<<"${UPREQ[$t]% }" | paste -sd, -)" "${T_NON2XX[$t]}" "${T_SOCK[$t]}"
done
echo
echo "Ratios of the medians (req/s: > 1 = the first is faster; p50/p99: < 1 = the first is faster), and req/s ratio per round:"
echo
echo "| ratio | req/s | p50 | p99 | req/s per round |"
echo "|---|---:|---:|---:|---|"
gz_ratio_row() {   # gz_ratio_row NAME A B: ratio_row plus the req/s ratio per round
  ratio_row "$1" "$2" "$3" "$(per_round_ratios "$2" "$3")"
}
for n in "${THREAD_LIST[@]}"; do
  gz_ratio_row "cacheproxy ${n}t gzip / identity" "cp${n}_gzip" "cp${n}_identity"
done
gz_ratio_row "nginx gzip / identity" nginx_gzip nginx_identity
for n in "${THREAD_LIST[@]}"; do
  gz_ratio_row "cacheproxy ${n}t gzip / nginx gzip" "cp${n}_gzip" nginx_gzip
  gz_ratio_row "cacheproxy ${n}t identity / nginx identity" "cp${n}_identity" nginx_identity
done
per_round_table "req/s / p50 ms / p99 ms / MiB/s / upstream requests" "RPS P50 P99 MIBS UPREQ" "${TARGETS[@]}"

# Machine-readable results.
for t in "${TARGETS[@]}"; do
  wrk_results gzip_hits "$t" body_bytes="${BODY[$t]}"
done

status=0
for t in "${TARGETS[@]}"; do
  wrk_check "$t" || status=1
  # wrk's bytes per response = status line + headers + body: far from the
  # body size means the run did not get the variant the warm-up saw.
  if [[ "${M_PERRESP[$t]}" != NaN ]] && awk -v p="${M_PERRESP[$t]}" -v b="${BODY[$t]}" 'BEGIN { exit !(p < b || p > b + 1024) }'; then
    echo
    echo "**WARNING**: ${LABEL[$t]}: wrk read ${M_PERRESP[$t]%.*} bytes per response for a ${BODY[$t]}-byte body: not the expected variant."
  fi
  [[ "${AFTER[$t]%%/*}" == HIT ]] || { echo; echo "**WARNING**: ${LABEL[$t]}: not a HIT after the runs (${AFTER[$t]})."; }
done
# One fill per TTL expiry for cacheproxy (shared by its gzip and identity targets).
for n in "${THREAD_LIST[@]}"; do
  up=$(( ${T_UP[cp${n}_gzip]} + ${T_UP[cp${n}_identity]} ))
  if (( up > 2 * (ROUNDS * NTARGETS * (secs + 2) / 60 + 2) )); then
    echo
    echo "**WARNING**: cacheproxy ${n}t sent $up positions requests upstream during the runs: not serving hits?"
  fi
done
((WRK_FAILURES)) && echo && echo "**WARNING**: $WRK_FAILURES wrk run(s) exited non-zero."
exit "$status"
