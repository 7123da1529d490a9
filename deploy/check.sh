#!/usr/bin/env bash
# Checks the deployment files without installing anything:
#  1. deploy/cacheproxy.service with `systemd-analyze verify` (any warning fails:
#     verify exits 0 even on an unknown key or a bad value), and its exposure
#     score with `systemd-analyze security --offline=yes`;
#  2. deploy/Dockerfile's RUNTIME_PACKAGES against the shared libraries a local
#     build of cacheproxy links (build-release/ or build/), when one exists.
# Works from any folder; exits 1 if a check fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

UNIT=deploy/cacheproxy.service
DOCKERFILE=deploy/Dockerfile
INSTALLED_BIN=/usr/local/bin/cacheproxy
MAX_EXPOSURE=30     # systemd-analyze security, in tenths: 3.0 out of 10

failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- systemd unit
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify insists that ExecStart's binary exists. Check a copy of the unit
  # whose binary path points at a real executable in a temp folder instead.
  cp /bin/true "$tmp/cacheproxy"
  sed "s#$INSTALLED_BIN#$tmp/cacheproxy#g" "$UNIT" >"$tmp/cacheproxy.service"
  if out=$(systemd-analyze verify --man=no "$tmp/cacheproxy.service" 2>&1) && [[ -z "$out" ]]; then
    echo "ok: systemd-analyze verify $UNIT (binary path pointed at a stand-in)"
  else
    fail "systemd-analyze verify $UNIT:"
    sed -e "s#$tmp/cacheproxy.service#$UNIT#g" -e "s#$tmp/cacheproxy#$INSTALLED_BIN#g" <<<"$out" >&2
  fi

  if out=$(systemd-analyze security --offline=yes --threshold="$MAX_EXPOSURE" \
             "$tmp/cacheproxy.service" 2>&1); then
    echo "ok: $(grep -m1 'Overall exposure' <<<"$out" | sed 's/^→ *//')"
  else
    # Older systemd (< 250) has no --offline; report, don't fail on that.
    if grep -q -e "unrecognized option" -e "Unknown option" <<<"$out"; then
      echo "skipped: systemd-analyze security --offline not supported here"
    else
      fail "systemd-analyze security: exposure above $MAX_EXPOSURE/100 or error:"
      grep -e '✗' -e 'Overall' <<<"$out" >&2 || printf '%s\n' "$out" >&2
    fi
  fi
else
  echo "skipped: systemd-analyze not available"
fi

# ---------------------------------------------------------------- Dockerfile libs
bin=
for b in build-release/cacheproxy build/cacheproxy; do
  if [[ -x "$b" ]]; then bin=$b; break; fi
done
if [[ -z "$bin" ]]; then
  echo "skipped: Dockerfile runtime packages (no local build: run scripts/build.sh Release --dir build-release --target cacheproxy)"
elif ! command -v ldd >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "skipped: Dockerfile runtime packages (needs ldd and dpkg)"
else
  listed=$(sed -n 's/^ARG RUNTIME_PACKAGES="\(.*\)"$/\1/p' "$DOCKERFILE")
  [[ -n "$listed" ]] || fail "$DOCKERFILE: no ARG RUNTIME_PACKAGES=\"...\" line"
  # What debian:bookworm-slim already has.
  base=" libc6 libstdc++6 libgcc-s1 zlib1g "
  needed=()
  while read -r lib; do
    # dpkg may record the /lib or the /usr/lib spelling (merged /usr).
    pkg=
    for path in "$lib" "$(readlink -f "$lib")" "${lib#/usr}" "/usr$lib"; do
      pkg=$(dpkg-query -S "$path" 2>/dev/null | grep -v '^diversion' | head -n1 | cut -d: -f1 || true)
      if [[ -n "$pkg" ]]; then break; fi
    done
    if [[ -z "$pkg" ]]; then
      fail "$bin links $lib, which no Debian package owns (built by hand?)"
      continue
    fi
    [[ " $listed $base" == *" $pkg "* ]] || needed+=("$pkg")
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
  if ((${#needed[@]})); then
    fail "$bin links libraries from packages missing in $DOCKERFILE's RUNTIME_PACKAGES: ${needed[*]}"
  else
    echo "ok: $DOCKERFILE RUNTIME_PACKAGES covers every library $bin links"
  fi
fi

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "note: a Docker daemon is reachable: docker build -f $DOCKERFILE -t cacheproxy . builds the image"
else
  echo "skipped: docker build (no Docker daemon here)"
fi

exit "$failed"
