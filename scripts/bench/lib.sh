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
#
# Shared by the scenario scripts (each function's comment says more):
#   bench_options SCRIPT SPEC ARGS...  parse and check the command line, set BENCH_COMMAND
#   usage_error SCRIPT MESSAGE       "SCRIPT: MESSAGE" to stderr, exit 2
#   need_tools [--hint TEXT] TOOL... die unless every TOOL is on PATH
#   balance_server PORT [ACCESS_LOG] nginx server block: 200 with $BALANCE_JSON
#   nginx_upstream_u PORT [KEEPALIVE_REQUESTS]  nginx "upstream u" block, keepalive 64
#   start_nginx_proxy NAME PORT UPSTREAM_PORT  nginx proxy_pass in front (keepalive 64)
#   start_nginx_cache NAME PORT UPSTREAM_PORT [key=value...]  nginx proxy_cache in front
#   cacheproxy_config FILE PORT THREADS UPSTREAM_PORT [key=value...]  write a cacheproxy YAML
#   user_route_rules FILE NAME PATH TTL [COMMENT...]  rules: one GET route cached per user
#   start_sim_cacheproxy SCRIPT LATENCY THREADS [EXTRA_YAML]  simulator + cacheproxy (shipped rules)
#   sim_ready LATENCY                one balance GET through cacheproxy, then zero the simulator
#   wrk_lua FILE PATH AUTHORIZATION [COMMENT [LINE...]]  wrk script: one GET with Authorization
#   header_value NAME                a header's value from response headers on stdin
#   http_probe URL BODY_FILE CACHE_HEADER [curl args...]  "CODE CACHE_STATUS CONTENT_ENCODING BYTES"
#   wrk_round TARGET ROUND URL [wrk args...]  one measured run, recorded per target
#   wrk_errors TARGET ROUND          wrk's error lines of that run to stderr
#   per_target FUNC OUT IN TARGET... OUT[t]=$(FUNC ${IN[t]}) (median, sum, ...)
#   wrk_summary TARGET...            medians (M_RPS M_P50 M_P99) and sums (T_NON2XX T_SOCK)
#   ratio_row NAME A B [CELL...]     markdown row of A's median ratios to B's
#   per_round_table TITLE "ARRAY..." TARGET...  the collapsed per-round markdown table
#   wrk_results PREFIX TARGET [KEY=VALUE...]  bench_result lines of a wrk target
#   wrk_check TARGET                 ERROR (returns 1) / WARNING lines of a wrk target
#   bench_driver_init DIR            run_all.sh / smoke.sh: trap stopping $BENCH_CHILD, removing DIR

# This file is sourced; the caller chooses its own shell options. We rely on
# pipefail-free constructs and check return codes explicitly.

