#!/usr/bin/env bash
# Builds cacheproxy (and, unless the target is narrowed, its tests) with CMake.
#
#   scripts/build.sh [Release|RelWithDebInfo|Debug]     default RelWithDebInfo, into build/
#   options: --dir DIR       build folder, relative to the repo root (default build)
#            --target T      build only target T (repeatable), e.g. --target cacheproxy
#            --no-deps       skip scripts/deps.sh (or set CACHEPROXY_SKIP_DEPS=1)
#
# Works from any folder. The binary is DIR/cacheproxy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; }

build_type=RelWithDebInfo
build_dir=build
targets=()
run_deps=1
[[ "${CACHEPROXY_SKIP_DEPS:-0}" == 1 ]] && run_deps=0

while (($#)); do
  case "$1" in
    Release|RelWithDebInfo|Debug|MinSizeRel) build_type=$1 ;;
    --dir) [[ $# -ge 2 ]] || { echo "build.sh: --dir needs a folder" >&2; exit 2; }; build_dir=$2; shift ;;
    --target) [[ $# -ge 2 ]] || { echo "build.sh: --target needs a name" >&2; exit 2; }; targets+=(--target "$2"); shift ;;
    --no-deps) run_deps=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if ((run_deps)); then
  bash "$ROOT/scripts/deps.sh"
fi

# A build folder configured from another checkout cannot be reused: say so
# rather than letting CMake fail with a less obvious message.
cache="$build_dir/CMakeCache.txt"
if [[ -f "$cache" ]]; then
  home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
  if [[ -n "$home" && "$home" != "$ROOT" ]]; then
    echo "build.sh: $ROOT/$build_dir was configured for $home; remove it (rm -rf $build_dir) and run again." >&2
    exit 1
  fi
fi

start=$(date +%s)
echo "build: $build_type into $build_dir/ (${targets[*]:-all targets}, -j$(nproc))"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type"
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
elapsed=$(($(date +%s) - start))
printf 'build: %s done in %dm%02ds (%ds)\n' "$build_type" $((elapsed / 60)) $((elapsed % 60)) "$elapsed"
