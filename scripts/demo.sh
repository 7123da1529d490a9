#!/usr/bin/env bash
# Shows cacheproxy in front of the slow legacy webapp (its simulator, 3 s per
# exchange call): builds Release into build-release/, starts the simulator and
# the proxy (config/cacheproxy.yaml) in the background, calls the balance
# route twice through the proxy (a miss, then a hit) and prints more to try.
#
#   scripts/demo.sh              stays in the foreground until Ctrl-C, then stops both
#   scripts/demo.sh --no-wait    runs the demo calls and stops everything (smoke test)
#   options: --no-build          reuse build-release/cacheproxy as it is
#   env:     PROXY_PORT=8080 SIM_PORT=8765 ADMIN_PORT=9901 SIM_LATENCY=3.0
#
# Logs go to demo-logs/ (legacy-sim.log, cacheproxy.log, the responses).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,12s/^# \{0,1\}//p' "$0"; }

PROXY_PORT=${PROXY_PORT:-8080}
SIM_PORT=${SIM_PORT:-8765}
ADMIN_PORT=${ADMIN_PORT:-9901}
SIM_LATENCY=${SIM_LATENCY:-3.0}
PYTHON=/usr/bin/python3            # Debian's, with python3-fastapi and python3-uvicorn
SIM=scripts/legacy_sim.py
CONFIG=config/cacheproxy.yaml
BUILD_DIR="build-release"
BIN=$BUILD_DIR/cacheproxy
LOG_DIR=demo-logs

no_wait=0
build=1
for arg in "$@"; do
  case "$arg" in
    --no-wait) no_wait=1 ;;
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "demo: $*" >&2; exit 1; }

# ------------------------------------------------------------------ checks

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports() {
  local name port
  for name in PROXY_PORT SIM_PORT ADMIN_PORT; do
    port=${!name}
    if port_in_use "$port"; then
      echo "demo: port $port ($name) on 127.0.0.1 is already taken:" >&2
      if command -v ss >/dev/null 2>&1; then
        ss -ltnp "sport = :$port" >&2 || true
      fi
      die "stop whatever listens there (an earlier demo?) or run with $name=<another port>."
    fi
  done
}

[[ -f "$SIM" ]] || die "$SIM is missing: the legacy simulator is needed for the demo."
[[ -f "$CONFIG" ]] || die "$CONFIG is missing."
check_ports

# ------------------------------------------------------------------ build

bash scripts/deps.sh
if ((build)); then
  bash scripts/build.sh Release --dir "$BUILD_DIR" --target cacheproxy --no-deps
fi
[[ -x "$BIN" ]] || die "$BIN not found: run without --no-build."
[[ -x "$PYTHON" ]] || die "$PYTHON not found: run scripts/deps.sh."

mkdir -p "$LOG_DIR"
if ! "$BIN" --config "$CONFIG" --check >"$LOG_DIR/check.log" 2>&1; then
  cat "$LOG_DIR/check.log" >&2
  die "$CONFIG does not pass '$BIN --check' (output above)."
fi

# ------------------------------------------------------------------ processes

pids=()      # the processes this script started; only these are stopped
names=()

