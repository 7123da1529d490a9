#!/usr/bin/env bash
# The whole benchmark in one command: installs the tools, builds Release,
# runs the scenarios below one after the other and prints each report, then
# one summary table with issue 16's targets (and the older scenarios').
#
#   scripts/bench/run_all.sh [--out FILE] [--no-deps] [--no-build] [--wait-load SECONDS] [--quick]
#
#   1  hits.sh        cache hits, cacheproxy --threads 1 vs nginx proxy_cache 1 worker vs Varnish
#                     vs the upstream nginx `return 200` served directly
#   1b hits.sh --threads-proxy $(nproc) --nginx-workers auto --targets cacheproxy,nginx_cache
#                     --key-prefix hits_mt: the default config's thread count (threads: 0 = the
#                     cores) vs nginx worker_processes auto + listen reuseport
#   2  forwarding.sh  pass-through, 1 thread: cacheproxy vs nginx proxy_pass (keep-alive 64)
#   3  coalescing.sh  1000 identical cold requests, 1 s upstream: cacheproxy vs nginx proxy_cache_lock
#   4  seed_ab.sh     ab -n 1000 -c 50 on a balance, simulator at 3 s
#   5  workload.sh    1000 Zipf users, balance/positions/ticker + 2% orders, 60 s, read-your-writes check
#   6  memory.sh      RSS with 100k cached 500-byte entries
#   7  callgrind.sh hit 20000, callgrind.sh pass 20000: instructions per hit and per
#                     pass-through request (valgrind; PROGRAM TOTALS / N, start-up included,
#                     and without it: (totals - a run without ab) / N)
#   7b callgrind.sh hit 20000 --server nginx, callgrind.sh pass 20000 --server nginx:
#                     the same for nginx proxy_cache / proxy_pass (one process under valgrind)
#
# Targets judged in the summary (issue 16): hit, 1 thread vs nginx 1 worker:
# req/s >= 1.5x, p99 <= 0.5x, req/s >= 0.85x of nginx `return 200`; hit,
# default threads vs nginx auto: req/s >= 1.3x; pass-through vs nginx
# proxy_pass: req/s >= 1.1x (p99 ratio shown as info: "no regression");
# memory <= 300 B per entry; coalescing, seed ab and workload as before.
# Varnish and callgrind rows (cacheproxy's instructions per request beside
# nginx's, and the ratio) are info.
#
# Takes about 15 minutes. Every script starts its own servers on free
# loopback ports and stops them (trap + watchdog); this script only runs them
# one at a time (each also under `timeout`) and stops the running one on
# Ctrl-C / TERM.
#
# Options:
#   --out FILE          also write the whole report (markdown) to FILE
#   --no-deps           skip scripts/deps.sh --bench
#   --no-build          skip the Release build (uses CACHEPROXY_BIN, else build-release/)
#   --wait-load S       before starting, wait up to S seconds for the 1-minute
#                       load average to drop below 1.5 (the box is shared) [0]
#   --quick             every scenario with tiny sizes (smoke.sh's; callgrind
#                       500 requests; ~1.5 min): checks the machinery, the
#                       numbers mean nothing
# The binary measured: CACHEPROXY_BIN if set, else build-release/cacheproxy
# after `scripts/build.sh Release --dir build-release --target cacheproxy`.
# It is copied to a private folder first, so a rebuild during the run cannot
# swap it between scenarios.
# Exit status: 0 when every scenario produced its numbers (targets met or
# not: timings are noisy, this is not a pass/fail gate); 1 otherwise.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
source "$HERE/lib.sh"

usage() { sed -n '2,48s/^# \{0,1\}//p' "$0"; }

OUT=""
DO_DEPS=1
DO_BUILD=1
WAIT_LOAD=0
QUICK=0
COMMAND="scripts/bench/run_all.sh${*:+ $*}"
while (($#)); do
  case "$1" in
    --out) OUT=${2:?--out needs a file}; shift ;;
    --no-deps) DO_DEPS=0 ;;
    --no-build) DO_BUILD=0 ;;
    --wait-load) WAIT_LOAD=${2:?--wait-load needs seconds}; shift ;;
    --quick) QUICK=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ "$WAIT_LOAD" =~ ^[0-9]+$ ]] || { echo "--wait-load: expected seconds" >&2; exit 2; }

RUN_DIR=$(mktemp -d /tmp/cacheproxy-bench-all.XXXXXX)
bench_driver_init "$RUN_DIR"   # on exit: stop the running scenario ($BENCH_CHILD), remove RUN_DIR

