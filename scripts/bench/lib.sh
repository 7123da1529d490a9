#!/usr/bin/env bash
# Shared helpers for the benchmark scripts in scripts/bench/. Source it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   bench_init forwarding          # temp dir, cleanup trap, watchdog
#
# Everything runs on 127.0.0.1. Every process started through these helpers
# (nginx, cacheproxy, wrk, the watchdog) is stopped by the EXIT/INT/TERM trap,
# by process id (each daemon gets its own process group, killed as a group).
#
# Functions:
#   bench_init NAME [MAX_SECONDS]   make $BENCH_TMP, set the trap, start a watchdog
#   free_port                        print a free loopback TCP port
#   wait_port PORT [SECONDS] [PID]   wait until PORT accepts connections
#   start_nginx NAME SERVER_BLOCK [HTTP_EXTRA]
#                                    own nginx instance (config under $BENCH_TMP/NAME)
#   start_cacheproxy NAME PORT CONFIG_FILE [THREADS]
#   cacheproxy_bin                   print the binary to use (Release build preferred)
#   run_wrk OUT_FILE DURATION URL [wrk args...]   wrk -t1 -c50 --latency, bounded
#   wrk_parse FILE                   print "rps p50_ms p99_ms requests non2xx sock_errors"
#   to_ms VALUE                      "850.00us" / "1.2ms" / "1.5s" / "2m" -> ms
#   median N...                      median of the numbers
#   ratio A B                        A/B with 2 decimals ("n/a" if B is 0/empty)
#   duration_seconds DURATION        "10s" / "1m" / "500ms" -> whole seconds (>= 1)
#   bench_header TITLE               markdown header: date, nproc, CPU, versions, command
#   die MESSAGE                      print to stderr and exit 1 (the trap cleans up)
#   start_varnish NAME PORT VCL_FILE own varnishd (-F, malloc 64m, workdir in $BENCH_TMP/NAME)
#   start_sim NAME PORT LATENCY [ARGS...]
#                                    the legacy simulator (scripts/legacy_sim.py, /usr/bin/python3)
#   sim_count PORT ROUTE...          sum of the simulator's request counters for these routes
#   sim_post PORT PATH [JSON]        POST to a /__sim/ control
#   rss_kb PID                       VmRSS of PID in KiB
#   bench_result KEY VALUE           "KEY=VALUE" to $BENCH_RESULTS_FILE if set (run_all.sh, smoke.sh)
#   raise_nofile N                   raise the soft open-files limit to N (or the hard limit)

# This file is sourced; the caller chooses its own shell options. We rely on
# pipefail-free constructs and check return codes explicitly.

BENCH_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_LIB_DIR/../.." && pwd)"
BENCH_TMP=""
BENCH_PGIDS=()        # process groups of daemons we started
BENCH_PIDS=()         # plain pids (wrk, watchdog) we started
BENCH_USED_PORTS=" "
BENCH_WATCHDOG_PID=""
BENCH_KEEP_TMP="${BENCH_KEEP_TMP:-0}"   # 1 = leave $BENCH_TMP for inspection

die() {
  echo "ERROR: $*" >&2
  exit 1
}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------- lifecycle --

bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid pg
  # wrk and other plain children first.
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  # Daemons: TERM their whole process group (nginx master + workers).
  for pg in "${BENCH_PGIDS[@]}"; do
    kill -TERM -- "-$pg" 2>/dev/null || kill -TERM "$pg" 2>/dev/null || true
  done
  # Give them up to 5 s, then KILL whatever is left.
  local deadline=$((SECONDS + 5)) alive
  while ((SECONDS < deadline)); do
    alive=0
    for pg in "${BENCH_PGIDS[@]}" "${BENCH_PIDS[@]}"; do
      if kill -0 -- "-$pg" 2>/dev/null || kill -0 "$pg" 2>/dev/null; then alive=1; fi
    done
    ((alive)) || break
    sleep 0.1
  done
  for pg in "${BENCH_PGIDS[@]}"; do
    kill -KILL -- "-$pg" 2>/dev/null || kill -KILL "$pg" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [[ -n "$BENCH_TMP" && -d "$BENCH_TMP" ]]; then
    if [[ "$BENCH_KEEP_TMP" == 1 || $rc -ne 0 ]]; then
      echo "(temp files kept in $BENCH_TMP)" >&2
    else
      rm -rf "$BENCH_TMP"
    fi
  fi
  exit "$rc"
}

