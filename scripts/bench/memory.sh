#!/usr/bin/env bash
# Memory per cached entry: cacheproxy's RSS growth with N cached 500-byte answers.
#
#   scripts/bench/memory.sh [--entries 100000] [--body-bytes 500] [--threads-proxy N]
#
# Upstream: nginx, `return 200` with a fixed JSON body of --body-bytes bytes
# on /r (application/json; below compression.min_size 1000, so no gzip
# variant is stored). cacheproxy (access log off, admin off, compression at
# its defaults) with one rules route:
#   /r  shared, key query [k], ttl 1h, max_entries 200000, max_bytes 1GiB
# Steps: start, send 200 pass-through requests (/warm, not cached) so the
# connection buffers and thread arenas exist, read VmRSS (before); fill
# GET /r?k=1..N with curl (URL glob, 16 parallel keep-alive transfers);
# read VmRSS (after fill); request every key again and count X-Cache: HIT
# (all N must be hits, and the upstream must have seen N requests for /r);
# read VmRSS (after the second pass).
#   overhead per entry = (RSS after fill - RSS before) / N - body bytes
# i.e. everything the cache spends per entry beyond the body: stored headers,
# key, index, LRU links, allocator slack. Target (issue): <= 300 B.
#
# Options:
#   --entries N         distinct keys to fill                       [100000]
#   --body-bytes B      body size                                    [500]
#   --threads-proxy N   cacheproxy worker threads                    [1]
# Env: CACHEPROXY_BIN, BENCH_KEEP_TMP=1 as for hits.sh; BENCH_RESULTS_FILE.
# Exit status: 0 with a table; 1 if a number is missing.
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,27s/^# \{0,1\}//p' "$0"; }

ENTRIES=100000
BODY_BYTES=500
PROXY_THREADS=1
PARALLEL=16
bench_options memory.sh "--entries:ENTRIES:1..200000 --body-bytes:BODY_BYTES:20..100000
  --threads-proxy:PROXY_THREADS:count" "$@"

need_tools nginx curl python3 setsid timeout

bench_init memory $(( 240 + ENTRIES / 200 ))

UP_PORT=$(free_port)
PROXY_PORT=$(free_port)

