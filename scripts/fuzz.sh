#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of tests/fuzz/ (clang-14, ASan + UBSan).
#
#   scripts/fuzz.sh TARGET SECONDS     run one target for SECONDS on its corpus
#   scripts/fuzz.sh --smoke SECONDS    run every target for SECONDS each (CI)
#   scripts/fuzz.sh --known-bugs       replay tests/fuzz/known-bugs/ once (open bugs)
#   scripts/fuzz.sh --build            only build every target
#   scripts/fuzz.sh --list             the targets
#
# The checked-in corpus (tests/fuzz/corpus/TARGET/) is copied to a scratch
# folder, so new inputs never dirty the repository; the dictionary is
# tests/fuzz/dict/TARGET.dict. A crash, leak, timeout (-timeout=10 s per input)
# or OOM (-rss_limit_mb=2048) exits non-zero and prints the reproducer, kept in
# build-fuzz/artifacts/TARGET/. Reproduce one with
#   build-fuzz/TARGET path/to/crash-file
# Environment: FUZZ_BUILD_DIR (default build-fuzz), CACHEPROXY_SOURCE_DIR
# (fuzz another checkout's proxy/, e.g. an export of an older commit),
# CACHEPROXY_FUZZ_KNOWN_BUGS (ids of open bugs whose one check is skipped,
# comma-separated; see tests/fuzz/README.md; unset = every check on).
# Installs clang-14, libfuzzer-14-dev and llvm-14 if missing. Single process,
# under nice: the machine's two cores are shared.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FUZZ_DIR="$ROOT/tests/fuzz"
BUILD_DIR="${FUZZ_BUILD_DIR:-build-fuzz}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
SOURCE_DIR="${CACHEPROXY_SOURCE_DIR:-$ROOT}"

TARGETS=(fuzz_request fuzz_config fuzz_cache_key fuzz_accept_encoding fuzz_write_outcome fuzz_gunzip fuzz_shared_tier)

# -max_len per target: the request target must reach past max_header_bytes (16 KiB).
max_len_of() {
  case "$1" in
    fuzz_request) echo 20480 ;;
    fuzz_config) echo 8192 ;;
    fuzz_cache_key) echo 2048 ;;
    fuzz_accept_encoding) echo 512 ;;
    fuzz_write_outcome) echo 4096 ;;
    fuzz_gunzip) echo 16384 ;;
    fuzz_shared_tier) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

describe_of() {
  case "$1" in
    fuzz_request) echo "session read path -> upstream bytes re-parse to the same single request" ;;
    fuzz_config) echo "config + rules YAML loaders, units round trips" ;;
    fuzz_cache_key) echo "cache key: layout, canonicalisation, identity, scope_target link" ;;
    fuzz_accept_encoding) echo "Accept-Encoding negotiation, Content-Encoding classification" ;;
    fuzz_write_outcome) echo "write outcome, scope, scope_target, normalize_write_target" ;;
    fuzz_gunzip) echo "gzip: one-shot == streaming, bounds, round trips" ;;
    fuzz_shared_tier) echo "from Redis: RESP whole == in pieces; L2 value and bus message round trips, refusals" ;;
  esac
}

usage() { sed -n '2,21s/^# \{0,1\}//p' "$0"; }

is_target() {
  local t
  for t in "${TARGETS[@]}"; do [[ "$t" == "$1" ]] && return 0; done
  return 1
}

