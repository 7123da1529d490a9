#!/usr/bin/env bash
# SIGHUP reload and restart under load (issue 14). Prints:
#   1. requests and errors during RELOADS reloads under steady load (must be 0 failed),
#      alternately removing the ticker route and adding it back,
#   2. the hit ratio just before and just after a reload that changes one route's TTL,
#   3. connection attempts lost across a restart through socket activation (a Python
#      parent plays systemd: it holds the listening socket and passes it as fd 3 with
#      LISTEN_FDS/LISTEN_PID; the restart is `kill -TERM old; start new`).
#
#   scripts/bench/reload.sh [--reloads 20] [--clients 4]
#
# Loopback only: the legacy simulator and cacheproxy on free ports, both stopped on
# exit. Every loop is bounded in count and in time. Needs a built proxy (CACHEPROXY_BIN,
# default build-release/cacheproxy, else build/cacheproxy) and /usr/bin/python3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RELOADS=20
CLIENTS=4
while [ $# -gt 0 ]; do
  case "$1" in
    --reloads) RELOADS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    *) echo "usage: $0 [--reloads 20] [--clients 4]" >&2; exit 2 ;;
  esac
done
BIN=${CACHEPROXY_BIN:-}
[ -n "$BIN" ] || { [ -x "$ROOT/build-release/cacheproxy" ] && BIN=$ROOT/build-release/cacheproxy || BIN=$ROOT/build/cacheproxy; }
[ -x "$BIN" ] || { echo "no cacheproxy binary at $BIN: run scripts/build.sh" >&2; exit 1; }
exec timeout 300 /usr/bin/python3 "$ROOT/scripts/bench/reload_bench.py" --bin "$BIN" --root "$ROOT" \
  --reloads "$RELOADS" --clients "$CLIENTS"