say() { echo "[run_all $(date +%H:%M:%S)] $*" >&2; }

if ((DO_DEPS)); then
  say "scripts/deps.sh --bench"
  bash "$ROOT/scripts/deps.sh" --bench >&2 || { say "deps.sh failed"; exit 1; }
fi

if [[ -n "${CACHEPROXY_BIN:-}" ]]; then
  SRC_BIN=$CACHEPROXY_BIN
elif ((DO_BUILD)); then
  say "scripts/build.sh Release --dir build-release --target cacheproxy"
  timeout 3600 bash "$ROOT/scripts/build.sh" Release --dir build-release --target cacheproxy --no-deps >&2 \
    || { say "the Release build failed"; exit 1; }
  SRC_BIN="$ROOT/build-release/cacheproxy"
else
  SRC_BIN="$ROOT/build-release/cacheproxy"
fi
[[ -x "$SRC_BIN" ]] || { say "no cacheproxy binary at $SRC_BIN"; exit 1; }
mkdir -p "$RUN_DIR/bin"
cp -p "$SRC_BIN" "$RUN_DIR/bin/cacheproxy" || exit 1
cp -p "$(dirname "$SRC_BIN")/CMakeCache.txt" "$RUN_DIR/bin/" 2>/dev/null || true
export CACHEPROXY_BIN="$RUN_DIR/bin/cacheproxy"
BIN_SHA=$(sha256sum "$CACHEPROXY_BIN" | cut -c1-12)
say "measuring a copy of $SRC_BIN (sha256 $BIN_SHA)"

if ((WAIT_LOAD > 0)); then
  deadline=$((SECONDS + WAIT_LOAD))
  while awk '{exit !($1 >= 1.5)}' /proc/loadavg && ((SECONDS < deadline)); do
    say "load average $(cut -d' ' -f1-3 /proc/loadavg): waiting for < 1.5 (up to $((deadline - SECONDS)) s more)"
    sleep 15
  done
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

export BENCH_RESULTS_FILE="$RUN_DIR/results.txt"
: >"$BENCH_RESULTS_FILE"
REPORT="$RUN_DIR/report.md"
: >"$REPORT"
emit() { tee -a "$REPORT"; }

STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
{
  echo "# cacheproxy benchmark: run_all.sh"
  echo
  echo "- started: $STARTED; command: \`$COMMAND\`"
  echo "- host: nproc=$(nproc), CPU: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r), $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}")"
  echo "- cacheproxy: copy of $SRC_BIN ($(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$RUN_DIR/bin/CMakeCache.txt" 2>/dev/null || echo '?'), built $(date -u -r "$SRC_BIN" '+%Y-%m-%d %H:%M UTC'), sha256 $BIN_SHA), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
  echo "- load average at start (1/5/15 min): $LOAD_START"
  ((QUICK)) && echo "- **--quick: tiny sizes, the numbers mean nothing**"
} | emit

status=0
# A scenario runs SCRIPT[scenario].sh (default: its own name) with ARGS[scenario].
SCENARIOS=(hits hits_mt forwarding coalescing seed_ab workload memory callgrind_hit callgrind_pass
           callgrind_nginx_hit callgrind_nginx_pass)
declare -A SCRIPT=([hits_mt]=hits)
declare -A LIMIT=([hits]=600 [hits_mt]=400 [forwarding]=400 [coalescing]=400 [seed_ab]=300 [workload]=300 [memory]=400)
# The default config's thread count (threads: 0 = the cores) against nginx's
# worker_processes auto; no Varnish, no direct ceiling (not targets here).
HITS_MT="--threads-proxy $(nproc) --nginx-workers auto --targets cacheproxy,nginx_cache --key-prefix hits_mt"
CALLGRIND_N=20000
declare -A ARGS=([hits_mt]="$HITS_MT")
if ((QUICK)); then
  ARGS=([hits]="--duration 1s --rounds 1" [hits_mt]="$HITS_MT --duration 1s --rounds 1" [forwarding]="--duration 1s --rounds 1"
        [coalescing]="--requests 100 --rounds 1" [seed_ab]="--requests 200 --latency 0.5" [workload]="--duration 5s --users 100"
        [memory]="--entries 1000")
  CALLGRIND_N=500
