#!/usr/bin/env bash
# Smoke test of the benchmark scripts, for CI: no timing assertions.
#
#   scripts/bench/smoke.sh
#
# Runs forwarding.sh and hits.sh with --duration 1s --rounds 1 and checks only
# that each printed its table with a positive req/s for every target. Exits
# non-zero if a script failed or a number is missing. Takes ~25 s (each script
# is bounded at 60 s). Extra environment (CACHEPROXY_BIN, ...) is passed on.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT=$(mktemp -d /tmp/cacheproxy-bench-smoke.XXXXXX)
child=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null   # the script's own trap stops its servers
    wait "$child" 2>/dev/null
  fi
  rm -rf "$OUT"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# check_table FILE ROW_PREFIX...: each "| ROW_PREFIX..." row has req/s > 0.
check_table() {
  local file=$1; shift
  local row ok=0 rps
  for row in "$@"; do
    rps=$(awk -F'|' -v p="$row" 'index($2, " " p) == 1 { gsub(/ /, "", $3); print $3; exit }' "$file")
    if [[ "$rps" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v x="$rps" 'BEGIN { exit !(x > 0) }'; then
      echo "smoke:   $row -> $rps req/s"
    else
      echo "smoke: FAIL: no req/s for '$row' (got '${rps}')" >&2
      ok=1
    fi
  done
  return $ok
}

status=0
start=$SECONDS
run() {   # run NAME ROW_PREFIX...
  local name=$1; shift
  echo "smoke: $name.sh --duration 1s --rounds 1"
  timeout --kill-after=5 60 "$HERE/$name.sh" --duration 1s --rounds 1 >"$OUT/$name.md" 2>"$OUT/$name.err" &
  child=$!
  wait "$child"
  local rc=$?
  child=""
  if ((rc != 0)); then
    echo "smoke: FAIL: $name.sh exited $rc; its stderr:" >&2
    tail -30 "$OUT/$name.err" >&2
    status=1
  fi
  check_table "$OUT/$name.md" "$@" || { status=1; cat "$OUT/$name.md" >&2; }
  grep -h -i 'warning' "$OUT/$name.md" | sed "s/^/smoke: $name: /"
}

run forwarding "(a) nginx direct" "(b) cacheproxy" "(c) nginx proxy_pass"
run hits "(a) cacheproxy" "(b) nginx proxy_cache"

if ((status == 0)); then
  echo "smoke: OK ($((SECONDS - start)) s)"
else
  echo "smoke: FAILED ($((SECONDS - start)) s)" >&2
fi
exit "$status"