# State 'Z' (exited, not yet reaped) counts as gone.
alive() { [[ -r "/proc/$1/stat" ]] && [[ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]; }

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local status=$? i pid
  trap '' INT TERM           # a second Ctrl-C must not leave orphans behind
  trap - EXIT
  if ((${#pids[@]})); then
    echo
    echo "demo: stopping ${names[*]}"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in "${!pids[@]}"; do
      pid=${pids[$i]}
      for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
      if alive "$pid"; then
        echo "demo: ${names[$i]} (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      wait "$pid" 2>/dev/null || true
    done
    echo "demo: stopped; logs are in $LOG_DIR/"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOGFILE CMD... : runs CMD in the background, output into LOGFILE.
start() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  names+=("$name")
  echo "demo: started $name (pid $!), log $log"
}

# wait_http NAME PID URL SECONDS: until URL answers 2xx; fails if PID dies first.
wait_http() {
  local name=$1 pid=$2 url=$3 deadline=$((SECONDS + $4)) log=$5
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if ! alive "$pid"; then
      tail -n 30 "$log" >&2 || true
      die "$name exited before answering $url (last lines of $log above)."
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$log" >&2 || true
      die "$name did not answer $url within $4 s (last lines of $log above)."
    fi
    sleep 0.2
  done
}

check_ports   # again: the build took a while
start legacy-sim "$LOG_DIR/legacy-sim.log" \
  "$PYTHON" "$SIM" --host 127.0.0.1 --port "$SIM_PORT" --latency "$SIM_LATENCY"
wait_http legacy-sim "${pids[0]}" "http://127.0.0.1:$SIM_PORT/health" 30 "$LOG_DIR/legacy-sim.log"

start cacheproxy "$LOG_DIR/cacheproxy.log" \
  "$BIN" --config "$CONFIG" --listen "127.0.0.1:$PROXY_PORT" \
  --upstream "http://127.0.0.1:$SIM_PORT" --admin "127.0.0.1:$ADMIN_PORT"
wait_http cacheproxy "${pids[1]}" "http://127.0.0.1:$PROXY_PORT/health" 30 "$LOG_DIR/cacheproxy.log"
echo "demo: legacy-sim on 127.0.0.1:$SIM_PORT (${SIM_LATENCY} s per exchange call), cacheproxy on 127.0.0.1:$PROXY_PORT, admin on 127.0.0.1:$ADMIN_PORT"

# ------------------------------------------------------------------ the demo

P="http://127.0.0.1:$PROXY_PORT"
AUTH="Authorization: Bearer user1"
BALANCE_URL="$P/api/trading/balance?exchange=bybit&account_type=demo"

cat <<EOF

Try these (user1 is user 999001 upstream):

  # balance through the proxy, twice: the first call waits for the exchange, the second is a cache hit
  curl -s -H '$AUTH' -w '\n%{time_total} s\n' '$BALANCE_URL'
  curl -s -H '$AUTH' -w '\n%{time_total} s\n' '$BALANCE_URL'

  # market data, one cache entry shared by every user
  curl -s -w '\n%{time_total} s\n' '$P/api/trading/ticker?symbol=BTCUSDT'

  # place an order: never cached; it makes the user's cached balance/positions stale
  curl -s -X POST -H '$AUTH' -H 'Content-Type: application/json' \\
       -d '{"exchange":"bybit","account_type":"demo","symbol":"BTCUSDT","side":"Buy","qty":0.01,"type":"market"}' \\
       '$P/api/trading/order'

  # the admin port
  curl -s 'http://127.0.0.1:$ADMIN_PORT/healthz'

  # the simulator directly, bypassing the proxy (always ${SIM_LATENCY} s)
  curl -s -H '$AUTH' -w '\n%{time_total} s\n' 'http://127.0.0.1:$SIM_PORT/api/trading/balance?exchange=bybit&account_type=demo'

Running the first two now:
EOF

# balance N: one balance call; prints body, cache-related headers and timing.
code=()
secs=()
balance() {
  local n=$1 out
  out=$(curl -sS -H "$AUTH" -D "$LOG_DIR/balance-$n.headers" -o "$LOG_DIR/balance-$n.json" \
        -w '%{http_code} %{time_total}' --max-time 40 "$BALANCE_URL") || out="000 0"
  code[n]=${out% *}
  secs[n]=${out#* }
  echo
  echo "  call $n: HTTP ${code[$n]} in ${secs[$n]} s"
  echo "    $(head -c 300 "$LOG_DIR/balance-$n.json" 2>/dev/null)"
  grep -iE '^(x-cache[a-z-]*|age|cache-control|via):' "$LOG_DIR/balance-$n.headers" 2>/dev/null \
    | tr -d '\r' | sed 's/^/    /' || true
}
balance 1
balance 2

echo
ok=1
if [[ "${code[1]}" != 200 || "${code[2]}" != 200 ]]; then
  ok=0
  echo "demo: the balance calls did not both answer 200 (see $LOG_DIR/cacheproxy.log)" >&2
elif awk -v a="${secs[1]}" -v b="${secs[2]}" 'BEGIN { exit !(b * 10 < a) }'; then
  echo "  the second call was served from the cache: ${secs[2]} s instead of ${secs[1]} s"
else
  echo "  note: the second call was not much faster (${secs[2]} s vs ${secs[1]} s); is the balance route in the rules?"
fi

if ((no_wait)); then
  alive "${pids[1]}" || { ok=0; echo "demo: cacheproxy is no longer running (see $LOG_DIR/cacheproxy.log)" >&2; }
  ((ok)) || exit 1
  echo "demo: --no-wait: done"
  exit 0
fi

echo
echo "demo: running; press Ctrl-C to stop both (logs: $LOG_DIR/)"
died=
wait -n -p died "${pids[@]}" || true
for i in "${!pids[@]}"; do
  [[ "${pids[$i]}" == "$died" ]] && die "${names[$i]} exited on its own; see $LOG_DIR/${names[$i]}.log"
done
die "a background process exited on its own; see $LOG_DIR/"
