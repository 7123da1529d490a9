#!/usr/bin/env bash
# Builds cacheproxy (and, unless the target is narrowed, its tests) with CMake.
#
#   scripts/build.sh [Release|RelWithDebInfo|Debug]     default RelWithDebInfo, into build/
#   options: --dir DIR       build folder, relative to the repo root (default build)
#            --target T      build only target T (repeatable), e.g. --target cacheproxy
#            --no-deps       skip scripts/deps.sh (or set CACHEPROXY_SKIP_DEPS=1)
#            --sanitize LIST -DCACHEPROXY_SANITIZE=LIST (address,undefined or thread) and no
#                            benchmarks, built with clang++-14 -O0 -g1: a third of the normal
#                            build's time, line numbers in reports (CACHEPROXY_SANITIZE_CXX and
#                            CACHEPROXY_SANITIZE_CXXFLAGS override the compiler and the flags)
#            -DNAME=VALUE    passed to cmake as is
#
# Works from any folder. The binary is DIR/cacheproxy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,14s/^# \{0,1\}//p' "$0"; }

build_type=RelWithDebInfo
build_dir=build
targets=()
cmake_args=()
run_deps=1
[[ "${CACHEPROXY_SKIP_DEPS:-0}" == 1 ]] && run_deps=0

while (($#)); do
  case "$1" in
    Release|RelWithDebInfo|Debug|MinSizeRel) build_type=$1 ;;
    --dir) [[ $# -ge 2 ]] || { echo "build.sh: --dir needs a folder" >&2; exit 2; }; build_dir=$2; shift ;;
    --target) [[ $# -ge 2 ]] || { echo "build.sh: --target needs a name" >&2; exit 2; }; targets+=(--target "$2"); shift ;;
    --no-deps) run_deps=0 ;;
    --sanitize) [[ $# -ge 2 ]] || { echo "build.sh: --sanitize needs a list, e.g. address,undefined" >&2; exit 2; }
      cmake_args+=(-DCACHEPROXY_SANITIZE="$2" -DCACHEPROXY_BENCH=OFF
        -DCMAKE_CXX_COMPILER="${CACHEPROXY_SANITIZE_CXX:-clang++-14}"
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=${CACHEPROXY_SANITIZE_CXXFLAGS:--O0 -g1 -DNDEBUG}"); shift ;;
    -D*) cmake_args+=("$1") ;;
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
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" "${cmake_args[@]}"
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
elapsed=$(($(date +%s) - start))
printf 'build: %s done in %dm%02ds (%ds)\n' "$build_type" $((elapsed / 60)) $((elapsed % 60)) "$elapsed"