# --- tools -------------------------------------------------------------------
ensure_packages() {
  local missing=() p
  for p in clang-14 libfuzzer-14-dev llvm-14 cmake pkg-config libhiredis-dev libboost1.81-dev libyaml-cpp-dev libspdlog-dev libfmt-dev \
           zlib1g-dev libssl-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "fuzz.sh: installing ${missing[*]}" >&2
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- build -------------------------------------------------------------------
build() {  # build TARGET...
  ensure_packages
  local cache="$BUILD_DIR/CMakeCache.txt"
  if [[ -f "$cache" ]]; then
    local home src
    home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
    src=$(sed -n 's/^CACHEPROXY_SOURCE_DIR:PATH=//p' "$cache")
    if [[ "$home" != "$FUZZ_DIR" || "$src" != "$SOURCE_DIR" ]]; then
      echo "fuzz.sh: $BUILD_DIR was configured for $home ($src); reconfiguring from scratch" >&2
      rm -rf "$BUILD_DIR"
    fi
  fi
  if [[ ! -f "$cache" ]]; then
    local gen=()
    command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
    mkdir -p "$BUILD_DIR"
    cmake -S "$FUZZ_DIR" -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_CXX_COMPILER=clang++-14 \
      -DCACHEPROXY_SOURCE_DIR="$SOURCE_DIR" >"$BUILD_DIR/configure.log" 2>&1 || {
      cat "$BUILD_DIR/configure.log" >&2
      echo "fuzz.sh: cmake configure failed" >&2
      exit 1
    }
  fi
  local args=() t
  for t in "$@"; do args+=(--target "$t"); done
  local start=$SECONDS
  if ! nice -n 10 cmake --build "$BUILD_DIR" -j2 "${args[@]}" >"$BUILD_DIR/build.log" 2>&1; then
    grep -E "error|Error" "$BUILD_DIR/build.log" | head -40 >&2 || true
    echo "fuzz.sh: build failed (full log: $BUILD_DIR/build.log)" >&2
    exit 1
  fi
  echo "fuzz.sh: built $* in $((SECONDS - start)) s" >&2
}

# --- run ---------------------------------------------------------------------
LAST_SUMMARY=""
run_target() {  # run_target TARGET SECONDS -> 0 clean, 1 finding
  local t=$1 secs=$2
  local scratch art log
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/cacheproxy-fuzz-$t-XXXXXX")
  art="$BUILD_DIR/artifacts/$t"
  log="$BUILD_DIR/logs/$t.log"
  mkdir -p "$art" "$BUILD_DIR/logs"
  if [[ -d "$FUZZ_DIR/corpus/$t" ]]; then cp -r "$FUZZ_DIR/corpus/$t/." "$scratch/"; fi
  local dict=()
  [[ -f "$FUZZ_DIR/dict/$t.dict" ]] && dict=(-dict="$FUZZ_DIR/dict/$t.dict")
  local before
  before=$(find "$art" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  local rc=0 start=$SECONDS
  # Our own sanitizer options, whatever the caller's environment says.
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:symbolize=1" \
  ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)" \
    timeout --kill-after=10 $((secs + 120)) \
    nice -n 10 "$BUILD_DIR/$t" "$scratch" "${dict[@]}" \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
      -max_len="$(max_len_of "$t")" -print_final_stats=1 -artifact_prefix="$art/" \
      >"$log" 2>&1 || rc=$?
  local elapsed=$((SECONDS - start))
  local execs cov ft corp_files corp_size
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [[ -n "$execs" ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  local last
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp_files=$(find "$scratch" -maxdepth 1 -type f | wc -l)
  corp_size=$(du -sh "$scratch" 2>/dev/null | cut -f1)
  rm -rf "$scratch"
  LAST_SUMMARY=$(printf '%-22s %4ss  execs %-9s (%s/s)  cov %-5s ft %-6s corpus %s files (%s)' \
    "$t" "$elapsed" "${execs:-?}" "$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))" "${cov:-?}" "${ft:-?}" \
    "$corp_files" "$corp_size")
  if ((rc != 0)); then
    local after found
    after=$(find "$art" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    found=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d')
    LAST_SUMMARY="$LAST_SUMMARY  FAILED (exit $rc)"
    {
      echo "---- $t: finding (exit $rc); last lines of $log:"
      grep -E '==fuzz==|ERROR: |SUMMARY: |runtime error' "$log" | head -12
      echo "---- first frames:"
      grep -E '^    #[0-9]+ ' "$log" | grep -vE 'libFuzzer|fuzzer::|__sanitizer|__asan|__ubsan|libc\.so|libc_start|_start |pthread_kill|abort|raise|fuzz::fail' | head -12
      if [[ -n "$found" ]]; then
        echo "---- reproducer(s):"
        while IFS= read -r f; do echo "  $f"; echo "  reproduce: $BUILD_DIR/$t $f"; done <<<"$found"
      else
        echo "---- no reproducer written (exit $rc: killed, or a failure before the first input); see $log"
        tail -20 "$log"
      fi
    } >&2
    return 1
  fi
  return 0
}

# --- main --------------------------------------------------------------------
case "${1:-}" in
  ""|-h|--help) usage; exit 0 ;;
  --list)
    for t in "${TARGETS[@]}"; do printf '%-22s %s\n' "$t" "$(describe_of "$t")"; done
    exit 0 ;;
  --build)
    build "${TARGETS[@]}"
    exit 0 ;;
  --known-bugs)
    build "${TARGETS[@]}"
    status=0
    for t in "${TARGETS[@]}"; do
      dir="$FUZZ_DIR/known-bugs/$t"
      [[ -d "$dir" ]] || continue
      for f in "$dir"/*; do
        [[ -f "$f" ]] || continue
        if env -u CACHEPROXY_FUZZ_KNOWN_BUGS ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="halt_on_error=1" \
           timeout 60 "$BUILD_DIR/$t" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$BUILD_DIR/known-bug-" "$f" \
             >"$BUILD_DIR/known-bug.log" 2>&1; then
          echo "fixed      $t ${f#$ROOT/}  (move it to tests/fuzz/corpus/$t/)"
        else
          echo "still open $t ${f#$ROOT/}"
          status=1
        fi
      done
    done
    exit $status ;;
  --smoke)
    secs=${2:-15}
    [[ "$secs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --smoke needs SECONDS" >&2; exit 2; }
    total_start=$SECONDS
    build "${TARGETS[@]}"
    passed=0 failed=0 failed_names=()
    for t in "${TARGETS[@]}"; do
      if run_target "$t" "$secs"; then
        passed=$((passed + 1))
      else
        failed=$((failed + 1))
        failed_names+=("$t")
      fi
      echo "$LAST_SUMMARY"
    done
    echo "fuzz smoke: ${#TARGETS[@]} targets x ${secs} s in $((SECONDS - total_start)) s (build included)${failed_names:+; failed: ${failed_names[*]}}"
    echo "fuzz: $passed passed, $failed failed"
    ((failed == 0)) ;;
  -*)
    echo "fuzz.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  *)
    t=$1 secs=${2:-}
    is_target "$t" || { echo "fuzz.sh: unknown target '$t' (scripts/fuzz.sh --list)" >&2; exit 2; }
    [[ "$secs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: usage: scripts/fuzz.sh TARGET SECONDS" >&2; exit 2; }
    build "$t"
    rc=0
    run_target "$t" "$secs" || rc=1
    echo "$LAST_SUMMARY"
    exit $rc ;;
esac
