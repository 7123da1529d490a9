#!/usr/bin/env bash
# The whole webapp behind cacheproxy (issue 13): the FastAPI test app of
# tests/webapp (Debian's uvicorn, deploy/README.md's flags) direct vs through
# cacheproxy, on loopback.
#
#   scripts/bench/webapp.sh [--size-mb 50] [--rounds 15] [--messages 2000] [--streams 500]
#
# Prints, direct and proxied:
#   - download and upload MB/s of a SIZE MB body (curl; /download/big, a file
#     with Content-Length, and POST /upload/raw; the sha256 is checked both ways),
#     median of ROUNDS, direct, proxied, and proxied with limits.splice_from_bytes
#     set, in turn; and each proxy's CPU time (user + system, /proc) per transfer
#   - WebSocket message round trip p50/p99 (python websockets client, MESSAGES
#     64-byte echoes on /ws/echo after 50 warm-up ones)
#   - a page load (index.html, then app.js + style.css on two connections at
#     once), median of 5, while STREAMS event streams (/events, one event per
#     100 ms) are open
#   - what the app sees as client address and scheme behind a TLS front (nginx,
#     self-signed certificate made here, client bound to 127.0.0.2): front ->
#     app, and front -> cacheproxy -> app
# The proxy runs config/cacheproxy.yaml as shipped, but with the active health
# check off (the app has no /health: with it on every request is a 502, issue 13
# #3) and, when the binary knows it, server.trusted_proxies: [127.0.0.1]. A case
# the proxy fails prints "failed: REASON" in place of its figure.
#
# Env: CACHEPROXY_BIN (else build-release/ or build/), BENCH_KEEP_TMP=1.
# Exit status: 0 with the table (failed cases included); 1 if the app, nginx or
# the proxy did not start; 2 for bad usage. At most 600 s (watchdog).
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,28s/^# \{0,1\}//p' "$0"; }

SIZE_MB=50
ROUNDS=15
MESSAGES=2000
STREAMS=500
# shellcheck disable=SC2034  # read by bench_options (lib.sh)
BENCH_USAGE_EXIT=2
bench_options webapp.sh "--size-mb:SIZE_MB:1..2000 --rounds:ROUNDS:1..20 --messages:MESSAGES:1..100000
  --streams:STREAMS:1..5000" "$@"

need_tools curl nginx openssl python3 setsid timeout sha256sum
PY=/usr/bin/python3
[[ -x $PY ]] || die "$PY not found (scripts/deps.sh installs python3-fastapi, python3-uvicorn, ...)"
WEBAPP="$BENCH_ROOT/tests/webapp"
CLIENT="$WEBAPP/bench_client.py"
CLIENT_ADDR=127.0.0.2

bench_init webapp 600
raise_nofile 20000 2>/dev/null || true
cacheproxy_bin >/dev/null || exit 1   # fail early, before the servers start

# ------------------------------------------------------------------ servers --
APP_PORT=$(free_port)
PROXY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
log "starting the test app (WEBAPP_BIG_MB=$SIZE_MB) on :$APP_PORT"
export WEBAPP_BIG_MB=$SIZE_MB PYTHONDONTWRITEBYTECODE=1
_spawn "$BENCH_TMP/app.log" "$PY" "$WEBAPP/serve.py" --port "$APP_PORT"
APP_PID=$SPAWN_PID
deadline=$((SECONDS + 60))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APP_PORT/whoami")" == 200 ]]; do
  kill -0 "$APP_PID" 2>/dev/null || { cat "$BENCH_TMP/app.log" >&2; die "the test app exited"; }
  ((SECONDS < deadline)) || { cat "$BENCH_TMP/app.log" >&2; die "the test app did not answer in 60 s"; }
  sleep 0.2
done

TRUST=$("$PY" "$CLIENT" config "$APP_PORT" "$PROXY_PORT" "$ADMIN_PORT" "$BENCH_TMP/proxy.yaml" --trusted)
start_cacheproxy proxy "$PROXY_PORT" "$BENCH_TMP/proxy.yaml" 2
# The same with limits.splice_from_bytes set (bodies socket to socket), for the bodies rows.
SPLICE_PORT=$(free_port)
SPLICE_ADMIN=$(free_port)
"$PY" "$CLIENT" config "$APP_PORT" "$SPLICE_PORT" "$SPLICE_ADMIN" "$BENCH_TMP/splice.yaml" --trusted >/dev/null
if grep -q '^  splice_from_bytes:' "$BENCH_TMP/splice.yaml"; then
  sed -i 's/^  splice_from_bytes:.*/  splice_from_bytes: 256KiB/' "$BENCH_TMP/splice.yaml"
