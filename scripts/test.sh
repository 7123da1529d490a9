#!/usr/bin/env bash
# Runs every test: installs what is missing, builds RelWithDebInfo into build/,
# then runs ctest (unit, end-to-end, and the benchmark smoke run). Exits with ctest's status.
#
#   scripts/test.sh               every test
#   scripts/test.sh -L unit       extra arguments go to ctest (-L e2e, -R Cache, -V, ...)
#
# Works from any folder. This is what CI runs (.ci/run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

case "${1:-}" in
  -h|--help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

build_start=$(date +%s)
# --bench: nginx, Varnish, wrk and ab for the benchmark smoke test (bench_smoke).
bash "$ROOT/scripts/deps.sh" --bench
bash "$ROOT/scripts/build.sh" RelWithDebInfo --dir build --no-deps
build_secs=$(($(date +%s) - build_start))

# --no-tests=error: a build that registers no test must not pass as green.
test_start=$(date +%s)
set +e
ctest --test-dir build --output-on-failure -j2 --timeout 300 --no-tests=error "$@"
status=$?
set -e
test_secs=$(($(date +%s) - test_start))

echo "test.sh: build $(fmt_time "$build_secs"), tests $(fmt_time "$test_secs"), ctest exit status $status"
exit "$status"
