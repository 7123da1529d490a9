#!/usr/bin/env bash
# Runs every test: installs what is missing, then in stages
#   normal     RelWithDebInfo into build/, every ctest test (unit, e2e, benchmark smoke)
#   asan+ubsan build-asan/ (-fsanitize=address,undefined): the unit and e2e suites
#   tsan       build-tsan/ (-fsanitize=thread): the concurrency tests (TSAN_TESTS below)
#   fuzz       bash scripts/fuzz.sh --smoke 15, when scripts/fuzz.sh exists
# and exits non-zero if any stage failed. This is what CI runs (.ci/run).
#
#   scripts/test.sh                      every stage
#   scripts/test.sh -L unit              extra arguments go to the normal stage's ctest
#                                        (-L e2e, -R Cache, -V, ...); the other stages are skipped
#   scripts/test.sh --sanitize=address,undefined [ctest args]   only the ASan+UBSan stage
#   scripts/test.sh --sanitize=thread [ctest args]              only the TSan stage
#                                        (ctest args replace the stage's own test selection;
#                                        build-tsan/ has only TSAN_UNIT_SOURCES' unit tests)
#   scripts/test.sh --no-sanitize        skip the ASan+UBSan and TSan stages
#   scripts/test.sh --no-fuzz            skip the fuzz smoke stage
#
# A sanitizer report fails its stage even when no test noticed it: every
# sanitized process (the test binaries and each cacheproxy they spawn) writes
# its reports to BUILD/sanitizer-reports/, which must be empty after ctest.
# Works from any folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() { sed -n '2,22s/^# \{0,1\}//p' "$0"; }

# The TSan stage's tests (a ctest -R regex), the ones whose code runs on more
# than one thread at a time (the proxy runs 2 worker threads in the e2e tests):
#  e2e  Cache.*                 coalesced fills shared between workers, stale-while-revalidate
#                               and refresh-ahead background fills, many concurrent clients
#       Invalidation.*          orders and purges racing fills that are in flight
#       HardeningCoalesce*      bursts of identical misses (every answer kind, holds, timeouts)
#       Shutdown.*, HardeningPolicy.*   SIGTERM/drain across the workers, the connection cap
#       Admin.*                 /stats and /purge read and change every worker's state
#       Passthrough.*, HardeningUpstream.*   the upstream connection pool shared by the workers
#       Principal.*             the credential -> principal map shared by the workers (fills, writes, refusals)
#       SharedTier*.*           the shared tier's thread (Redis I/O, bus messages, barriers) beside the workers
#  unit Coalescer*, MemoryStore*, Generations*, WorkerStats*, CachedResponse*, PrincipalMap*,
#       CachePrincipal*: the shared structures (some of these tests run threads of their own)
TSAN_TESTS='^(Cache|Invalidation|Shutdown|Admin|Passthrough|HardeningPolicy|HardeningUpstream|Principal|SharedTier|SharedTierFaults)\.|HardeningCoalesce|^(Coalescer|MemoryStore|Generations|WorkerStats|CachedResponse|PrincipalMap|CachePrincipal)[A-Za-z]*\.'
# Only these unit test sources are built into build-tsan/ (what TSAN_TESTS runs).
TSAN_UNIT_SOURCES='/(coalescer|memory_store|generations|worker_stats|cached_response|principal_map|cache_principal)_test\.cpp$'
# Not run in the sanitizer stages (each for a stated reason):
#  Gzip.StreamedPassThroughIsGzippedWithFlatProxyMemory measures the proxy's RSS while
#  it streams 8 MiB: ASan keeps freed memory in quarantine (256 MiB), so RSS grows.
SANITIZE_EXCLUDE='^Gzip\.StreamedPassThroughIsGzippedWithFlatProxyMemory$'

sanitize_only=""
run_sanitizers=1
run_fuzz=1
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --sanitize=*) sanitize_only=${arg#--sanitize=} ;;
    --no-sanitize) run_sanitizers=0 ;;
    --no-fuzz) run_fuzz=0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done
case "$sanitize_only" in
  ""|address,undefined|undefined,address|address|undefined|thread) ;;
  *) echo "test.sh: --sanitize= takes address,undefined or thread, not '$sanitize_only'" >&2; exit 2 ;;
esac

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

run_start=$(date +%s)
summary=()      # one line per stage
total_passed=0
total_failed=0  # failed tests, plus one for each stage that failed outside its tests
any_failed=0

# ctest_counts LOG -> "PASSED FAILED TOTAL" from ctest's closing line, or nothing.
ctest_counts() {
  local line
  line=$(grep -E '[0-9]+ tests failed out of [0-9]+' "$1" | tail -1) || return 0
  [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]] || return 0
  echo "$((BASH_REMATCH[2] - BASH_REMATCH[1])) ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}

