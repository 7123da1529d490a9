#!/usr/bin/env bash
# Installs the Debian packages cacheproxy needs to build, test and run its demo.
# Idempotent: when everything is present it only asks dpkg and returns at once.
#
#   scripts/deps.sh            build + test + demo packages
#   scripts/deps.sh --bench    also the benchmark tools (nginx, varnish, wrk, ab, valgrind)
#   scripts/deps.sh --check    install nothing; list what is missing, exit 1 if any
#
# Add a package to the group that needs it; keep the groups apart so a later
# change can install only what it needs.
set -euo pipefail

# Compiler, CMake and the libraries the proxy links (see CMakeLists.txt).
BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libboost1.81-dev libyaml-cpp-dev libspdlog-dev libfmt-dev zlib1g-dev libssl-dev
  libhiredis-dev
)
# GoogleTest and Google Benchmark for the C++ tests and micro-benchmarks; the
# legacy simulator (FastAPI on uvicorn, Debian's /usr/bin/python3) and curl for
# the end-to-end tests and the demo; Prometheus (promtool + a real server that
# scrapes /metrics) and headless Chromium (the /dashboard page) for the
# admin/metrics end-to-end tests. The webapp tests (tests/webapp, pytest): the
# HTTP and WebSocket clients, FastAPI's multipart parser, PyYAML for the
# configs, nginx and openssl for the TLS front. A real Redis (server and
# redis-cli, which also creates the test cluster) for the Redis client's tests.
TEST_PACKAGES=(
  libgtest-dev libbenchmark-dev
  python3 python3-fastapi python3-uvicorn
  curl ca-certificates
  prometheus chromium
  python3-pytest python3-pytest-timeout python3-httpx python3-aiohttp python3-websockets
  python3-multipart python3-yaml nginx-light openssl
  redis-server redis-tools
)
# The sanitizer stages of scripts/test.sh (build-asan/, build-tsan/) build with
# clang 14: its ASan/UBSan/TSan runtimes, and llvm-symbolizer for file:line in
# the reports.
SANITIZER_PACKAGES=(
  clang-14 libclang-rt-14-dev llvm-14
)
# Load tools, the caches we compare against and valgrind (scripts/deps.sh --bench).
BENCH_PACKAGES=(
  nginx-light varnish wrk apache2-utils valgrind
)

usage() { sed -n '2,7s/^# \{0,1\}//p' "$0"; }

want=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${SANITIZER_PACKAGES[@]}")
check_only=0
for arg in "$@"; do
  case "$arg" in
    --bench) want+=("${BENCH_PACKAGES[@]}") ;;
    --check) check_only=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deps.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

missing_packages() {
  local pkg
  for pkg in "$@"; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] \
      || echo "$pkg"
  done
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: dpkg-query not found: this script expects Debian 12 (bookworm)." >&2
  echo "deps.sh: install these packages (or their equivalents) by hand: ${want[*]}" >&2
  exit 1
fi

mapfile -t missing < <(missing_packages "${want[@]}")
if ((${#missing[@]} == 0)); then
  echo "deps: all ${#want[@]} packages present"
  exit 0
fi

echo "deps: missing: ${missing[*]}"
if ((check_only)); then
  exit 1
fi

# Root runs apt-get directly; anyone else goes through sudo (non-interactive
# sudo when there is no terminal to type a password into, e.g. in CI).
sudo_cmd=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps.sh: not root and sudo is not available." >&2
    echo "deps.sh: as root, run:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
  [[ -t 0 ]] || sudo_cmd=(sudo -n)
fi

# Wait for another apt/dpkg run (another build on this machine) instead of failing.
apt_opts=(-o DPkg::Lock::Timeout=300)
apt_get() { "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" "$@"; }

if ! apt_get update -qq || ! apt_get install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "deps.sh: installing failed. Install these Debian packages and run again:" >&2
  echo "  ${missing[*]}" >&2
  exit 1
fi

mapfile -t still < <(missing_packages "${missing[@]}")
if ((${#still[@]} > 0)); then
  echo "deps.sh: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "deps: installed ${missing[*]}"