# A JSON body of exactly BODY_BYTES bytes, nothing nginx would interpret ($, ').
BODY=$(python3 -c 'import sys
n = int(sys.argv[1]); head = "{\"pad\":\""; tail = "\"}"
print(head + "x" * (n - len(head) - len(tail)) + tail, end="")' "$BODY_BYTES")
((${#BODY} == BODY_BYTES)) || die "body is ${#BODY} bytes, wanted $BODY_BYTES"

start_nginx upstream "
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;
        location = /r {
            default_type application/json;
            return 200 '$BODY';
        }
        location / {
            access_log off;
            default_type application/json;
            return 200 '{\"warm\":true}';
        }
    }"
UP_LOG="$BENCH_TMP/upstream/access.log"

cat >"$BENCH_TMP/rules.yaml" <<'EOF'
# memory.sh: one shared route keyed on ?k=, room for 200k entries.
identity: { header: Authorization }
routes:
  - name: r
    match: { method: GET, path: /r }
    ttl: 1h
    max_entries: 200000
    max_bytes: 1GiB
    max_object_bytes: 1MiB
    key: { identity: false, query: [k] }
    shared: true
EOF
cacheproxy_config "$BENCH_TMP/cacheproxy.yaml" "$PROXY_PORT" "$PROXY_THREADS" "$UP_PORT" \
  comment="memory.sh" rules="$BENCH_TMP/rules.yaml"
start_cacheproxy cacheproxy "$PROXY_PORT" "$BENCH_TMP/cacheproxy.yaml" "$PROXY_THREADS"
# shellcheck disable=SC2154  # set by start_cacheproxy
PID=$CACHEPROXY_PID_cacheproxy

# curl_pass FILE: GET /r?k=1..ENTRIES, PARALLEL at a time; "code x-cache" per line in FILE.
curl_pass() {
  local out=$1
  timeout --kill-after=5 $(( 120 + ENTRIES / 100 )) curl -s --no-progress-meter -Z --parallel-max "$PARALLEL" \
    -w '%{stderr}%{http_code} %header{x-cache}\n' "http://127.0.0.1:$PROXY_PORT/r?k=[1-$ENTRIES]" \
    >/dev/null 2>"$out" </dev/null &
  local pid=$!
  BENCH_PIDS+=("$pid")
  wait "$pid"
}

# Warm-up: pass-through requests (not cached), so buffers and arenas exist.
timeout 60 curl -s --no-progress-meter -Z --parallel-max "$PARALLEL" -o /dev/null "http://127.0.0.1:$PROXY_PORT/warm?i=[1-200]" >/dev/null 2>&1
sleep 0.5
RSS0=$(rss_kb "$PID")
log "RSS before: $RSS0 KiB; filling $ENTRIES keys"
t0=$SECONDS
curl_pass "$BENCH_TMP/pass1.txt" || log "WARNING: curl (fill) exited $?"
FILL_S=$((SECONDS - t0))
sleep 0.5
RSS1=$(rss_kb "$PID")
UP1=$(grep -c 'GET /r?k=' "$UP_LOG" 2>/dev/null || echo 0)
log "RSS after fill: $RSS1 KiB (${FILL_S}s; upstream saw $UP1 requests for /r); second pass"
curl_pass "$BENCH_TMP/pass2.txt" || log "WARNING: curl (second pass) exited $?"
sleep 0.5
RSS2=$(rss_kb "$PID")
UP2=$(grep -c 'GET /r?k=' "$UP_LOG" 2>/dev/null || echo 0)
OK1=$(grep -c '^200 ' "$BENCH_TMP/pass1.txt")
MISS1=$(grep -c '^200 MISS' "$BENCH_TMP/pass1.txt")
OK2=$(grep -c '^200 ' "$BENCH_TMP/pass2.txt")
HIT2=$(grep -c '^200 HIT' "$BENCH_TMP/pass2.txt")
VMHWM=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status" 2>/dev/null)

read -r GROWTH PER_ENTRY OVERHEAD < <(awk -v a="$RSS0" -v b="$RSS1" -v n="$ENTRIES" -v body="$BODY_BYTES" 'BEGIN {
  if (a == "NaN" || b == "NaN") { print "NaN NaN NaN"; exit }
  g = (b - a) * 1024; printf "%.0f %.1f %.1f\n", g, g / n, g / n - body }')

echo
bench_header "memory: cacheproxy RSS with $ENTRIES cached ${BODY_BYTES}-byte entries"
echo "- setup: upstream nginx \`return 200\` ${BODY_BYTES}-byte JSON on /r; cacheproxy --threads $PROXY_THREADS, one shared route on /r keyed on query k,"
echo "  ttl 1h, max_entries 200000, max_bytes 1GiB; access log off; compression at defaults (min_size 1000: nothing stored gzipped)"
echo "- fill: curl -Z --parallel-max $PARALLEL 'http://.../r?k=[1-$ENTRIES]' (keep-alive); RSS = VmRSS from /proc/PID/status"
echo
echo "| RSS before | RSS after fill | RSS after 2nd pass | peak (VmHWM) | growth | per entry | overhead per entry (minus ${BODY_BYTES} B body) | fill: 200 / MISS | 2nd pass: 200 / HIT | upstream /r requests (after fill, after 2nd pass) | fill time |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '| %s KiB | %s KiB | %s KiB | %s KiB | %s B | %s B | **%s B** | %s / %s | %s / %s | %s, %s | %s s |\n' \
  "$RSS0" "$RSS1" "$RSS2" "${VMHWM:-?}" "$GROWTH" "$PER_ENTRY" "$OVERHEAD" "$OK1" "$MISS1" "$OK2" "$HIT2" "$UP1" "$UP2" "$FILL_S"

bench_result memory.entries "$ENTRIES"
bench_result memory.rss_before_kb "$RSS0"
bench_result memory.rss_after_kb "$RSS1"
bench_result memory.per_entry_b "$PER_ENTRY"
bench_result memory.overhead_b "$OVERHEAD"
bench_result memory.second_pass_hits "$HIT2"
bench_result memory.upstream "$UP2"

status=0
[[ "$OVERHEAD" == NaN ]] && { echo "ERROR: no RSS numbers" >&2; status=1; }
if ((HIT2 != ENTRIES || UP2 != ENTRIES)); then
  echo
  echo "**WARNING**: expected $ENTRIES hits on the second pass and $ENTRIES upstream requests; got $HIT2 hits and $UP2 upstream requests (entries evicted or not stored?)."
fi
exit "$status"
