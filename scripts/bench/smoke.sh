#!/usr/bin/env bash
# Smoke test of the benchmark scripts, for CI: no timing assertions.
#
#   scripts/bench/smoke.sh
#
# Runs every scenario with tiny sizes and checks only that each exited 0 and
# produced its numbers (each BENCH_RESULTS_FILE key below is a number; req/s
# above 0):
#   forwarding.sh --duration 1s --rounds 1
#   hits.sh       --duration 1s --rounds 1          (incl. Varnish and the direct ceiling)
#   hits.sh       --duration 1s --rounds 1 --threads-proxy $(nproc) --nginx-workers auto
#                 --targets cacheproxy,nginx_cache --key-prefix hits_mt   (run_all.sh's 1b)
#   coalescing.sh --requests 100 --rounds 1
#   seed_ab.sh    --requests 200 --latency 0.5
#   workload.sh   --duration 5s --users 100
#   memory.sh     --entries 1000
#   shared_tier.sh --smoke                          (3 instances on one Redis)
#   callgrind.sh  hit 200, pass 200                 (valgrind: instruction counts)
#   callgrind.sh  hit 200 --server nginx, pass 200 --server nginx   (the same for nginx)
# Exits non-zero if a script failed or a number is missing. Takes ~2 min (each
# script bounded at 90 s). Extra environment (CACHEPROXY_BIN, ...) is passed on.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/lib.sh"
OUT=$(mktemp -d /tmp/cacheproxy-bench-smoke.XXXXXX)
bench_driver_init "$OUT"   # on exit: stop the running script ($BENCH_CHILD), remove OUT

# check_keys FILE KEY...: each KEY=VALUE in FILE has a numeric VALUE (".rps" keys: > 0).
check_keys() {
  local file=$1; shift
  local key v ok=0
  for key in "$@"; do
    v=$(awk -F= -v k="$key" '$1 == k {v = $2} END {print v}' "$file")
    if [[ "$v" =~ ^-?[0-9]+(\.[0-9]+)?$ ]] && { [[ "$key" != *.rps ]] || awk -v x="$v" 'BEGIN { exit !(x > 0) }'; }; then
      echo "smoke:   $key = $v"
    else
      echo "smoke: FAIL: no number for $key (got '$v')" >&2
      ok=1
    fi
  done
  return $ok
}

status=0
start=$SECONDS
run() {   # run NAME "ARGS" KEY...
  local name=$1 opts=$2; shift 2
  echo "smoke: $name.sh $opts"
  local results="$OUT/$name.results"
  : >"$results"
  # shellcheck disable=SC2086  # opts split on purpose
  BENCH_RESULTS_FILE="$results" timeout --kill-after=5 90 "$HERE/$name.sh" $opts >"$OUT/$name.md" 2>"$OUT/$name.err" &
  BENCH_CHILD=$!
  wait "$BENCH_CHILD"
  local rc=$?
  BENCH_CHILD=""
  if ((rc != 0)); then
    echo "smoke: FAIL: $name.sh exited $rc; its stderr:" >&2
    tail -30 "$OUT/$name.err" >&2
    status=1
  fi
  check_keys "$results" "$@" || { status=1; cat "$OUT/$name.md" >&2; }
  grep -h -i 'warning' "$OUT/$name.md" | sed "s/^/smoke: $name: /"
}

run forwarding "--duration 1s --rounds 1" \
  forwarding.direct.rps forwarding.cacheproxy.rps forwarding.nginx_proxy.rps forwarding.cacheproxy.p99_ms
run hits "--duration 1s --rounds 1" \
  hits.cacheproxy.rps hits.nginx_cache.rps hits.varnish.rps hits.direct.rps hits.cacheproxy.p99_ms hits.cacheproxy.upstream
run hits "--duration 1s --rounds 1 --threads-proxy $(nproc) --nginx-workers auto --targets cacheproxy,nginx_cache --key-prefix hits_mt" \
  hits_mt.cacheproxy.rps hits_mt.nginx_cache.rps hits_mt.cacheproxy.p99_ms hits_mt.nginx_cache.p99_ms hits_mt.cacheproxy.threads
run coalescing "--requests 100 --rounds 1" \
  coalescing.cacheproxy.upstream_max coalescing.cacheproxy.spread_ms coalescing.nginx.upstream_max coalescing.nginx.spread_ms
run seed_ab "--requests 200 --latency 0.5" \
  seed_ab.failed seed_ab.non2xx seed_ab.mean_ms seed_ab.p99_ms seed_ab.upstream
run workload "--duration 5s --users 100" \
  workload.reads workload.hit_ratio workload.upstream_reads workload.stale
run memory "--entries 1000" \
  memory.rss_before_kb memory.rss_after_kb memory.overhead_b memory.second_pass_hits
run shared_tier "--smoke" \
  shared_tier.ryw.p99_ms shared_tier.ryw.stale shared_tier.strict.rps shared_tier.l1.rps shared_tier.l2hit.l2_hits_per_s shared_tier.cold.upstream_max shared_tier.fault_stop.errors shared_tier.fault_kill.stale
for mode in hit pass; do
  for server in cacheproxy nginx; do
    key=$mode
    [[ $server == nginx ]] && key=nginx_$mode
    run callgrind "$mode 200 --server $server" callgrind.$key.instructions callgrind.$key.per_request \
      callgrind.$key.failed callgrind.$key.per_request_net
  done
done

if ((status == 0)); then
  echo "smoke: OK ($((SECONDS - start)) s)"
else
  echo "smoke: FAILED ($((SECONDS - start)) s)" >&2
fi
exit "$status"