else
  sed -i 's/^limits:$/limits:\n  splice_from_bytes: 256KiB/' "$BENCH_TMP/splice.yaml"
fi
start_cacheproxy splice "$SPLICE_PORT" "$BENCH_TMP/splice.yaml" 2

DIRECT="http://127.0.0.1:$APP_PORT"
PROXY="http://127.0.0.1:$PROXY_PORT"
SPLICED="http://127.0.0.1:$SPLICE_PORT"

# -------------------------------------------------------- bodies (MB/s) --
BIG_SHA=$(curl -s "$DIRECT/download/info?mb=1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["big_sha256"])')
BIG_BYTES=$((SIZE_MB * 1000 * 1000))
# Downloads land in tmpfs when there is one (/dev/shm), else in BENCH_TMP.
DL_DIR=$BENCH_TMP
if [[ -d /dev/shm && -w /dev/shm ]] && DL_DIR=$(mktemp -d /dev/shm/cacheproxy-bench-dl.XXXXXX); then
  BENCH_RM+=("$DL_DIR")
else
  DL_DIR=$BENCH_TMP
fi
head -c "$BIG_BYTES" /dev/urandom >"$BENCH_TMP/upload.bin"
UP_SHA=$(sha256sum "$BENCH_TMP/upload.bin" | cut -d' ' -f1)

# one_download BASE -> MB/s of one download, or "failed: ..."
one_download() {
  local base=$1 out code speed size sha
  # The body goes to memory (tmpfs), hashed after: a disk write would be
  # timed with the transfer, and a pipe to sha256sum runs at sha256sum's pace.
  local dl=$DL_DIR/dl.bin
  out=$(timeout 180 curl -s -o "$dl" -w '%{http_code} %{speed_download} %{size_download}' \
    --max-time 170 "$base/download/big") || { echo "failed: curl exit $? (${out:-no answer})"; return; }
  read -r code speed size <<<"$out"
  [[ $code == 200 ]] || { echo "failed: HTTP $code"; return; }
  [[ $size == "$BIG_BYTES" ]] || { echo "failed: $size of $BIG_BYTES bytes"; return; }
  sha=$(sha256sum "$dl" | cut -d' ' -f1)
  rm -f "$dl"
  [[ $sha == "$BIG_SHA" ]] || { echo "failed: sha256 differs"; return; }
  awk -v s="$speed" 'BEGIN { printf "%.1f\n", s / 1e6 }'
}

# one_upload BASE -> MB/s of one upload, or "failed: ..."
one_upload() {
  local base=$1 out code speed got rc
  out=$(timeout 180 curl -s -o "$BENCH_TMP/up.json" -w '%{http_code} %{speed_upload}' --max-time 170 \
    -H 'Content-Type: application/octet-stream' -H 'Expect:' --data-binary "@$BENCH_TMP/upload.bin" \
    "$base/upload/raw")
  rc=$?
  read -r code speed <<<"$out"
  ((rc == 0)) || { echo "failed: curl exit $rc (HTTP ${code:-none})"; return; }
  [[ $code == 200 ]] || { echo "failed: HTTP $code ($(head -c 80 "$BENCH_TMP/up.json" | tr -d '\r\n'))"; return; }
  got=$("$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["bytes"], j["sha256"])' "$BENCH_TMP/up.json")
  [[ $got == "$BIG_BYTES $UP_SHA" ]] || { echo "failed: the app got '$got'"; return; }
  awk -v s="$speed" 'BEGIN { printf "%.1f\n", s / 1e6 }'
}

# PID's CPU time so far (user + system), ms.
cpu_ms() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}

# bodies KIND (download|upload): ROUNDS rounds, each direct, proxied, then
# proxied with splice (so a change of load on the box hits all alike). Sets
# BODY_D, BODY_P and BODY_S (medians, or the first failure) and BODY_CPU_P /
# BODY_CPU_S (each proxy's CPU ms per transfer).
bodies() {
  local kind=$1 d=() p=() sp=() v i cpu_p cpu_s
  BODY_D="" BODY_P="" BODY_S=""
  cpu_p=$(cpu_ms "$CACHEPROXY_PID_proxy"); cpu_s=$(cpu_ms "$CACHEPROXY_PID_splice")
  for ((i = 0; i < ROUNDS; i++)); do
    v=$("one_$kind" "$DIRECT");  if [[ $v == failed* ]]; then BODY_D=${BODY_D:-$v}; else d+=("$v"); fi
    v=$("one_$kind" "$PROXY");   if [[ $v == failed* ]]; then BODY_P=${BODY_P:-$v}; else p+=("$v"); fi
    v=$("one_$kind" "$SPLICED"); if [[ $v == failed* ]]; then BODY_S=${BODY_S:-$v}; else sp+=("$v"); fi
  done
  log "$kind MB/s by round: direct ${d[*]:-none}; proxied ${p[*]:-none}; splice ${sp[*]:-none}"
  BODY_CPU_P=$(( ($(cpu_ms "$CACHEPROXY_PID_proxy") - cpu_p) / ROUNDS ))
  BODY_CPU_S=$(( ($(cpu_ms "$CACHEPROXY_PID_splice") - cpu_s) / ROUNDS ))
  [[ -n $BODY_D ]] || BODY_D=$(printf "%.1f" "$(median "${d[@]}")")
  [[ -n $BODY_P ]] || BODY_P=$(printf "%.1f" "$(median "${p[@]}")")
  [[ -n $BODY_S ]] || BODY_S=$(printf "%.1f" "$(median "${sp[@]}")")
}

log "downloads and uploads, $SIZE_MB MB x $ROUNDS, direct, proxied and proxied with splice in turn"
bodies download; DL_D=$BODY_D DL_P=$BODY_P DL_S=$BODY_S DL_CPU=$BODY_CPU_P DL_CPU_S=$BODY_CPU_S
bodies upload;   UP_D=$BODY_D UP_P=$BODY_P UP_S=$BODY_S UP_CPU=$BODY_CPU_P UP_CPU_S=$BODY_CPU_S

# ------------------------------------------------------------ WebSocket --
log "WebSocket round trips x $MESSAGES"
WS_D=$("$PY" "$CLIENT" ws-rtt "ws://127.0.0.1:$APP_PORT/ws/echo" "$MESSAGES")
WS_P=$("$PY" "$CLIENT" ws-rtt "ws://127.0.0.1:$PROXY_PORT/ws/echo" "$MESSAGES")

# ------------------------------------------- page load under open streams --
# page_under_streams BASE -> "MS (opened=N failed=M)" or "failed: ..."
page_under_streams() {
  local base=$1 status="$BENCH_TMP/streams.status" holder load
  rm -f "$status"
  _spawn "$BENCH_TMP/streams.log" timeout 120 "$PY" "$CLIENT" hold-streams "$base/events" "$STREAMS" "$status" 90
  holder=$SPAWN_PID
  local deadline=$((SECONDS + 40))
  while [[ ! -s $status ]] && ((SECONDS < deadline)) && kill -0 "$holder" 2>/dev/null; do sleep 0.2; done
  if [[ ! -s $status ]]; then
    kill -TERM -- "-$holder" 2>/dev/null
    echo "failed: the $STREAMS streams did not open ($(tail -c 200 "$BENCH_TMP/streams.log" | tr '\n' ' '))"
    return
  fi
  load=$(timeout 120 "$PY" "$CLIENT" page-load "$base" 5)
  kill -TERM -- "-$holder" 2>/dev/null
  wait "$holder" 2>/dev/null
  echo "$load [streams $(cat "$status")]"
}
log "page loads with $STREAMS event streams open"
PAGE_D=$(page_under_streams "$DIRECT")
sleep 1
PAGE_P=$(page_under_streams "$PROXY")
PAGE_IDLE_D=$("$PY" "$CLIENT" page-load "$DIRECT" 5)
PAGE_IDLE_P=$("$PY" "$CLIENT" page-load "$PROXY" 5)

# ------------------------------------------------------------ TLS front --
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -keyout "$BENCH_TMP/front.key" -out "$BENCH_TMP/front.crt" >/dev/null 2>&1 || die "openssl req failed"
chmod 644 "$BENCH_TMP/front.key"
front_server() {  # front_server LISTEN_PORT UPSTREAM_PORT
  cat <<EOF
server {
    listen 127.0.0.1:$1 ssl;
    ssl_certificate $BENCH_TMP/front.crt;
    ssl_certificate_key $BENCH_TMP/front.key;
    location / {
        proxy_pass http://127.0.0.1:$2;
        proxy_http_version 1.1;
        proxy_set_header Host \$http_host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$connection_upgrade;
        proxy_buffering off;
        client_max_body_size 0;
    }
}
EOF
}
# shellcheck disable=SC2016  # nginx variables, not shell ones
MAP='map $http_upgrade $connection_upgrade { default upgrade; "" close; }'
FRONT_APP=$(free_port); FRONT_PROXY=$(free_port)
start_nginx front-app "$(front_server "$FRONT_APP" "$APP_PORT")" "$MAP"
start_nginx front-proxy "$(front_server "$FRONT_PROXY" "$PROXY_PORT")" "$MAP"

# seen URL -> "client=HOST scheme=S redirect=LOCATION" or "failed: ..."
seen() {
  local base=$1 out loc
  out=$(curl -sk --max-time 10 --interface "$CLIENT_ADDR" -w '\n%{http_code}' "$base/whoami") \
    || { echo "failed: curl exit $?"; return; }
  [[ ${out##*$'\n'} == 200 ]] || { echo "failed: HTTP ${out##*$'\n'}"; return; }
  loc=$(curl -sk --max-time 10 --interface "$CLIENT_ADDR" -o /dev/null -w '%{redirect_url}' "$base/redirect")
  "$PY" -c 'import json,sys
j = json.loads(sys.argv[1])
c = j["client"]
print("client=%s scheme=%s redirect=%s" % (c[0] if c else None, j["scheme"], sys.argv[2] or "-"))' "${out%$'\n'*}" "$loc"
}
TLS_D=$(seen "https://127.0.0.1:$FRONT_APP")
TLS_P=$(seen "https://127.0.0.1:$FRONT_PROXY")
PLAIN_P=$(seen "$PROXY")

# --------------------------------------------------------------- report --
ratio_or() { if [[ $1 == failed* || $2 == failed* ]]; then echo "-"; else ratio "$1" "$2"; fi; }
ws_fmt() { if [[ $1 == failed* ]]; then echo "$1"; else read -r a b <<<"$1"; echo "p50 $a ms, p99 $b ms"; fi; }

bench_header "webapp behind cacheproxy (issue 13)"
echo "- app: tests/webapp/app.py, uvicorn $("$PY" -c 'import uvicorn; print(uvicorn.__version__)') (Debian), --proxy-headers --forwarded-allow-ips 127.0.0.1"
echo "- proxy: shipped config, health check off, $TRUST, 2 threads"
echo
echo "| case | direct | through cacheproxy | proxied/direct |"
echo "|---|---|---|---|"
echo "| download $SIZE_MB MB, MB/s (median of $ROUNDS) | $DL_D | $DL_P | $(ratio_or "$DL_P" "$DL_D") |"
echo "| upload $SIZE_MB MB, MB/s (median of $ROUNDS) | $UP_D | $UP_P | $(ratio_or "$UP_P" "$UP_D") |"
echo "| download, splice on (limits.splice_from_bytes: 256KiB) | $DL_D | $DL_S | $(ratio_or "$DL_S" "$DL_D") |"
echo "| upload, splice on | $UP_D | $UP_S | $(ratio_or "$UP_S" "$UP_D") |"
echo "| the proxy's CPU per $SIZE_MB MB download / upload, ms: copy (default) | - | $DL_CPU / $UP_CPU | |"
echo "| the same with splice on | - | $DL_CPU_S / $UP_CPU_S | |"
echo "| WebSocket round trip, $MESSAGES x 64 B | $(ws_fmt "$WS_D") | $(ws_fmt "$WS_P") | |"
echo "| page load, ms (median of 5), $STREAMS streams open | $PAGE_D | $PAGE_P | |"
echo "| page load, ms (median of 5), idle | $PAGE_IDLE_D | $PAGE_IDLE_P | $(ratio_or "$PAGE_IDLE_P" "$PAGE_IDLE_D") |"
echo "| app sees, client $CLIENT_ADDR over plain http | - | $PLAIN_P | |"
echo "| app sees, behind a TLS front (nginx) | $TLS_D | $TLS_P | |"
echo
echo "(\"direct\" behind the TLS front is front -> app; expected: client=$CLIENT_ADDR scheme=https redirect=https://...)"
