#!/usr/bin/env bash
# The shared tier (issue 15) in five minutes: three cacheproxy instances that
# share one Redis, in front of the legacy simulator, all on 127.0.0.1.
#
#   scripts/demo/shared_tier.sh            start everything, print what to try, wait for Ctrl-C
#   scripts/demo/shared_tier.sh --check    run those steps itself, check each outcome, stop
#                                          (exit 0 when all are right, 1 otherwise)
#
# Starts redis-server (no persistence), the simulator (scripts/legacy_sim.py,
# SIM_LATENCY s per exchange call, default 0.5) and cacheproxy instances 1, 2
# and 3 on free ports, all with the same identity key file (64 hex chars,
# mode 600) and the shipped rules without their principal: section (with
# it, per-user routes share only invalidations and barriers, not entries:
# ARCHITECTURE.md, "Across instances"). Waits until each reports the shared tier "up" in
# its admin /stats. Everything it started is stopped on exit (Ctrl-C too);
# logs and configs are in a /tmp/cacheproxy-demo-shared.* folder (removed
# after a passing --check).
#
# The binary: $CACHEPROXY_BIN, else build-release/cacheproxy, else
# build/cacheproxy (scripts/build.sh Release --dir build-release builds one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
usage() { sed -n '2,20s/^# \{0,1\}//p' "$0"; }

check=0
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "shared_tier.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "demo: $*" >&2; exit 1; }
PY=/usr/bin/python3                # Debian's, with python3-fastapi and python3-uvicorn (the simulator)
SIM_LATENCY=${SIM_LATENCY:-0.5}
[[ -x "$PY" ]] || die "$PY not found (scripts/deps.sh installs it)"
for tool in redis-server redis-cli curl; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server curl)"
done
BIN=${CACHEPROXY_BIN:-}
if [[ -z "$BIN" ]]; then
  for c in "$ROOT/build-release/cacheproxy" "$ROOT/build/cacheproxy"; do
    [[ -x "$c" ]] && { BIN=$c; break; }
  done
fi
[[ -n "$BIN" && -x "$BIN" ]] || die "no cacheproxy binary: run scripts/build.sh Release --dir build-release --target cacheproxy, or set CACHEPROXY_BIN"

DIR=$(mktemp -d /tmp/cacheproxy-demo-shared.XXXXXX)

# ------------------------------------------------------------------ processes

pids=()
names=()
alive() { [[ -r "/proc/$1/stat" ]] && [[ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]; }

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local status=$? i pid
  trap '' INT TERM
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
  fi
  if ((check)) && ((status == 0)); then
    rm -rf "$DIR"
  else
    echo "demo: logs and configs are in $DIR/"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: CMD in the background, output in $DIR/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  pids+=($!)
  names+=("$name")
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for NAME SECONDS CMD...: until CMD succeeds; fails if NAME's process dies first.
wait_for() {
  local name=$1 secs=$2 i pid
  shift 2
  for i in "${!names[@]}"; do [[ ${names[$i]} == "$name" ]] && pid=${pids[$i]}; done
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$pid"; then tail -n 20 "$DIR/$name.log" >&2; die "$name exited (last lines of $DIR/$name.log above)"; fi
    ((SECONDS < deadline)) || { tail -n 20 "$DIR/$name.log" >&2; die "$name not ready after $secs s"; }
    sleep 0.1
  done
}

# tier ADMIN_PORT FIELD: one field of the admin /stats "shared_tier" object.
tier() {
  curl -sS --max-time 3 "http://127.0.0.1:$1/stats" 2>/dev/null |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["shared_tier"][sys.argv[1]])' "$2" 2>/dev/null
}
tier_up() { [[ "$(tier "$1" state)" == up ]]; }

# ------------------------------------------------------------------ set-up

REDIS_PORT=$(free_port)
SIM_PORT=$(free_port)
declare -a PORT ADMIN
for i in 1 2 3; do PORT[i]=$(free_port); ADMIN[i]=$(free_port); done

# The shipped rules without the principal: mapping (its line and the indented ones under it).
"$PY" - "$ROOT/rules/trading.yaml" "$DIR/rules.yaml" <<'PY'
import re, sys
out, skip = [], False
for line in open(sys.argv[1]):
    if re.match(r"^principal:", line):
        skip = True
        continue
    if skip and line.startswith((" ", "\t")):
        continue
    skip = False
    out.append(line)