# bench_init NAME [MAX_SECONDS]: temp dir, trap, and a watchdog that sends
# TERM to this script after MAX_SECONDS (default 600) so no run is unbounded.
bench_init() {
  local name=$1 max=${2:-600}
  BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
  BENCH_TMP=$(mktemp -d "/tmp/cacheproxy-bench-$name.XXXXXX") || die "mktemp failed"
  # nginx workers drop to an unprivileged user when started as root: they must
  # be able to reach their cache directory inside the temp dir.
  chmod 755 "$BENCH_TMP"
  trap bench_cleanup EXIT
  trap 'echo "interrupted" >&2; exit 130' INT
  trap 'echo "stopped (SIGTERM; watchdog after '"$max"'s?)" >&2; exit 143' TERM
  # Its own process group (bash + sleep), so the cleanup stops the sleep too.
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid bash -c 'sleep "$1" && echo "watchdog: $2 ran longer than $1 s, stopping it" >&2 && kill -TERM "$3"' \
    watchdog "$max" "$name" "$$" </dev/null >/dev/null &
  BENCH_WATCHDOG_PID=$!
  BENCH_PGIDS+=("$BENCH_WATCHDOG_PID")
}

# ------------------------------------------------------------------- ports --

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()') \
      || die "free_port: python3 failed"
    if [[ "$BENCH_USED_PORTS" != *" $p "* ]]; then
      BENCH_USED_PORTS+="$p "
      echo "$p"
      return 0
    fi
  done
  die "free_port: no free port found"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT [SECONDS=10] [PID]: 0 once PORT accepts; fails early if PID dies.
wait_port() {
  local port=$1 secs=${2:-10} pid=${3:-}
  local deadline=$((SECONDS + secs))
  while ((SECONDS <= deadline)); do
    port_open "$port" && return 0
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.05
  done
  return 1
}

# Start "$@" in its own process group (setsid), record it for cleanup, and
# leave its pid in SPAWN_PID. (Not called in $(...): the record would be lost.)
_spawn() {
  local out=$1; shift
  setsid "$@" >"$out" 2>&1 </dev/null &
  SPAWN_PID=$!
  BENCH_PGIDS+=("$SPAWN_PID")
}

# ------------------------------------------------------------------- nginx --

# start_nginx NAME SERVER_BLOCK [HTTP_EXTRA]: writes $BENCH_TMP/NAME/nginx.conf
# with one worker, no daemon, every path inside $BENCH_TMP/NAME; SERVER_BLOCK is
# the full "server { ... }" text, HTTP_EXTRA goes in the http block before it
# (upstream {...}, proxy_cache_path ...). The access log is
# $BENCH_TMP/NAME/access.log. Waits for the first "listen" port in the block.
# Sets NGINX_PID_<NAME>.
start_nginx() {
  local name=$1 server=$2 extra=${3:-}
  local dir="$BENCH_TMP/$name"
  mkdir -p "$dir/tmp" "$dir/logs"
  chmod 755 "$dir" "$dir/tmp" "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 4096;
    multi_accept on;
}
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server_tokens off;
    $extra
    $server
}
EOF
  local port
  port=$(grep -o -E 'listen[[:space:]]+127\.0\.0\.1:[0-9]+' <<<"$server" | head -1 | cut -d: -f2)
  [[ -n "$port" ]] || die "start_nginx $name: server block needs 'listen 127.0.0.1:PORT'"
  nginx -t -q -e "$dir/logs/error.log" -c "$dir/nginx.conf" -p "$dir" \
    || { cat "$dir/logs/error.log" >&2; die "start_nginx $name: config test failed ($dir/nginx.conf)"; }
  local pid
  _spawn "$dir/stdout.log" nginx -e "$dir/logs/error.log" -c "$dir/nginx.conf" -p "$dir"
  pid=$SPAWN_PID
  printf -v "NGINX_PID_${name//-/_}" '%s' "$pid"
  if ! wait_port "$port" 10 "$pid"; then
    cat "$dir/stdout.log" "$dir/logs/error.log" >&2 2>/dev/null
    die "start_nginx $name: port $port not accepting after 10 s"
  fi
  log "nginx '$name' up on 127.0.0.1:$port (pid $pid)"
}