fi
# callgrind_MODE: cacheproxy; callgrind_nginx_MODE: nginx, the same requests.
for mode in hit pass; do
  SCRIPT[callgrind_$mode]=callgrind SCRIPT[callgrind_nginx_$mode]=callgrind
  LIMIT[callgrind_$mode]=300 LIMIT[callgrind_nginx_$mode]=300
  ARGS[callgrind_$mode]="$mode $CALLGRIND_N"
  ARGS[callgrind_nginx_$mode]="$mode $CALLGRIND_N --server nginx"
done
for s in "${SCENARIOS[@]}"; do
  script=${SCRIPT[$s]:-$s}
  say "=== $s: $script.sh ${ARGS[$s]:-} ==="
  # shellcheck disable=SC2086  # options split on purpose
  timeout --kill-after=10 "${LIMIT[$s]}" "$HERE/$script.sh" ${ARGS[$s]:-} >"$RUN_DIR/$s.md" 2>"$RUN_DIR/$s.err" &
  BENCH_CHILD=$!
  # progress lines on stderr as they come
  tail -f --pid="$BENCH_CHILD" "$RUN_DIR/$s.err" >&2 &
  tailpid=$!
  wait "$BENCH_CHILD"
  rc=$?
  BENCH_CHILD=""
  wait "$tailpid" 2>/dev/null
  emit <"$RUN_DIR/$s.md"
  if ((rc != 0)); then
    say "$s ($script.sh ${ARGS[$s]:-}) exited $rc"
    echo -e "\n**$s ($script.sh ${ARGS[$s]:-}) exited $rc** (last lines of its stderr below)\n\n\`\`\`\n$(tail -20 "$RUN_DIR/$s.err")\n\`\`\`" | emit
    status=1
  fi
done

# ------------------------------------------------------------ summary --

python3 - "$BENCH_RESULTS_FILE" <<'PY' | emit
import sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("=")
    r[k] = v

def num(k):
    try:
        x = float(r[k])
        return None if x != x else x
    except (KeyError, ValueError):
        return None

def f(x, fmt="%.0f"):
    return "n/a" if x is None else fmt.format(x) if fmt.startswith("{") else fmt % x

def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b

rows = []
def row(scn, metric, cp, base, value, target, ok):
    met = "n/a" if ok is None else ("**met**" if ok else "**not met**")
    rows.append("| %s | %s | %s | %s | %s | %s | %s |" % (scn, metric, cp, base, value, target, met))

def ge(x, t): return None if x is None else x >= t
def le(x, t): return None if x is None else x <= t
def eq(x, t): return None if x is None else x == t

def vs(scn, metric, a, b, base, target=None, op=None, t=None):
    """A row of cacheproxy's a over base's b (result keys; *.p99_ms in ms)."""
    fmt = "%.3f ms" if a.endswith("_ms") else "%.0f"
    x, y = num(a), num(b)
    z = ratio(x, y)
    row(scn, metric, f(x, fmt), f(y, fmt) + " (%s)" % base, f(z, "%.2fx"), target or "- (info)", op and op(z, t))

def hits_scn(name, prefix, vs_what):
    caching = "" if r.get(prefix + ".cacheproxy.caching", "1") == "1" else " (cacheproxy NOT CACHING)"
    return "%s hits, %st vs %s%s" % (name, r.get(prefix + ".cacheproxy.threads", "?"), vs_what, caching)

scn = hits_scn("1", "hits", "nginx %s worker" % r.get("hits.nginx_cache.workers", "?"))
vs(scn, "req/s vs nginx proxy_cache", "hits.cacheproxy.rps", "hits.nginx_cache.rps", "nginx", ">= 1.5x", ge, 1.5)
vs(scn, "p99 vs nginx proxy_cache", "hits.cacheproxy.p99_ms", "hits.nginx_cache.p99_ms", "nginx", "<= 0.5x", le, 0.5)
vs(scn, "req/s vs nginx `return 200` (the upstream served directly)", "hits.cacheproxy.rps", "hits.direct.rps",
   "nginx return 200", ">= 0.85x", ge, 0.85)
