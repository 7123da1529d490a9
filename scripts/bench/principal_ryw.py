#!/usr/bin/env python3
"""Two-token read-your-writes under load (scripts/bench/principal.sh).

Tokens "user1" (A) and "phone-1" (B) are the same simulator user. Background
threads read positions, balance and orders through A, B and other users
(hits, and fills in flight at every order). The main loop places an order for
a fresh symbol through A and, right after its answer, reads positions through
B (and A): the symbol must be there. Bounded by --orders and --seconds.

    principal_ryw.py --port PROXY [--orders 100] [--seconds 60] [--readers 4]
"""
import argparse
import http.client
import json
import sys
import threading
import time

Q = "?exchange=bybit&account_type=demo"


def conn(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def get(c, path, token):
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    return r.status, r.getheader("X-Cache", ""), r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--orders", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--readers", type=int, default=4)
    a = ap.parse_args()
    stop = threading.Event()
    load = {"reads": 0, "hits": 0, "errors": 0}
    lock = threading.Lock()

    def reader(n):
        tokens = ["user1", "phone-1", "user%d" % (n + 2)]
        paths = ["/api/trading/positions" + Q, "/api/trading/balance" + Q, "/api/trading/orders" + Q]
        c = conn(a.port)
        i = 0
        deadline = time.monotonic() + a.seconds + 5
        while not stop.is_set() and time.monotonic() < deadline:
            i += 1
            try:
                s, x, _ = get(c, paths[i % 3], tokens[i % 3])
                with lock:
                    load["reads"] += 1
                    load["hits"] += x == "HIT"
            except Exception:
                with lock:
                    load["errors"] += 1
                c.close()
                c = conn(a.port)

    # A terminal reads before it trades: one read through each token names its user.
    warm = conn(a.port)
    for token in ("user1", "phone-1"):
        get(warm, "/api/trading/balance" + Q, token)
    warm.close()
    threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(a.readers)]
    for t in threads:
        t.start()
    main_c = conn(a.port)
    checked = stale = orders = failed = 0
    t0 = time.monotonic()
    for i in range(a.orders):
        if time.monotonic() - t0 > a.seconds:
            break
        sym = "RYW%dUSDT" % i
        body = json.dumps({"exchange": "bybit", "account_type": "demo", "symbol": sym, "side": "Buy", "qty": 1})
        main_c.request("POST", "/api/trading/order", body=body,
                       headers={"Authorization": "Bearer user1", "Content-Type": "application/json"})
        r = main_c.getresponse()
        answer = r.read()
        if r.status != 200 or not json.loads(answer).get("success"):
            failed += 1
            continue
        orders += 1
        for token in ("phone-1", "user1"):
            s, x, b = get(main_c, "/api/trading/positions" + Q, token)
            checked += 1
            if s != 200 or sym.encode() not in b:
                stale += 1
    stop.set()
    for t in threads:
        t.join(timeout=15)
    took = time.monotonic() - t0
    print("two-token read-your-writes: %d orders through token A in %.1f s; reads checked right after "
          "(token B, then A): %d; stale reads: %d; failed orders: %d" % (orders, took, checked, stale, failed))
    print("background load: %d reads (%.0f/s), %d hits, %d errors, %d reader threads"
          % (load["reads"], load["reads"] / took, load["hits"], load["errors"], a.readers))
    return 0 if stale == 0 and orders > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