open(sys.argv[2], "w").write("# rules/trading.yaml without principal: (scripts/demo/shared_tier.sh)\n" + "".join(out))
PY
"$PY" -c 'import secrets; print(secrets.token_hex(32))' >"$DIR/identity.key"
chmod 600 "$DIR/identity.key"
for i in 1 2 3; do
  cat >"$DIR/cacheproxy$i.yaml" <<EOF
# instance $i of scripts/demo/shared_tier.sh
listen: 127.0.0.1:${PORT[i]}
threads: 1
upstream: { url: "http://127.0.0.1:$SIM_PORT" }
admin: { listen: "127.0.0.1:${ADMIN[i]}" }
rules: $DIR/rules.yaml
logging: { level: warn, access_log: false }
shared_tier:
  redis: "127.0.0.1:$REDIS_PORT"
  identity_key_file: $DIR/identity.key   # the same file for every instance
  max_invalidation_lag: 0ms                 # strict: a read waits for every earlier invalidation
EOF
  "$BIN" --config "$DIR/cacheproxy$i.yaml" --check >"$DIR/check$i.log" 2>&1 \
    || { cat "$DIR/check$i.log" >&2; die "instance $i: config check failed"; }
done

start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR"
wait_for redis 10 redis-cli -p "$REDIS_PORT" ping
start legacy-sim "$PY" "$ROOT/scripts/legacy_sim.py" --host 127.0.0.1 --port "$SIM_PORT" --latency "$SIM_LATENCY"
wait_for legacy-sim 30 curl -fsS --max-time 2 "http://127.0.0.1:$SIM_PORT/health"
for i in 1 2 3; do
  start "cacheproxy$i" "$BIN" --config "$DIR/cacheproxy$i.yaml"
done
for i in 1 2 3; do
  wait_for "cacheproxy$i" 20 tier_up "${ADMIN[i]}"
done
echo "demo: redis-server on 127.0.0.1:$REDIS_PORT, legacy-sim on 127.0.0.1:$SIM_PORT (${SIM_LATENCY} s per exchange call)"
for i in 1 2 3; do
  echo "demo: cacheproxy instance $i on 127.0.0.1:${PORT[i]} (admin 127.0.0.1:${ADMIN[i]}): shared tier $(tier "${ADMIN[i]}" state)"
done

# ------------------------------------------------------------------ the steps

AUTH="Authorization: Bearer user1"
Q="exchange=bybit&account_type=demo"
url() { echo "http://127.0.0.1:${PORT[$1]}/api/trading/positions?$Q"; }
HEADERS="| grep -i -E '^(x-cache|cache-status):'"
ETH="| $PY -c 'import json, sys; print([p for p in json.load(sys.stdin)[\"positions\"] if p[\"symbol\"] == \"ETHUSDT\"])'"
ORDER_BODY='{"exchange":"bybit","account_type":"demo","symbol":"ETHUSDT","side":"Buy","qty":1,"type":"market"}'

STEP1="curl -s -o /dev/null -D - -H '$AUTH' '$(url 1)' $HEADERS"
STEP2="curl -s -o /dev/null -D - -H '$AUTH' '$(url 2)' $HEADERS"
STEP3="curl -s -H '$AUTH' '$(url 2)' $ETH"
STEP4="curl -s -X POST -H '$AUTH' -H 'Content-Type: application/json' -d '$ORDER_BODY' 'http://127.0.0.1:${PORT[1]}/api/trading/order'"
STEP5="curl -s -D /dev/stderr -H '$AUTH' '$(url 2)' $ETH"
STEP6="curl -s 'http://127.0.0.1:${ADMIN[2]}/stats' | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)[\"shared_tier\"], indent=4))'"
STEP6B="curl -s 'http://127.0.0.1:${ADMIN[2]}/stats' | python3 -m json.tool"
STEP7="redis-cli -p $REDIS_PORT KEYS '*'"

cat <<EOF