BENCH_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_LIB_DIR/../.." && pwd)"
BENCH_TMP=""
BENCH_PGIDS=()        # process groups of daemons we started
BENCH_PIDS=()         # plain pids (wrk, watchdog) we started
BENCH_RM=()           # paths outside $BENCH_TMP removed at exit, always (tmpfs scratch)
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
  local path
  for path in "${BENCH_RM[@]}"; do rm -rf -- "$path"; done
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
# with one worker ($BENCH_NGINX_WORKERS, N or auto, for a NAME not upstream*), no daemon, every path inside $BENCH_TMP/NAME; SERVER_BLOCK is
# the full "server { ... }" text, HTTP_EXTRA goes in the http block before it
# (upstream {...}, proxy_cache_path ...). The access log is
# $BENCH_TMP/NAME/access.log. Waits for the first "listen" port in the block.
# Sets NGINX_PID_<NAME>. With BENCH_NGINX_WRAP (an array: a command prefix,
# e.g. (valgrind --tool=callgrind ...)), a NAME not upstream* runs as
# "WRAP... nginx ..." with master_process off and worker_processes 1 (one
# process: the one the wrapper sees) and gets 60 s to open its port.
BENCH_NGINX_WRAP=()
start_nginx() {
  local name=$1 server=$2 extra=${3:-}
  local dir="$BENCH_TMP/$name" workers=1 master=on wrap=() secs=10
  if [[ $name != upstream* ]]; then   # the server under test, not the upstream
    workers=${BENCH_NGINX_WORKERS:-1}
    if ((${#BENCH_NGINX_WRAP[@]})); then
      wrap=("${BENCH_NGINX_WRAP[@]}") master=off workers=1 secs=60
    fi
  fi
  mkdir -p "$dir/tmp" "$dir/logs"
  chmod 755 "$dir" "$dir/tmp" "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process $master;
worker_processes $workers;
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
  _spawn "$dir/stdout.log" "${wrap[@]}" nginx -e "$dir/logs/error.log" -c "$dir/nginx.conf" -p "$dir"
  pid=$SPAWN_PID
  printf -v "NGINX_PID_${name//-/_}" '%s' "$pid"
  if ! wait_port "$port" "$secs" "$pid"; then
    cat "$dir/stdout.log" "$dir/logs/error.log" >&2 2>/dev/null
    die "start_nginx $name: port $port not accepting after $secs s"
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

# ------------------------------------------------------------ command line --

# usage_error SCRIPT MESSAGE: "SCRIPT: MESSAGE" on stderr, exit 2 (bad usage).
usage_error() {
  echo "$1: $2" >&2
  exit 2
}

# bench_options SCRIPT SPEC ARGS...: parse a scenario's command line (ARGS)
# and set BENCH_COMMAND (for bench_header). SPEC is a list of words
# "--option:VARIABLE:CHECK"; each option takes a value, stored in VARIABLE,
# whose value before the call is the default. -h/--help prints the caller's
# usage() and exits 0; an unknown argument prints "SCRIPT: unknown argument"
# and the usage on stderr and exits 2; an option without a value exits 1.
# Then each value is checked, in SPEC order, by CHECK:
#   duration  wrk syntax: 10s, 1m          count    a positive integer
#   seconds   a decimal number: 1.0        percent  a decimal number
#   threads   a positive integer or a list N,M
#   MIN..MAX  a positive integer from MIN to MAX
#   -         none (the caller checks it)
# A failed check dies (exit 1); with BENCH_USAGE_EXIT=2 it is a usage_error.
bench_options() {
  local script=$1 spec=$2; shift 2
  BENCH_COMMAND="scripts/bench/$script${*:+ $*}"
  local -A var=() dflt=()
  local w opt v check val
  for w in $spec; do
    IFS=: read -r opt v check <<<"$w"
    var[$opt]=$v
    dflt[$opt]=${!v}
  done
  while (($#)); do
    case "$1" in
      -h|--help) usage; exit 0 ;;
    esac
    if [[ -z "$1" || -z "${var[$1]:-}" ]]; then
      echo "$script: unknown argument '$1'" >&2
      usage >&2
      exit 2
    fi
    printf -v "${var[$1]}" '%s' "${2:?$1 needs a value}"
    shift 2
  done
  for w in $spec; do
    IFS=: read -r opt v check <<<"$w"
    val=${!v}
    case "$check" in
      duration) valid_duration "$val" || _bad_option "$script" "$opt: expected e.g. ${dflt[$opt]} or 1m, got '$val'" ;;
      count) [[ "$val" =~ ^[1-9][0-9]*$ ]] || _bad_option "$script" "$opt: expected a positive integer" ;;
      threads) [[ "$val" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || _bad_option "$script" "$opt: expected N or a list N,M" ;;
      workers) [[ "$val" =~ ^([1-9][0-9]*|auto)$ ]] || _bad_option "$script" "$opt: expected N or auto" ;;
      seconds) [[ "$val" =~ ^[0-9]+(\.[0-9]+)?$ ]] || _bad_option "$script" "$opt: expected seconds, e.g. ${dflt[$opt]}" ;;
      percent) [[ "$val" =~ ^[0-9]+(\.[0-9]+)?$ ]] || _bad_option "$script" "$opt: expected a percentage" ;;
      *..*)
        if ! [[ "$val" =~ ^[1-9][0-9]*$ ]] || ((val < ${check%..*} || val > ${check#*..})); then
          _bad_option "$script" "$opt: expected $check"
        fi ;;
      -) ;;
      *) die "bench_options: unknown check '$check' for $opt" ;;
    esac
  done
  return 0
}

_bad_option() {
  if [[ "${BENCH_USAGE_EXIT:-1}" == 2 ]]; then
    usage_error "$1" "$2"
  fi
  die "$2"
}

# need_tools [--hint TEXT] TOOL...: die "TOOL not found (TEXT)" unless every
# TOOL is on PATH. TEXT defaults to the deps.sh hint; --hint '' drops it.
need_tools() {
  local hint="scripts/deps.sh --bench installs the bench tools" tool
  if [[ "${1:-}" == --hint ]]; then
    hint=$2
    shift 2
  fi
  for tool; do
    command -v "$tool" >/dev/null || die "$tool not found${hint:+ ($hint)}"
  done
}

# _settings WHO "KEY..." KEY=VALUE...: for a function taking key=value
# settings: sets the caller's local variable KEY to VALUE for each argument;
# dies on a KEY not in the list.
_settings() {
  local who=$1 keys=" $2 " kv
  shift 2
  for kv; do
    [[ "$kv" == *=* && "$keys" == *" ${kv%%=*} "* ]] || die "$who: unknown setting '$kv'"
    printf -v "${kv%%=*}" '%s' "${kv#*=}"
  done
}

# ------------------------------------------------------------ nginx text --

# balance_server PORT [ACCESS_LOG]: an nginx server block answering every
# request with 200 and $BALANCE_JSON (application/json). ACCESS_LOG: a path,
# or off (the default).
balance_server() {
  cat <<EOF
    server {
        listen 127.0.0.1:$1 backlog=4096;
        access_log ${2:-off};
        location / {
            default_type application/json;
            return 200 '$BALANCE_JSON';
        }
    }
EOF
}

# The pass-through of an nginx location to "upstream u", keep-alive.
NGINX_PASS='proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection "";'

# nginx_upstream_u PORT [KEEPALIVE_REQUESTS]: "upstream u" on 127.0.0.1:PORT,
# keepalive 64, keepalive_requests KEEPALIVE_REQUESTS (default 1000000; empty:
# nginx's own default).
nginx_upstream_u() {
  local kr=${2-1000000}
  echo "    upstream u {"
  echo "        server 127.0.0.1:$1;"
  echo "        keepalive 64;"
  if [[ -n "$kr" ]]; then
    echo "        keepalive_requests $kr;"
  fi
  echo "    }"
}

# start_nginx_proxy NAME PORT UPSTREAM_PORT: an nginx (start_nginx NAME)
# on PORT passing everything through to 127.0.0.1:UPSTREAM_PORT
# (nginx_upstream_u: keepalive 64), access log off, nothing cached.
start_nginx_proxy() {
  start_nginx "$1" "
    server {
        listen 127.0.0.1:$2 backlog=4096;
        access_log off;
        location / {
            $NGINX_PASS
        }
    }" "$(nginx_upstream_u "$3")"
}

# start_nginx_cache NAME PORT UPSTREAM_PORT [key=value...]: an nginx
# proxy_cache (start_nginx NAME; zone c, cache folder $BENCH_TMP/NAME/cache)
# on PORT in front of 127.0.0.1:UPSTREAM_PORT, key
# "$request_uri$http_authorization", proxy_cache_lock on, answers carry
# X-Cache-Status. Keys:
#   location=PATH   cache "location = PATH" only and pass the rest through
#                   uncached (default: cache "location /")
#   valid=TTL       proxy_cache_valid 200 TTL                        [15s]
#   server=TEXT     more directives in the server block (gzip ...)
#   cache=TEXT      more directives in the cached location
#   keepalive_requests=N  of the upstream block (nginx_upstream_u)  [1000000]
start_nginx_cache() {
  local name=$1 port=$2 up=$3; shift 3
  local location="" valid=15s server="" cache="" keepalive_requests=1000000
  _settings start_nginx_cache "location valid server cache keepalive_requests" "$@"
  local cache_dir="$BENCH_TMP/$name/cache" pass=""
  mkdir -p "$cache_dir"
  chmod 777 "$cache_dir"   # written by the (unprivileged) worker
  if [[ -n "$location" ]]; then
    pass="
        location / {
            $NGINX_PASS
        }"
  fi
  start_nginx "$name" "
    server {
        listen 127.0.0.1:$port backlog=4096$([[ ${BENCH_NGINX_WORKERS:-1} == 1 ]] || echo " reuseport");
        access_log off;
        $server
        location ${location:+= }${location:-/} {
            $NGINX_PASS
            proxy_cache c;
            proxy_cache_key \"\$request_uri\$http_authorization\";
            proxy_cache_valid 200 $valid;
            proxy_cache_lock on;
            $cache
            add_header X-Cache-Status \$upstream_cache_status always;
        }$pass
    }" "
    proxy_cache_path $cache_dir levels=1:2 keys_zone=c:10m max_size=100m inactive=10m use_temp_path=off;
$(nginx_upstream_u "$up" "$keepalive_requests")"
}

# ------------------------------------------------------- cacheproxy configs --

# cacheproxy_config FILE PORT THREADS UPSTREAM_PORT [key=value...]: a
# cacheproxy YAML on 127.0.0.1:PORT, --threads, upstream 127.0.0.1:UPSTREAM_PORT,
# logging warn without access log. Keys:
#   comment=TEXT    first line "# TEXT"
#   pool=N          upstream.max_connections                         [64]
#   extra=YAML      top-level YAML after the upstream block (compression, limits)
#   admin=LINE      the admin block's one line                       [enabled: false]
#   rules=FILE      the rules file (default: none, pure pass-through)
cacheproxy_config() {
  local file=$1 port=$2 threads=$3 up=$4; shift 4
  local comment="" pool=64 extra="" admin="enabled: false" rules=""
  _settings cacheproxy_config "comment pool extra admin rules" "$@"
  {
    if [[ -n "$comment" ]]; then echo "# $comment"; fi
    echo "listen: 127.0.0.1:$port"
    echo "threads: $threads"
    echo "upstream:"
    echo "  url: http://127.0.0.1:$up"
    echo "  max_connections: $pool"
    if [[ -n "$extra" ]]; then echo "$extra"; fi
    echo "logging:"
    echo "  level: warn"
    echo "  access_log: false"
    echo "admin:"
    echo "  $admin"
    if [[ -n "$rules" ]]; then echo "rules: $rules"; fi
  } >"$file"
}

# user_route_rules FILE NAME PATH TTL [COMMENT_LINE...]: a rules file with
# one route NAME caching GET PATH for TTL per user (identity: Authorization)
# + exchange + account_type; nothing else (no stale, no refresh-ahead).
user_route_rules() {
  local file=$1 name=$2 path=$3 ttl=$4; shift 4
  {
    if (($#)); then printf '# %s\n' "$@"; fi
    echo "identity: { header: Authorization }"
    echo "routes:"
    echo "  - name: $name"
    echo "    match: { method: GET, path: $path }"
    echo "    ttl: $ttl"
    echo "    key: { identity: true, query: [exchange, account_type] }"
  } >"$file"
}

# start_sim_cacheproxy SCRIPT LATENCY THREADS [EXTRA_YAML]: the legacy
# simulator (every exchange route LATENCY s) on SIM_PORT and cacheproxy
# "cacheproxy" on PROXY_PORT in front of it, with the shipped rules
# (rules/trading.yaml), upstream pool 50, --threads THREADS; its config is
# $BENCH_TMP/cacheproxy.yaml (EXTRA_YAML: more top-level YAML in it).
start_sim_cacheproxy() {
  local script=$1 latency=$2 threads=$3 extra=${4:-}
  SIM_PORT=$(free_port)
  PROXY_PORT=$(free_port)
  start_sim sim "$SIM_PORT" "$latency"
  cacheproxy_config "$BENCH_TMP/cacheproxy.yaml" "$PROXY_PORT" "$threads" "$SIM_PORT" pool=50 \
    comment="$script: the shipped rules in front of the simulator." extra="$extra" \
    rules="$BENCH_ROOT/rules/trading.yaml"
  start_cacheproxy cacheproxy "$PROXY_PORT" "$BENCH_TMP/cacheproxy.yaml" "$threads"
}

# sim_ready LATENCY: after start_sim_cacheproxy, one balance GET through
# cacheproxy as a throw-away user ("Bearer warmup"; other users' balances
# stay cold) must answer 200; then the simulator's counters are zeroed.
sim_ready() {
  local code
  code=$(curl -sS --max-time $(( 10#${1%.*} + 10 )) -o /dev/null -w '%{http_code}' -H "Authorization: Bearer warmup" \
    "http://127.0.0.1:$PROXY_PORT/api/trading/balance?exchange=bybit&account_type=demo") \
    || die "cacheproxy: ready check failed"
  [[ "$code" == 200 ]] || die "cacheproxy: ready check answered $code"
  sim_post "$SIM_PORT" /__sim/reset || die "simulator reset failed"
}

# ------------------------------------------------------------ requests --

# wrk_lua FILE PATH AUTHORIZATION [COMMENT [LINE...]]: a wrk script sending
# GET PATH with that Authorization header; COMMENT as its first line ("--
# COMMENT"), each LINE (Lua) at the end.
wrk_lua() {
  local file=$1 path=$2 auth=$3 comment=${4:-}
  shift 3
  if (($#)); then shift; fi
  {
    if [[ -n "$comment" ]]; then echo "-- $comment"; fi
    echo 'wrk.method = "GET"'
    echo "wrk.path = \"$path\""
    echo "wrk.headers[\"Authorization\"] = \"$auth\""
    if (($#)); then printf '%s\n' "$@"; fi
  } >"$file"
}

# header_value NAME: the value of header NAME (any case) in the response
# headers on stdin (curl -D -), without the CR.
header_value() {
  awk -v h="$1" -F': *' 'tolower($1) == tolower(h) {gsub("\r", "", $2); print $2}'
}

# http_probe URL BODY_FILE CACHE_HEADER [curl args...]: one GET (5 s at
# most), the body left in BODY_FILE. Prints "CODE CACHE_STATUS
# CONTENT_ENCODING BODY_BYTES" (CACHE_STATUS: the CACHE_HEADER's value; "-"
# for a missing header), "000 - - 0" if curl fails.
http_probe() {
  local url=$1 body=$2 header=$3 hdrs code st ce
  shift 3
  hdrs=$(curl -sS --max-time 5 -o "$body" -D - "$@" "$url") || { echo "000 - - 0"; return 0; }
  code=$(awk 'NR == 1 {print $2}' <<<"$hdrs")
  st=$(header_value "$header" <<<"$hdrs")
  ce=$(header_value Content-Encoding <<<"$hdrs")
  echo "$code ${st:--} ${ce:--} $(stat -c %s "$body")"
}

# ----------------------------------------------------------- wrk rounds --

# wrk_round TARGET ROUND URL [wrk args...]: one measured wrk run of TARGET
# (run_wrk, output in $BENCH_TMP/roundROUND-TARGET.txt). A non-zero wrk exit
# is logged with wrk's output and counted in WRK_FAILURES. The run's
# "rps p50_ms p99_ms requests non2xx socket_errors" (wrk_parse) is left in
# WRK_LINE and appended to the associative arrays RPS P50 P99 REQS NON2XX
# SOCK (per target: one space-separated value a round; declared here).
WRK_FAILURES=0
wrk_round() {
  local t=$1 r=$2 url=$3; shift 3
  local out="$BENCH_TMP/round$r-$t.txt" rps p50 p99 reqs non2xx sock a
  for a in RPS P50 P99 REQS NON2XX SOCK; do declare -gA "$a"; done
  log "round $r/$ROUNDS: $t for $DURATION"
  if ! run_wrk "$out" "$DURATION" "$url" "$@"; then
    log "WARNING: wrk against $t exited non-zero (round $r); output:"
    cat "$out" >&2
    WRK_FAILURES=$((WRK_FAILURES + 1))
  fi
  WRK_LINE=$(wrk_parse "$out")
  read -r rps p50 p99 reqs non2xx sock <<<"$WRK_LINE"
  _append RPS "$t" "$rps"; _append P50 "$t" "$p50"; _append P99 "$t" "$p99"
  _append REQS "$t" "$reqs"; _append NON2XX "$t" "$non2xx"; _append SOCK "$t" "$sock"
}

# _append ARRAY KEY VALUE: ARRAY[KEY]+="VALUE " (ARRAY: the name of an
# associative array).
_append() {
  local k="${1}[$2]"
  printf -v "$k" '%s' "${!k:-}$3 "
}

# wrk_errors TARGET ROUND: whatever wrk wrote about errors in that run, to stderr.
wrk_errors() {
  grep -E 'Non-2xx|Socket errors' "$BENCH_TMP/round$2-$1.txt" | sed "s/^/  $1 round $2: /" >&2
}

# per_target FUNC OUT IN TARGET...: OUT[t]=$(FUNC ${IN[t]}) for each TARGET
# (OUT and IN: names of associative arrays, OUT declared here if need be;
# IN's values are split on spaces).
per_target() {
  local fn=$1 out=$2 in=$3 t key dest
  shift 3
  declare -gA "$out"
  for t; do
    key="${in}[$t]"
    dest="${out}[$t]"
    # shellcheck disable=SC2086  # space-separated lists, split on purpose
    printf -v "$dest" '%s' "$("$fn" ${!key})"
  done
}

# wrk_summary TARGET...: over the rounds of wrk_round, the medians of RPS P50
# P99 into M_RPS M_P50 M_P99 and the sums of NON2XX SOCK into T_NON2XX T_SOCK
# (associative arrays the caller declares).
wrk_summary() {
  per_target median M_RPS RPS "$@"
  per_target median M_P50 P50 "$@"
  per_target median M_P99 P99 "$@"
  per_target sum T_NON2XX NON2XX "$@"
  per_target sum T_SOCK SOCK "$@"
}

# ratio_row NAME A B [CELL...]: the markdown row "| NAME | req/s | p50 | p99 |"
# of target A's medians over target B's (M_RPS M_P50 M_P99), then each CELL.
ratio_row() {
  local name=$1 a=$2 b=$3
  shift 3
  printf '| %s | %s | %s | %s |' "$name" "$(ratio "${M_RPS[$a]}" "${M_RPS[$b]}")" \
    "$(ratio "${M_P50[$a]}" "${M_P50[$b]}")" "$(ratio "${M_P99[$a]}" "${M_P99[$b]}")"
  if (($#)); then printf ' %s |' "$@"; fi
  echo
}

# per_round_table TITLE "ARRAY..." TARGET...: the collapsed markdown table
# "per round (TITLE)": a row per TARGET (its LABEL), a column per round
# ($ROUNDS), each cell the round's values of the ARRAYs (associative arrays
# of space-separated per-round values) joined by " / ".
per_round_table() {
  local title=$1 arrays=$2 t r i name key cell
  shift 2
  echo
  echo "<details><summary>per round ($title)</summary>"
  echo
  printf '| target |'; for ((r = 1; r <= ROUNDS; r++)); do printf ' round %d |' "$r"; done; echo
  printf '|---|'; for ((r = 1; r <= ROUNDS; r++)); do printf -- '---|'; done; echo
  for t; do
    printf '| %s |' "${LABEL[$t]}"
    for ((i = 0; i < ROUNDS; i++)); do
      cell=""
      for name in $arrays; do
        key="${name}[$t]"
        local -a vals=()
        read -r -a vals <<<"${!key:-}"
        cell+="${cell:+ / }${vals[$i]:-}"
      done
      printf ' %s |' "$cell"
    done
    echo
  done
  echo
  echo "</details>"
}

# wrk_results PREFIX TARGET [KEY=VALUE...]: bench_result lines
# PREFIX.TARGET.rps, .p50_ms, .p99_ms, then .KEY for each KEY=VALUE, then
# .errors (non-2xx + socket errors over all rounds).
wrk_results() {
  local p="$1.$2" t=$2 kv
  shift 2
  bench_result "$p.rps" "${M_RPS[$t]}"
  bench_result "$p.p50_ms" "${M_P50[$t]}"
  bench_result "$p.p99_ms" "${M_P99[$t]}"
  for kv; do
    bench_result "$p.${kv%%=*}" "${kv#*=}"
  done
  bench_result "$p.errors" "$(sum "${T_NON2XX[$t]}" "${T_SOCK[$t]}")"
}

# wrk_check TARGET: returns 1, with an ERROR on stderr, if TARGET has no
# median req/s; prints a markdown WARNING if it had non-2xx answers or socket
# errors over the rounds.
wrk_check() {
  local t=$1 rc=0
  if [[ "${M_RPS[$t]}" == NaN ]]; then
    echo "ERROR: no req/s number for ${LABEL[$t]} (see wrk output above)" >&2
    rc=1
  fi
  if [[ "${T_NON2XX[$t]}" != 0 || "${T_SOCK[$t]}" != 0 ]]; then
    echo
    echo "**WARNING**: ${LABEL[$t]}: ${T_NON2XX[$t]} non-2xx/3xx responses and ${T_SOCK[$t]} socket errors over all rounds."
  fi
  return "$rc"
}

# ------------------------------------------------------------- drivers --

# bench_driver_init DIR: for run_all.sh and smoke.sh, which run one scenario
# at a time in the background as BENCH_CHILD (its pid; empty when none runs).
# On exit (INT: 130, TERM: 143), TERM the running scenario (its own trap stops
# its servers), wait for it, and remove DIR.
BENCH_CHILD=""
BENCH_DRIVER_DIR=""
bench_driver_init() {
  BENCH_DRIVER_DIR=$1
  trap bench_driver_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# shellcheck disable=SC2317  # called by the trap
bench_driver_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$BENCH_CHILD" ]] && kill -0 "$BENCH_CHILD" 2>/dev/null; then
    kill -TERM "$BENCH_CHILD" 2>/dev/null   # the scenario's own trap stops its servers
    wait "$BENCH_CHILD" 2>/dev/null
  fi
  rm -rf "$BENCH_DRIVER_DIR"
  exit "$rc"
}