# -------------------------------------------------------------- cacheproxy --

# The binary: $CACHEPROXY_BIN, else a Release build, else build/cacheproxy
# (built if missing).
cacheproxy_bin() {
  if [[ -n "${CACHEPROXY_BIN:-}" ]]; then
    [[ -x "$CACHEPROXY_BIN" ]] || die "CACHEPROXY_BIN=$CACHEPROXY_BIN is not executable"
    echo "$CACHEPROXY_BIN"; return 0
  fi
  local c
  for c in "$BENCH_ROOT/build-release/cacheproxy" "$BENCH_ROOT/build/cacheproxy"; do
    [[ -x "$c" ]] && { echo "$c"; return 0; }
  done
  log "no cacheproxy binary; building build/cacheproxy"
  timeout 1200 cmake --build "$BENCH_ROOT/build" -j2 --target cacheproxy >&2 \
    || die "could not build cacheproxy (cmake --build build --target cacheproxy)"
  echo "$BENCH_ROOT/build/cacheproxy"
}

# start_cacheproxy NAME PORT CONFIG_FILE [THREADS]: logs in $BENCH_TMP/NAME.log.
start_cacheproxy() {
  local name=$1 port=$2 config=$3 threads=${4:-}
  local bin args
  bin=$(cacheproxy_bin) || exit 1
  args=(--config "$config" --log-level warn)
  [[ -n "$threads" ]] && args+=(--threads "$threads")
  "$bin" "${args[@]}" --check >"$BENCH_TMP/$name.check" 2>&1 \
    || { cat "$BENCH_TMP/$name.check" >&2; die "cacheproxy '$name': config check failed ($config)"; }
  local pid
  _spawn "$BENCH_TMP/$name.log" "$bin" "${args[@]}"
  pid=$SPAWN_PID
  printf -v "CACHEPROXY_PID_${name//-/_}" '%s' "$pid"
  if ! wait_port "$port" 15 "$pid"; then
    cat "$BENCH_TMP/$name.log" >&2
    die "cacheproxy '$name': port $port not accepting after 15 s"
  fi
  log "cacheproxy '$name' up on 127.0.0.1:$port (pid $pid, $bin${threads:+, threads $threads})"
}

# --------------------------------------------------------------------- wrk --

# duration_seconds "10s" -> 10 ; "2m" -> 120 ; "500ms" -> 1 ; "7" -> 7
duration_seconds() {
  local d=$1
  case "$d" in
    *ms) echo $(( (${d%ms} + 999) / 1000 )) ;;
    *s)  echo "${d%s}" ;;
    *m)  echo $(( ${d%m} * 60 )) ;;
    *h)  echo $(( ${d%h} * 3600 )) ;;
    *)   echo "$d" ;;
  esac
}

valid_duration() { [[ "$1" =~ ^[0-9]+(s|m|h)?$ && "${1%[smh]}" -gt 0 ]]; }

# run_wrk OUT_FILE DURATION URL [extra wrk args...]: -t1 -c50 --latency,
# bounded by timeout (duration + 30 s). Returns wrk's exit code.
# WRK_CONNECTIONS / WRK_THREADS override -c / -t.
run_wrk() {
  local out=$1 dur=$2 url=$3; shift 3
  local secs
  secs=$(duration_seconds "$dur")
  timeout --kill-after=5 $((secs + 30)) \
    wrk -t"${WRK_THREADS:-1}" -c"${WRK_CONNECTIONS:-50}" -d"$dur" --timeout 5s --latency "$@" "$url" \
    >"$out" 2>&1 </dev/null &
  local pid=$!
  BENCH_PIDS+=("$pid")
  wait "$pid"
}

