#!/usr/bin/env bash
# Instruction counts for the hit or pass-through path, free of machine noise:
# cacheproxy (--threads 1), or nginx for comparison, under valgrind's
# callgrind behind an upstream nginx (`return 200`, the 143-byte balance
# JSON), N keep-alive requests with `ab -k -c 10`, then callgrind_annotate's
# top functions.
#
#   scripts/bench/callgrind.sh [hit|pass] [N] [--server cacheproxy|nginx]
#                                                    default: hit 20000 cacheproxy
#
# hit:  GET /api/trading/balance (cached per user, ttl 600 s; one miss, then hits)
# pass: GET /other (no rule: forwarded)
# --server nginx: nginx instead of cacheproxy, one process under valgrind
#   (daemon off, master_process off, worker_processes 1; --trace-children=no),
#   configured as hits.sh / forwarding.sh configure their nginx (lib.sh's
#   start_nginx_cache / start_nginx_proxy): hit = proxy_cache, key
#   "$request_uri$http_authorization", 200 valid for 600 s, proxy_cache_lock
#   on; pass = proxy_pass; both with upstream keepalive 64.
# Before ab: one request (hit: two; the second must be a HIT: cacheproxy's
# X-Cache, nginx's X-Cache-Status). Hit mode fails unless the upstream's
# access log saw exactly one request (the miss) in the measured run.
# Prints, as markdown, "PROGRAM TOTALS" (divide by N for instructions per
# request; start-up included) and the top functions, and writes the
# annotation next to the callgrind output in $BENCH_TMP (kept with
# BENCH_KEEP_TMP=1). A second, short run under callgrind with the warm-up
# requests only (no ab) gives the start-up + warm-up + shut-down cost, so
# (totals - that) / N is the cost of the N requests alone. With
# BENCH_RESULTS_FILE set, also the keys callgrind.KEY.instructions (the
# totals), .requests (N), .per_request (totals / N), .failed (ab's failed +
# non-2xx), .startup (the short run's totals), .per_request_net ((totals -
# startup) / N) and .upstream (requests the upstream saw in the measured run),
# KEY = MODE for cacheproxy, nginx_MODE for nginx (callgrind.nginx_hit.*),
# for run_all.sh.
# Env: CACHEPROXY_BIN as for hits.sh.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { echo "usage: callgrind.sh [hit|pass] [N] [--server cacheproxy|nginx]"; }

