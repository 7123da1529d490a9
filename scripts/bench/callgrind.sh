#!/usr/bin/env bash
# Instruction counts for the hit or pass-through path, free of machine noise:
# cacheproxy (--threads 1) under valgrind's callgrind behind an upstream nginx
# (`return 200`, the 143-byte balance JSON), N keep-alive requests with
# `ab -k -c 10`, then callgrind_annotate's top functions.
#
#   scripts/bench/callgrind.sh [hit|pass] [N]        default: hit 20000
#
# hit:  GET /api/trading/balance (cached per user, ttl 600 s; one miss, then hits)
# pass: GET /other (no rule: forwarded)
# Prints, as markdown, "PROGRAM TOTALS" (divide by N for instructions per
# request; start-up adds ~20 M) and the top functions, and writes the
# annotation next to the callgrind output in $BENCH_TMP (kept with
# BENCH_KEEP_TMP=1). With BENCH_RESULTS_FILE set, also the keys
# callgrind.MODE.instructions (the totals), .requests (N), .per_request
# (totals / N) and .failed (ab's failed + non-2xx), for run_all.sh.
# Env: CACHEPROXY_BIN as for hits.sh.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=${1:-hit}
N=${2:-20000}
[[ "$MODE" == hit || "$MODE" == pass ]] || { echo "usage: callgrind.sh [hit|pass] [N]" >&2; exit 2; }
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "callgrind.sh: N must be a positive integer" >&2; exit 2; }
need_tools nginx ab valgrind callgrind_annotate curl setsid
BIN=$(cacheproxy_bin) || exit 1
bench_init callgrind 900

UP=$(free_port)
PP=$(free_port)
start_nginx upstream "$(balance_server "$UP")"
wait_port "$UP" 5 || die "upstream: port $UP not accepting"
cat >"$BENCH_TMP/rules.yaml" <<'EOT'
identity: { header: Authorization }
routes:
  - name: balance
    match: { method: GET, path: /api/trading/balance }
    ttl: 600s
    key: { identity: true, query: [exchange, account_type] }
EOT
cat >"$BENCH_TMP/cp.yaml" <<EOT
listen: 127.0.0.1:$PP
threads: 1
upstream: { url: http://127.0.0.1:$UP, max_connections: 64 }
logging: { level: warn, access_log: false }
admin: { enabled: false }
rules: $BENCH_TMP/rules.yaml
EOT
OUT="$BENCH_TMP/callgrind.$MODE"
setsid valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" --config "$BENCH_TMP/cp.yaml" \
  >"$BENCH_TMP/valgrind.log" 2>&1 &
VPID=$!
BENCH_PIDS+=("$VPID")
wait_port "$PP" 60 "$VPID" || { cat "$BENCH_TMP/valgrind.log" >&2; die "cacheproxy under valgrind did not start"; }
path="/api/trading/balance?exchange=bybit&account_type=demo"
[[ "$MODE" == pass ]] && path="/other?x=1"
curl -s -o /dev/null -H 'Authorization: Bearer user1' "http://127.0.0.1:$PP$path"
ab -q -k -n "$N" -c 10 -H 'Authorization: Bearer user1' "http://127.0.0.1:$PP$path" >"$BENCH_TMP/ab.txt" 2>&1 \
  || die "ab failed: $(tail -3 "$BENCH_TMP/ab.txt")"
kill -TERM "$VPID"
wait "$VPID"
callgrind_annotate "$OUT" 2>/dev/null | head -60 >"$OUT.txt"
totals=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$OUT.txt")
[[ "$totals" =~ ^[0-9]+$ ]] || die "no PROGRAM TOTALS in the callgrind annotation ($OUT.txt)"
failed=$(awk '/^(Failed requests|Non-2xx responses):/ {s += $NF} END {print s + 0}' "$BENCH_TMP/ab.txt")
echo "## callgrind: $MODE path, $N requests"
echo
echo "- command: \`scripts/bench/callgrind.sh $MODE $N\`; binary: $BIN"
echo "- instructions: $totals in all, $((totals / N)) per request (totals / $N, start-up included)"
echo
echo '```'
grep -E "^(Complete|Failed|Non-2xx)" "$BENCH_TMP/ab.txt"
grep "PROGRAM TOTALS" "$OUT.txt"
sed -n '/file:function/,$p' "$OUT.txt" | sed -n 3,17p | cut -c1-160
echo '```'
bench_result "callgrind.$MODE.instructions" "$totals"
bench_result "callgrind.$MODE.requests" "$N"
bench_result "callgrind.$MODE.per_request" "$((totals / N))"
bench_result "callgrind.$MODE.failed" "$failed"