# to_ms "850.00us" -> 0.850 ; "1.20ms" -> 1.200 ; "1.50s" -> 1500.000 ; "2.00m" -> 120000.000
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") m = n / 1000; else if (u == "ms") m = n;
    else if (u == "s") m = n * 1000; else if (u == "m") m = n * 60000;
    else if (u == "h") m = n * 3600000; else { print "NaN"; exit }
    printf "%.3f\n", m }'
}

# wrk_parse FILE -> "rps p50_ms p99_ms requests non2xx socket_errors"
# Missing values print as "NaN" (e.g. wrk crashed); socket_errors is the sum
# of connect + read + write + timeout.
wrk_parse() {
  local f=$1
  local rps p50 p99 reqs non2xx sock
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$f")
  p50=$(awk '$1 == "50%" {print $2; exit}' "$f")
  p99=$(awk '$1 == "99%" {print $2; exit}' "$f")
  reqs=$(awk '/ requests in / {print $1; exit}' "$f")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f")
  sock=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$f")
  [[ -n "$p50" ]] && p50=$(to_ms "$p50") || p50=NaN
  [[ -n "$p99" ]] && p99=$(to_ms "$p99") || p99=NaN
  echo "${rps:-NaN} $p50 $p99 ${reqs:-NaN} ${non2xx:-0} ${sock:-0}"
}

# median N... (ignores NaN; prints NaN if nothing is left)
median() {
  printf '%s\n' "$@" | grep -v -x -e NaN -e '' | sort -g | awk '
    { a[NR] = $1 }
    END {
      if (NR == 0) { print "NaN"; exit }
      if (NR % 2) m = a[(NR + 1) / 2]; else m = (a[NR / 2] + a[NR / 2 + 1]) / 2
      printf "%.3f\n", m }'
}

sum() { printf '%s\n' "$@" | awk '$1 != "NaN" { s += $1 } END { print s + 0 }'; }

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "NaN" || b == "NaN" || b + 0 == 0) { print "n/a"; exit }
    printf "%.2f\n", a / b }'
}

# ------------------------------------------------------------------ report --

bench_header() {
  local title=$1
  local cpu
  cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)
  echo "## $title"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- host: nproc=$(nproc), CPU: ${cpu:-unknown}"
  echo "- nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "- wrk: $(wrk --version 2>&1 | head -1 | awk '{print $2}')"
  if command -v varnishd >/dev/null; then
    echo "- varnish: $(varnishd -V 2>&1 | head -1 | sed 's/^varnishd (//; s/ revision.*//')"
  fi
  if command -v ab >/dev/null; then
    echo "- ab: $(ab -V 2>&1 | head -1 | sed 's/^This is ApacheBench, //; s/ <.*//')"
  fi
  echo "- compiler: $(gcc --version 2>/dev/null | head -1); kernel $(uname -r)"
  local bin bt
  bin=$(cacheproxy_bin)
  bt=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$(dirname "$bin")/CMakeCache.txt" 2>/dev/null)
  echo "- cacheproxy: $bin (${bt:-build type unknown}, built $(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC'))"
  echo "- git: $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$BENCH_ROOT" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
  echo "- command: \`$BENCH_COMMAND\`"
  echo "- load average (1/5/15 min): at start ${BENCH_LOAD_START:-?} (before our processes), at end $(cut -d" " -f1-3 /proc/loadavg 2>/dev/null) (includes our own load)" \
       "(anything else busy on the box skews the numbers; wrk, the proxies and the upstream share $(nproc) cores)"
}

# The legacy-shaped balance JSON every upstream returns (~150 bytes). Quotes
# are escaped for an nginx single-quoted string (it has none).
# shellcheck disable=SC2034  # used by the scripts that source this file
BALANCE_JSON='{"user_id":"user1","exchange":"bybit","account_type":"demo","total":10000.0,"available":9876.54,"currency":"USDT","ts":1732470000.123,"seq":42}'

# -------------------------------------------------------- more servers --