MODE=hit
N=20000
SERVER=cacheproxy
positional=()
while (($#)); do
  case "$1" in
    --server) SERVER=${2:-}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
((${#positional[@]} <= 2)) || { usage >&2; exit 2; }
MODE=${positional[0]:-$MODE}
N=${positional[1]:-$N}
[[ "$MODE" == hit || "$MODE" == pass ]] || { usage >&2; exit 2; }
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "callgrind.sh: N must be a positive integer" >&2; exit 2; }
[[ "$SERVER" == cacheproxy || "$SERVER" == nginx ]] || { usage >&2; exit 2; }
need_tools nginx ab valgrind callgrind_annotate curl setsid
KEY=$MODE
CACHE_HEADER=X-Cache
if [[ "$SERVER" == nginx ]]; then
  KEY=nginx_$MODE
  CACHE_HEADER=X-Cache-Status
  BIN=nginx
  NGINX_VERSION=$(nginx -v 2>&1 | sed 's/^nginx version: //')
else
  BIN=$(cacheproxy_bin) || exit 1
fi
bench_init callgrind 900

UP=$(free_port)
PP=$(free_port)
UP_LOG="$BENCH_TMP/upstream/access.log"
start_nginx upstream "$(balance_server "$UP" "$UP_LOG")"
wait_port "$UP" 5 || die "upstream: port $UP not accepting"
if [[ "$SERVER" == cacheproxy ]]; then
  user_route_rules "$BENCH_TMP/rules.yaml" balance /api/trading/balance 600s
  cacheproxy_config "$BENCH_TMP/cp.yaml" "$PP" 1 "$UP" rules="$BENCH_TMP/rules.yaml"
fi
path="/api/trading/balance?exchange=bybit&account_type=demo"
[[ "$MODE" == pass ]] && path="/other?x=1"
URL="http://127.0.0.1:$PP$path"
AUTH='Authorization: Bearer user1'
WARMUPS=1
[[ "$MODE" == hit ]] && WARMUPS=2

upstream_count() { if [[ -f "$UP_LOG" ]]; then wc -l <"$UP_LOG"; else echo 0; fi; }

# measure SUFFIX REQUESTS: one run of the server under callgrind (output
# $BENCH_TMP/callgrind.KEY$SUFFIX, annotation in .txt): start, the warm-up
# request(s), ab -n REQUESTS (none for 0), stop. Leaves PROGRAM TOTALS in
# TOTALS, the upstream's requests during the run in UPSTREAM, the warm-up's
# cache statuses in WARM.
measure() {
  local suffix=$1 n=$2 out="$BENCH_TMP/callgrind.$KEY$1" pid up0 code st i
  local vg=(valgrind --tool=callgrind --trace-children=no --callgrind-out-file="$out")
  up0=$(upstream_count)
  if [[ "$SERVER" == nginx ]]; then
    BENCH_NGINX_WRAP=("${vg[@]}")
    if [[ "$MODE" == hit ]]; then
      start_nginx_cache "nginx$suffix" "$PP" "$UP" location=/api/trading/balance valid=600s
    else
      start_nginx_proxy "nginx$suffix" "$PP" "$UP"
    fi
    pid=$SPAWN_PID
  else
    _spawn "$BENCH_TMP/valgrind$suffix.log" "${vg[@]}" "$BIN" --config "$BENCH_TMP/cp.yaml"
    pid=$SPAWN_PID
    wait_port "$PP" 60 "$pid" || { cat "$BENCH_TMP/valgrind$suffix.log" >&2; die "cacheproxy under valgrind did not start"; }
  fi
  WARM=""
  for ((i = 1; i <= WARMUPS; i++)); do
    read -r code st _ < <(http_probe "$URL" "$BENCH_TMP/body" "$CACHE_HEADER" -H "$AUTH")
    [[ "$code" == 200 ]] || die "$SERVER: warm-up request $i answered $code ($URL)"
    WARM+="${WARM:+ }$st"
  done
  [[ "$MODE" != hit || "$st" == HIT ]] \
    || die "$SERVER is not hitting ($CACHE_HEADER on two requests: $WARM): the count would be of misses"
  if ((n > 0)); then
    ab -q -k -n "$n" -c 10 -H "$AUTH" "$URL" >"$BENCH_TMP/ab.txt" 2>&1 \
      || die "ab failed: $(tail -3 "$BENCH_TMP/ab.txt")"
  fi
  kill -TERM "$pid"
  wait "$pid"
  UPSTREAM=$(($(upstream_count) - up0))
  callgrind_annotate "$out" 2>/dev/null | head -60 >"$out.txt"
  TOTALS=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$out.txt")
  [[ "$TOTALS" =~ ^[0-9]+$ ]] || die "no PROGRAM TOTALS in the callgrind annotation ($out.txt)"
}

measure _startup 0
startup=$TOTALS
measure "" "$N"
totals=$TOTALS
OUT="$BENCH_TMP/callgrind.$KEY"
failed=$(awk '/^(Failed requests|Non-2xx responses):/ {s += $NF} END {print s + 0}' "$BENCH_TMP/ab.txt")
if [[ "$MODE" == hit && "$UPSTREAM" != 1 ]]; then
  die "$SERVER: the upstream saw $UPSTREAM requests in the measured run (1 expected, the miss): not all were hits"
fi
net=$(((totals - startup) / N))
echo "## callgrind: $SERVER, $MODE path, $N requests"
echo
echo "- command: \`scripts/bench/callgrind.sh $MODE $N --server $SERVER\`; binary: $BIN${NGINX_VERSION:+ ($NGINX_VERSION)}"
echo "- instructions: $totals in all, $((totals / N)) per request (totals / $N, start-up included)"
echo "- start-up + warm-up + shut-down alone (a run without ab): $startup; (totals - that) / $N = $net per request"
echo "- warm-up $CACHE_HEADER: $WARM; upstream requests in the measured run: $UPSTREAM"
echo
echo '```'
grep -E "^(Complete|Failed|Non-2xx)" "$BENCH_TMP/ab.txt"
grep "PROGRAM TOTALS" "$OUT.txt"
sed -n '/file:function/,$p' "$OUT.txt" | sed -n 3,17p | cut -c1-160
echo '```'
bench_result "callgrind.$KEY.instructions" "$totals"
bench_result "callgrind.$KEY.requests" "$N"
bench_result "callgrind.$KEY.per_request" "$((totals / N))"
bench_result "callgrind.$KEY.failed" "$failed"
bench_result "callgrind.$KEY.startup" "$startup"
bench_result "callgrind.$KEY.per_request_net" "$net"
bench_result "callgrind.$KEY.upstream" "$UPSTREAM"
