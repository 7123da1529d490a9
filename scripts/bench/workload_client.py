#!/usr/bin/env python3
"""A seed-shaped load: many users polling balance / positions / ticker, a few orders.

    workload_client.py --url http://127.0.0.1:PORT [--users 1000] [--zipf 1.1]
        [--duration 60] [--concurrency 64] [--order-pct 2]
        [--weights balance=35,positions=35,ticker=30] [--seed 1]

Used by workload.sh. Python 3 standard library only (asyncio, raw HTTP/1.1 on
keep-alive connections).

--concurrency workers each keep one connection open and run one operation
after another until --duration seconds have passed (so at most that many
requests are in flight). An operation picks a user by Zipf (rank k has weight
1 / k^s; "Bearer user<k>", user1 the busiest), then:
  * with probability --order-pct %: POST /api/trading/order for that user,
    {"exchange":"bybit","account_type":"demo","symbol":"WL<k>USDT",
     "side":"Buy","qty":1,"type":"market"} - a market buy of 1 on a symbol
    only this user trades, so its LONG position's size is exactly the number
    of that user's orders the exchange has applied;
  * else a read, the route picked by --weights:
      balance    GET /api/trading/balance?exchange=bybit&account_type=demo
      positions  GET /api/trading/positions?exchange=bybit&account_type=demo
      ticker     GET /api/trading/ticker?symbol=S   (S: one of 10 symbols, Zipf)

Read-your-writes check. For each user the client remembers when each of its
orders was answered {"success": true} (the whole response read). A positions
read of that user *sent* after the n-th such answer must show a WL<k>USDT
LONG of size >= n; if not it is counted as stale-after-own-write (with the
first few printed on stderr). Orders only ever add to that position and
nothing closes it, so a correct cache can never fail this; a read started
before the order's answer is never checked against it.

Prints one JSON object on stdout: duration_s, ops, reads, reads_by_route,
x_cache {route: {value: n}} (a MISS whose Cache-Status says "collapsed" is
counted as "MISS (collapsed)"), hits (HIT + STALE), hit_ratio,
hit_ratio_second_half (reads sent in the second half of the run), orders_ok,
orders_failed, stale_after_own_write, checked_reads (positions reads that had
at least one order to reflect), errors, non200, latency_ms {hit|miss: p50, p99},
distinct_user_keys_read, miss_causes: the balance / positions reads that were
not hits: collapsed (waited for a fill another request had started), else by
what preceded them: first_read_of_key (first read of that user's key in the
run), own_order_since_last_read (an order of that user was answered since
the key's previous read: invalidated), other (TTL expiry or LRU eviction).
"""

import argparse
import asyncio
import bisect
import json
import random
import sys
import time

EXCHANGE_Q = "exchange=bybit&account_type=demo"
TICKER_SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT",
                  "ADAUSDT", "BNBUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT"]


def zipf_cdf(n, s):
    w = [1.0 / (k ** s) for k in range(1, n + 1)]
    total = sum(w)
    acc, cdf = 0.0, []
    for x in w:
        acc += x
        cdf.append(acc / total)
    cdf[-1] = 1.0
    return cdf


class Stats:
    def __init__(self):
        self.reads = {}
        self.x_cache = {}
        self.orders_ok = 0
        self.orders_failed = 0
        self.stale = 0
        self.stale_examples = []
        self.checked = 0
        self.errors = 0
        self.error_examples = []
        self.non200 = 0
        self.lat = {"hit": [], "miss": []}
        self.late_reads = 0   # reads sent in the second half of the run
        self.last_read = {}   # (route, user) -> when the last read of that key was sent
        self.miss_causes = {"collapsed": 0, "first_read_of_key": 0, "own_order_since_last_read": 0, "other": 0}
        self.late_hits = 0

    def error(self, what):
        self.errors += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(what)


class Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None

    async def request(self, raw):
        """Sends raw request bytes; returns (status, headers dict, body bytes)."""
        if self.w is None:
            await self.open()
        self.w.write(raw)
        head = await self.r.readuntil(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size_line = await self.r.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    await self.r.readuntil(b"\r\n")   # no trailers expected
                    break
                body += await self.r.readexactly(size)
                await self.r.readexactly(2)
            body = bytes(body)
        else:
            body = await self.r.readexactly(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, body


async def worker(conn, a, rng, cdf, sym_cdf, routes, route_cdf, st, confirmed, order_seq, deadline, half):
    hostport = "%s:%d" % (conn.host, conn.port)
    while time.monotonic() < deadline:
        k = bisect.bisect_left(cdf, rng.random()) + 1
        auth = "Authorization: Bearer user%d\r\n" % k
        try:
            if rng.random() * 100.0 < a.order_pct:
                order_seq[k] = order_seq.get(k, 0) + 1
                body = json.dumps({"exchange": "bybit", "account_type": "demo", "symbol": "WL%dUSDT" % k,
                                   "side": "Buy", "qty": 1, "type": "market"}).encode()
                raw = ("POST /api/trading/order HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n" % (hostport, auth, len(body))).encode() + body
                status, _h, rbody = await conn.request(raw)
                ok = False
                if status == 200:
                    try:
                        ok = json.loads(rbody).get("success") is True
                    except ValueError:
                        ok = False
                if ok:
                    st.orders_ok += 1
                    confirmed.setdefault(k, []).append(time.monotonic())
                else:
                    st.orders_failed += 1
                continue
            route = routes[bisect.bisect_left(route_cdf, rng.random())]
            if route == "ticker":
                sym = TICKER_SYMBOLS[bisect.bisect_left(sym_cdf, rng.random())]
                target = "/api/trading/ticker?symbol=" + sym
            else:
                target = "/api/trading/%s?%s" % (route, EXCHANGE_Q)
            raw = ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, hostport, auth)).encode()
            t0 = time.monotonic()
            status, hdrs, body = await conn.request(raw)
            t1 = time.monotonic()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as e:
            st.error("%s: %r" % (type(e).__name__, e))
            conn.close()
            await asyncio.sleep(0.01)
            continue
        st.reads[route] = st.reads.get(route, 0) + 1
        xc = hdrs.get("x-cache", "-")
        if xc == "MISS" and "collapsed" in hdrs.get("cache-status", ""):
            xc = "MISS (collapsed)"   # waited for another request's fill: no upstream call of its own
        per = st.x_cache.setdefault(route, {})
        per[xc] = per.get(xc, 0) + 1
        hit = xc in ("HIT", "STALE")
        if route != "ticker":
            key = (route, k)
            prev = st.last_read.get(key)
            st.last_read[key] = t0
            if not hit:
                times = confirmed.get(k)
                if xc == "MISS (collapsed)":
                    st.miss_causes["collapsed"] += 1
                elif prev is None:
                    st.miss_causes["first_read_of_key"] += 1
                elif times and times[-1] > prev:
                    st.miss_causes["own_order_since_last_read"] += 1
                else:
                    st.miss_causes["other"] += 1
        st.lat["hit" if hit else "miss"].append((t1 - t0) * 1000.0)
        if t0 >= half:
            st.late_reads += 1
            st.late_hits += hit
        if status != 200:
            st.non200 += 1
            continue
        if route == "positions":
            times = confirmed.get(k)
            if times:
                need = bisect.bisect_left(times, t0)   # orders answered before this read was sent
                if need:
                    st.checked += 1
                    size = 0.0
                    try:
                        for p in json.loads(body).get("positions", []):
                            if p.get("symbol") == "WL%dUSDT" % k and p.get("side") == "LONG":
                                size += float(p.get("size", 0))
                    except ValueError:
                        size = -1.0
                    if size < need - 0.5:
                        st.stale += 1
                        if len(st.stale_examples) < 5:
                            st.stale_examples.append({"user": k, "orders_answered_before_read": need,
                                                      "size_seen": size, "x_cache": xc})


def pct(v, q):
    if not v:
        return None
    v = sorted(v)
    return round(v[min(len(v) - 1, int(q * len(v)))], 3)


async def main_async(a):
    from urllib.parse import urlsplit
    u = urlsplit(a.url)
    host, port = u.hostname, u.port or 80
    rng = random.Random(a.seed)
    cdf = zipf_cdf(a.users, a.zipf)
    sym_cdf = zipf_cdf(len(TICKER_SYMBOLS), a.zipf)
    weights = {}
    for part in a.weights.split(","):
        name, _, w = part.partition("=")
        if name not in ("balance", "positions", "ticker"):
            raise SystemExit("--weights: unknown route %r" % name)
        weights[name] = float(w)
    routes = list(weights)
    total = sum(weights.values())
    route_cdf, acc = [], 0.0
    for r in routes:
        acc += weights[r] / total
        route_cdf.append(acc)
    route_cdf[-1] = 1.0
    st = Stats()
    confirmed, order_seq = {}, {}
    conns = [Conn(host, port) for _ in range(a.concurrency)]
    for c in conns:
        await c.open()
    start = time.monotonic()
    deadline = start + a.duration
    await asyncio.gather(*(worker(c, a, random.Random(rng.random()), cdf, sym_cdf, routes, route_cdf,
                                  st, confirmed, order_seq, deadline, start + a.duration / 2)
                           for c in conns))
    elapsed = time.monotonic() - start
    for c in conns:
        c.close()
    reads = sum(st.reads.values())
    hits = sum(n for per in st.x_cache.values() for v, n in per.items() if v in ("HIT", "STALE"))
    for ex in st.stale_examples:
        print("stale-after-own-write: %s" % json.dumps(ex), file=sys.stderr)
    for ex in st.error_examples:
        print("error: %s" % ex, file=sys.stderr)
    return {
        "duration_s": round(elapsed, 2),
        "ops": reads + st.orders_ok + st.orders_failed,
        "reads": reads,
        "reads_by_route": st.reads,
        "x_cache": st.x_cache,
        "hits": hits,
        "hit_ratio": round(hits / reads, 4) if reads else None,
        "hit_ratio_second_half": round(st.late_hits / st.late_reads, 4) if st.late_reads else None,
        "orders_ok": st.orders_ok,
        "orders_failed": st.orders_failed,
        "stale_after_own_write": st.stale,
        "checked_reads": st.checked,
        "errors": st.errors,
        "non200": st.non200,
        "latency_ms": {k: {"n": len(v), "p50": pct(v, 0.5), "p99": pct(v, 0.99)} for k, v in st.lat.items()},
        "users_with_orders": len(confirmed),
        "distinct_user_keys_read": len(st.last_read),
        "miss_causes": st.miss_causes,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--order-pct", type=float, default=2.0)
    ap.add_argument("--weights", default="balance=35,positions=35,ticker=30")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(json.dumps(asyncio.run(main_async(a))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
