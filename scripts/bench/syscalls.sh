#!/usr/bin/env bash
# System calls per forwarded request: cacheproxy pass-through (--threads 1)
# vs nginx proxy_pass (1 worker, upstream keepalive 64), both in front of one
# upstream nginx (`return 200`, the 143-byte balance JSON). Each is warmed with
# 2,000 requests, then traced with `strace -c -f` over N keep-alive requests
# (`ab -k -c 10`); prints both strace summaries and the calls per request.
# strace slows both alike: the req/s printed here are not throughput figures.
#
#   scripts/bench/syscalls.sh [N]        default: 20000
#
# Env: CACHEPROXY_BIN as for hits.sh, BENCH_KEEP_TMP=1. At most 300 s.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-20000}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: syscalls.sh [N]" >&2; exit 2; }
need_tools nginx ab strace setsid timeout
BIN=$(cacheproxy_bin) || exit 1
bench_init syscalls 300

UP=$(free_port)
PP=$(free_port)
NP=$(free_port)
start_nginx upstream "$(balance_server "$UP")"
start_nginx_proxy nginx-proxy "$NP" "$UP"
cat >"$BENCH_TMP/cp.yaml" <<EOT
listen: 127.0.0.1:$PP
threads: 1
upstream: { url: http://127.0.0.1:$UP, max_connections: 64 }
logging: { level: warn, access_log: false }
admin: { enabled: false }
EOT
_spawn "$BENCH_TMP/cp.log" "$BIN" --config "$BENCH_TMP/cp.yaml"
CP_PID=$SPAWN_PID
wait_port "$PP" 10 "$CP_PID" || die "cacheproxy did not start: $(tail -3 "$BENCH_TMP/cp.log")"
# shellcheck disable=SC2154  # NGINX_PID_nginx_proxy: set by start_nginx
NGINX_WORKER=$(pgrep -P "$NGINX_PID_nginx_proxy" | head -1)
[[ -n $NGINX_WORKER ]] || die "no nginx worker process under $NGINX_PID_nginx_proxy"

# trace NAME PID PORT: strace -c over N requests to PORT; prints the summary.
trace() {
  local name=$1 pid=$2 port=$3 out="$BENCH_TMP/$1.strace" tracer calls
  ab -q -k -n 2000 -c 10 "http://127.0.0.1:$port/other?x=1" >/dev/null 2>&1
  timeout 120 strace -c -f -p "$pid" -o "$out" 2>/dev/null &
  tracer=$!
  sleep 1   # attached
  ab -q -k -n "$N" -c 10 "http://127.0.0.1:$port/other?x=1" >"$BENCH_TMP/$name.ab" 2>&1 \
    || die "ab against $name failed: $(tail -3 "$BENCH_TMP/$name.ab")"
  kill -INT "$tracer"
  wait "$tracer" 2>/dev/null
  calls=$(awk '$NF == "total" { print $(NF-2) }' "$out")
  echo "### $name: $(grep -E '^(Complete|Failed)' "$BENCH_TMP/$name.ab" | tr -s ' ' | paste -sd';')"
  sed -n '1,12p' "$out"
  awk -v c="$calls" -v n="$N" -v who="$name" 'BEGIN { printf "%s: %d system calls, %.2f per request\n\n", who, c, c / n }'
}

echo "command: scripts/bench/syscalls.sh $N; binary: $BIN"
trace cacheproxy "$CP_PID" "$PP"
trace nginx_proxy_pass "$NGINX_WORKER" "$NP"