# run_stage NAME BUILD_DIR SANITIZE CTEST_ARGS...: builds into BUILD_DIR (with
# SANITIZE, if any) and runs ctest there; records the stage's summary line.
run_stage() {
  local name=$1 dir=$2 sanitize=$3
  shift 3
  local build_args=(RelWithDebInfo --dir "$dir" --no-deps)
  local reports="$ROOT/$dir/sanitizer-reports"
  if [[ -n $sanitize ]]; then
    build_args+=(--sanitize "$sanitize")
    [[ $sanitize == thread ]] && build_args+=(-DCACHEPROXY_UNIT_TEST_FILTER="$TSAN_UNIT_SOURCES")
  fi

  echo
  echo "==== test.sh: stage $name: build into $dir/ ===="
  local start build_secs test_secs status=0 note=""
  start=$(date +%s)
  if ! nice bash "$ROOT/scripts/build.sh" "${build_args[@]}"; then
    build_secs=$(($(date +%s) - start))
    summary+=("$(printf '%-11s build FAILED after %s' "$name" "$(fmt_time "$build_secs")")")
    total_failed=$((total_failed + 1))
    any_failed=1
    return 0
  fi
  build_secs=$(($(date +%s) - start))

  echo "==== test.sh: stage $name: ctest in $dir/ ===="
  local env_vars=()
  if [[ -n $sanitize ]]; then
    rm -rf "$reports"
    mkdir -p "$reports"
    local supp="$ROOT/scripts/sanitizers"
    # Every sanitized process, including each cacheproxy an e2e test starts
    # (it inherits this environment), writes its reports to $reports/ named
    # after the executable and pid; the check below fails the stage on any.
    # halt_on_error: the first error stops the process (the proxy then stops
    # answering, so its test fails too).
    # (One log_path for all: the runtimes share these common flags.)
    local to_file="log_path=$reports/report:log_exe_name=1"
    local symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer  # file:line in the reports (llvm-14)
    [[ -x $symbolizer ]] && to_file+=":external_symbolizer_path=$symbolizer"
    env_vars=(
      "ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:$to_file"
      "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:$to_file"
      "LSAN_OPTIONS=suppressions=$supp/lsan.supp"
      "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp:$to_file"
    )
  fi
  local log="$ROOT/$dir/ctest-output.log"
  start=$(date +%s)
  set +e
  env "${env_vars[@]}" ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300 --no-tests=error "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  test_secs=$(($(date +%s) - start))

  local counts passed=0 failed=0 total=0
  counts=$(ctest_counts "$log")
  [[ -n $counts ]] && read -r passed failed total <<<"$counts"
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  if ((status != 0)) && ((failed == 0)); then
    total_failed=$((total_failed + 1))  # ctest failed without failing a test (no tests, bad args)
    note="; ctest exit status $status"
  fi

  if [[ -n $sanitize ]]; then
    local files=()
    mapfile -t files < <(find "$reports" -type f | sort)
    if ((${#files[@]} > 0)); then
      echo "==== test.sh: stage $name: ${#files[@]} sanitizer report(s) in $reports/ ===="
      local f
      for f in "${files[@]}"; do
        echo "---- $f"
        head -n 80 "$f"
      done
      status=1
      total_failed=$((total_failed + 1))
      note+="; ${#files[@]} sanitizer report(s) in $dir/sanitizer-reports/"
    else
      note+="; no sanitizer report"
    fi
  fi

  local verdict=ok
  if ((status != 0)); then verdict=FAILED; any_failed=1; fi
  summary+=("$(printf '%-11s %-6s build %s, tests %s: %d tests, %d passed, %d failed%s' \
    "$name" "$verdict" "$(fmt_time "$build_secs")" "$(fmt_time "$test_secs")" "$total" "$passed" "$failed" "$note")")
}

run_fuzz_stage() {
  if [[ ! -f "$ROOT/scripts/fuzz.sh" ]]; then
    summary+=("$(printf '%-11s skipped: scripts/fuzz.sh does not exist' fuzz)")
    return 0
  fi
  echo
  echo "==== test.sh: stage fuzz: bash scripts/fuzz.sh --smoke 15 ===="
  local start secs status=0
  start=$(date +%s)
  bash "$ROOT/scripts/fuzz.sh" --smoke 15 || status=$?
  secs=$(($(date +%s) - start))
  if ((status == 0)); then
    summary+=("$(printf '%-11s %-6s %s' fuzz ok "$(fmt_time "$secs")")")
  else
    summary+=("$(printf '%-11s %-6s %s, exit status %d' fuzz FAILED "$(fmt_time "$secs")" "$status")")
    total_failed=$((total_failed + 1))
    any_failed=1
  fi
}

# --bench: nginx, Varnish, wrk and ab for the benchmark smoke test (bench_smoke).
if [[ -n $sanitize_only ]]; then
  bash "$ROOT/scripts/deps.sh"
else
  bash "$ROOT/scripts/deps.sh" --bench
fi

if [[ -n $sanitize_only ]]; then
  if [[ $sanitize_only == thread ]]; then
    ((${#ctest_args[@]})) || ctest_args=(-R "$TSAN_TESTS" -E "$SANITIZE_EXCLUDE")
    run_stage tsan build-tsan thread "${ctest_args[@]}"
  else
    ((${#ctest_args[@]})) || ctest_args=(-L 'unit|e2e' -E "$SANITIZE_EXCLUDE")
    run_stage "$(tr , + <<<"$sanitize_only" | sed 's/address/asan/;s/undefined/ubsan/')" \
      build-asan "$sanitize_only" "${ctest_args[@]}"
  fi
else
  run_stage normal build "" "${ctest_args[@]}"
  # Narrowed runs (scripts/test.sh -R Foo) are the normal stage alone.
  if ((${#ctest_args[@]} == 0)); then
    if ((run_sanitizers)); then
      run_stage asan+ubsan build-asan address,undefined -L 'unit|e2e' -E "$SANITIZE_EXCLUDE"
      run_stage tsan build-tsan thread -R "$TSAN_TESTS" -E "$SANITIZE_EXCLUDE"
    fi
    ((run_fuzz)) && run_fuzz_stage
  fi
fi

echo
echo "==== test.sh: summary ===="
printf '%s\n' "${summary[@]}"
verdict="all stages passed"
((any_failed)) && verdict="FAILED"
echo "test.sh: $verdict in $(fmt_time $(($(date +%s) - run_start)))"
echo "test.sh: $total_passed passed, $total_failed failed"
((any_failed == 0))