vs(scn, "req/s vs Varnish", "hits.cacheproxy.rps", "hits.varnish.rps", "Varnish")
vs(scn, "p99 vs Varnish", "hits.cacheproxy.p99_ms", "hits.varnish.p99_ms", "Varnish")
scn = hits_scn("1b", "hits_mt", "nginx worker_processes %s (default threads)" % r.get("hits_mt.nginx_cache.workers", "?"))
vs(scn, "req/s vs nginx proxy_cache (listen reuseport)", "hits_mt.cacheproxy.rps", "hits_mt.nginx_cache.rps", "nginx", ">= 1.3x", ge, 1.3)
vs(scn, "p99 vs nginx proxy_cache", "hits_mt.cacheproxy.p99_ms", "hits_mt.nginx_cache.p99_ms", "nginx")
scn = "2 pass-through, %st vs nginx 1 worker" % r.get("forwarding.cacheproxy.threads", "?")
vs(scn, "req/s vs nginx proxy_pass keepalive", "forwarding.cacheproxy.rps", "forwarding.nginx_proxy.rps", "nginx", ">= 1.1x", ge, 1.1)
vs(scn, "p99 vs nginx proxy_pass keepalive", "forwarding.cacheproxy.p99_ms", "forwarding.nginx_proxy.p99_ms", "nginx",
   "no regression (info: compare runs)")
n = num("coalescing.requests")
u, un = num("coalescing.cacheproxy.upstream_max"), num("coalescing.nginx.upstream_max")
row("3 coalescing", "upstream requests for %s cold requests (max over rounds)" % f(n), f(u), f(un) + " (nginx)", f(u), "1", eq(u, 1))
s, sn = num("coalescing.cacheproxy.spread_ms"), num("coalescing.nginx.spread_ms")
row("3 coalescing", "last waiter answered after the fill (median)", f(s, "%.2f ms"), f(sn, "%.2f ms") + " (nginx)", f(s, "%.2f ms"), "<= 1 ms", le(s, 1.0))
ok = num("coalescing.cacheproxy.ok_min")
row("3 coalescing", "answered 200 (min over rounds)", f(ok), f(num("coalescing.nginx.ok_min")) + " (nginx)", f(ok), f(n), eq(ok, n))
fl, nx = num("seed_ab.failed"), num("seed_ab.non2xx")
fails = None if fl is None or nx is None else fl + nx
detail = r.get("seed_ab.failed_detail", "?")
row("4 seed ab", "failed + non-2xx of %s" % f(num("seed_ab.requests")), f(fails), "-",
    f(fails) + ("" if detail == "(none)" else " " + detail), "0", eq(fails, 0))
u = num("seed_ab.upstream")
row("4 seed ab", "upstream calls", f(u), "-", f(u), "1", eq(u, 1))
m = num("seed_ab.mean_ms")
row("4 seed ab", "mean time per request", f(m, "%.1f ms"), "-", f(m, "%.1f ms"), "<= 160 ms", le(m, 160))
row("4 seed ab", "p99 (info)", f(num("seed_ab.p99_ms"), "%.0f ms"), "-", "-", "-", None)
h = num("workload.hit_ratio")
row("5 workload", "hit ratio (X-Cache HIT/STALE), %s reads" % f(num("workload.reads")), f(h and h * 100, "%.1f%%"), "-", f(h and h * 100, "%.1f%%"), ">= 90%", ge(h, 0.9))
row("5 workload", "reads without an upstream call", "%s (%s%%)" % (f(num("workload.avoided")), r.get("workload.avoided_pct", "?")), "-", "%s upstream calls" % f(num("workload.upstream_reads")), "-", None)
st = num("workload.stale")
row("5 workload", "stale-after-own-write reads (of %s checked)" % f(num("workload.checked")), f(st), "-", f(st), "0", eq(st, 0))
o = num("memory.overhead_b")
row("6 memory", "overhead per entry (%s entries of 500 B)" % f(num("memory.entries")), f(o, "%.0f B"), "-", "%s B per entry in all" % f(num("memory.per_entry_b")), "<= 300 B", le(o, 300))
for mode, what in (("hit", "hit"), ("pass", "pass-through request")):
    k, kn = "callgrind.%s." % mode, "callgrind.nginx_%s." % mode
    bad = sum(num(x + "failed") or 0 for x in (k, kn))
    note = " (%s failed)" % f(bad) if bad else ""
    vs("7 callgrind", "instructions per %s: PROGRAM TOTALS / %s requests, start-up included%s" % (what, f(num(k + "requests")), note),
       k + "per_request", kn + "per_request", "nginx")
    vs("7 callgrind", "instructions per %s without start-up: (totals - a run without ab) / N" % what,
       k + "per_request_net", kn + "per_request_net", "nginx")

print()
print("## Summary: targets")
print()
print("| scenario | metric | cacheproxy | compared with | ratio / value | target | verdict |")
print("|---|---|---:|---:|---:|---:|---|")
print("\n".join(rows))
PY
{
  echo
  echo "- finished: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | emit

if [[ -n "$OUT" ]]; then
  cp "$REPORT" "$OUT" && say "report written to $OUT"
fi
exit "$status"