# start_varnish NAME PORT VCL_FILE: varnishd in the foreground (-F), no jail
# (-j none: no dedicated users needed, works as root or not), malloc storage
# 64m, its working directory (-n) in $BENCH_TMP/NAME. Output in
# $BENCH_TMP/NAME/varnishd.log. VCL compilation takes a few seconds: waits up
# to 60 s for the port. Sets VARNISH_PID_<NAME>.
start_varnish() {
  local name=$1 port=$2 vcl=$3
  local dir="$BENCH_TMP/$name"
  mkdir -p "$dir"
  chmod 755 "$dir"
  command -v varnishd >/dev/null || die "varnishd not found (scripts/deps.sh --bench installs varnish)"
  _spawn "$dir/varnishd.log" varnishd -F -j none -a "127.0.0.1:$port" -f "$vcl" \
    -s malloc,64m -n "$dir/work"
  local pid=$SPAWN_PID
  printf -v "VARNISH_PID_${name//-/_}" '%s' "$pid"
  if ! wait_port "$port" 60 "$pid"; then
    cat "$dir/varnishd.log" >&2
    die "start_varnish $name: port $port not accepting after 60 s"
  fi
  log "varnish '$name' up on 127.0.0.1:$port (pid $pid)"
}

# start_sim NAME PORT LATENCY [ARGS...]: the legacy simulator, waiting for its
# "legacy-sim listening on" line (up to 20 s). Output in $BENCH_TMP/NAME.log.
# Sets SIM_PID_<NAME>.
start_sim() {
  local name=$1 port=$2 latency=$3; shift 3
  local py=/usr/bin/python3
  [[ -x "$py" ]] || die "start_sim: $py not found (scripts/deps.sh installs python3-fastapi)"
  _spawn "$BENCH_TMP/$name.log" "$py" "$BENCH_ROOT/scripts/legacy_sim.py" \
    --port "$port" --latency "$latency" "$@"
  local pid=$SPAWN_PID
  printf -v "SIM_PID_${name//-/_}" '%s' "$pid"
  local deadline=$((SECONDS + 20))
  until grep -q 'legacy-sim listening on' "$BENCH_TMP/$name.log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
      cat "$BENCH_TMP/$name.log" >&2
      die "start_sim $name: the simulator did not come up on port $port"
    fi
    sleep 0.05
  done
  log "legacy simulator '$name' up on 127.0.0.1:$port (pid $pid, latency ${latency}s)"
}

# sim_count PORT ROUTE...: sum of /__sim/stats requests[ROUTE] (prints NaN on error).
sim_count() {
  local port=$1; shift
  curl -sS --max-time 5 "http://127.0.0.1:$port/__sim/stats" 2>/dev/null |
    python3 -c 'import json, sys
try:
    d = json.load(sys.stdin)["requests"]
    print(sum(d[r] for r in sys.argv[1:]))
except Exception:
    print("NaN")' "$@"
}

# sim_post PORT PATH [JSON]: POST a /__sim/ control; fails on a non-2xx answer.
sim_post() {
  local port=$1 path=$2 body=${3:-}
  local args=(-sS -f --max-time 5 -o /dev/null -X POST)
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data "$body")
  curl "${args[@]}" "http://127.0.0.1:$port$path"
}

# rss_kb PID: resident set size in KiB (VmRSS), NaN if unreadable.
rss_kb() {
  awk '/^VmRSS:/ {print $2; f = 1} END {if (!f) print "NaN"}' "/proc/$1/status" 2>/dev/null || echo NaN
}

# bench_result KEY VALUE: machine-readable result for run_all.sh / smoke.sh.
bench_result() {
  [[ -n "${BENCH_RESULTS_FILE:-}" ]] && echo "$1=$2" >>"$BENCH_RESULTS_FILE"
  return 0
}

# raise_nofile N: soft RLIMIT_NOFILE to N (capped at the hard limit).
raise_nofile() {
  local want=$1 hard
  hard=$(ulimit -Hn)
  [[ "$hard" != unlimited ]] && ((hard < want)) && want=$hard
  ulimit -n "$want" 2>/dev/null || log "could not raise ulimit -n to $want (now $(ulimit -n))"
}