Try these (user1 is a token; positions are cached per user for 10 s; copy and paste):

  # 1. positions through instance 1: a miss (the simulator answers in ${SIM_LATENCY} s); instance 1 stores it in Redis too
  $STEP1

  # 2. the same through instance 2: not in its own cache, but in Redis: a hit with "Cache-Status: ...; detail=l2"
  $STEP2

  # 3. user1's ETHUSDT position as instance 2 shows it now
  $STEP3

  # 4. an order through instance 1; it bumps user1's generations in Redis and tells every instance before answering
  $STEP4

  # 5. at once through instance 2: the new position (size one more), no stale cached copy (headers on stderr)
  $STEP5

  # 6. the shared tier's counters of instance 2 (state, l2_hits, barriers, bus_messages, ...); the whole /stats:
  $STEP6
  $STEP6B

  # 7. what Redis holds: key names carry keyed hashes, never the token "user1"
  $STEP7

EOF

if ((!check)); then
  echo "demo: running; press Ctrl-C to stop everything (logs: $DIR/)"
  died=
  wait -n -p died "${pids[@]}" || true
  for i in "${!pids[@]}"; do
    [[ "${pids[$i]}" == "$died" ]] && die "${names[$i]} exited on its own; see $DIR/${names[$i]}.log"
  done
  die "a background process exited on its own; see $DIR/"
fi

# ------------------------------------------------------------------ --check

fail=0
ok() { echo "check: ok: $*"; }
bad() { echo "check: FAILED: $*" >&2; fail=1; }
run() {   # run CMD: print it, run it, leave its output in OUT (stderr included)
  echo
  echo "\$ $1"
  OUT=$(bash -c "$1" 2>&1) || true
  echo "$OUT"
}
eth_of() { grep -o "'ETHUSDT', 'side': 'LONG', 'size': [0-9.]*" <<<"$1" | awk '{print $NF}' | head -1; }

echo "check: running the steps above"
run "$STEP1"
if grep -qi '^x-cache: MISS' <<<"$OUT"; then ok "1: instance 1 missed"; else bad "1: instance 1 did not answer X-Cache: MISS"; fi
# instance 1 stores the entry in Redis after its answer: wait for it (a person typing never notices)
for _ in $(seq 50); do [[ "$(tier "${ADMIN[1]}" l2_stores)" -ge 1 ]] && break; sleep 0.1; done
run "$STEP2"
if grep -qi '^x-cache: HIT' <<<"$OUT" && grep -qi '^cache-status:.*detail=l2' <<<"$OUT"; then
  ok "2: instance 2 answered from Redis (HIT, detail=l2)"
else
  bad "2: instance 2 did not answer an L2 hit"
fi
run "$STEP3"
before=$(eth_of "$OUT")
if [[ -n "$before" ]]; then ok "3: ETHUSDT LONG size $before"; else bad "3: no ETHUSDT LONG position in the answer"; fi
run "$STEP4"
if grep -q '"success":true' <<<"$OUT"; then ok "4: the order succeeded"; else bad "4: the order did not answer success: true"; fi
run "$STEP5"
after=$(eth_of "$OUT")
if [[ -n "$before" && -n "$after" ]] && awk -v a="$after" -v b="$before" 'BEGIN { exit !(a - b > 0.999 && a - b < 1.001) }'; then
  ok "5: instance 2 shows the order at once (size $before -> $after)"
else
  bad "5: instance 2 shows size '${after:-none}' after the order (before: '${before:-none}')"
fi
run "$STEP6"
if grep -q '"state": "up"' <<<"$OUT" && grep -q '"l2_hits": [1-9]' <<<"$OUT" && grep -q '"bus_messages": [1-9]' <<<"$OUT"; then
  ok "6: instance 2's shared tier is up, with l2_hits and bus_messages"
else
  bad "6: instance 2's shared_tier block is not up with l2_hits and bus_messages > 0"
fi
echo
echo "\$ $STEP6B | head -5"
{ bash -c "$STEP6B" 2>&1 || true; } | head -5 || true
run "$STEP7"
nkeys=$(grep -c . <<<"$OUT" || true)
if ((nkeys > 0)) && ! grep -q 'user1' <<<"$OUT"; then
  ok "7: Redis holds $nkeys keys, none names the token"
else
  bad "7: Redis keys missing or naming the token"
fi
echo
if ((fail)); then
  echo "check: FAILED" >&2
  exit 1
fi
echo "check: all steps as expected"
