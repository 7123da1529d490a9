#!/usr/bin/python3
"""Helpers for scripts/bench/webapp.sh (Debian's /usr/bin/python3). Each prints one line:
figures, or "failed: REASON" (exit 1). Every loop is bounded in count and time.

  bench_client.py config APP_PORT LISTEN_PORT ADMIN_PORT OUT [--trusted]
        the shipped config/cacheproxy.yaml pointed at the app, health check off
        (issue 13 #3 would make every request a 502), server.trusted_proxies:
        [127.0.0.1] with --trusted when the binary knows it
  bench_client.py ws-rtt URL N            "P50_MS P99_MS" of N echo round trips (64 B)
  bench_client.py hold-streams URL N FILE SECONDS
        opens N event streams, writes "opened=O failed=F [reason]" to FILE once
        each has its first event (or after 30 s), holds them for SECONDS at most
  bench_client.py page-load BASE ROUNDS   median ms of a page load: index.html, then
        app.js and style.css on two more connections at once (as a browser does)
"""
from __future__ import annotations

import asyncio
import http.client
import statistics
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))


def fail(reason: str) -> None:
    print(f"failed: {reason}")
    sys.exit(1)


def cmd_config(args):
    import yaml

    import harness
    app_port, listen, admin, out = int(args[0]), int(args[1]), int(args[2]), Path(args[3])
    over = {"upstream": {"health": {"path": ""}}}
    cfg = harness.proxy_config(app_port, listen, admin, harness.SHIPPED_RULES, over)
    cfg["logging"]["level"] = "warn"
    cfg["logging"]["access_log"] = False
    if "--trusted" in args:
        trial = harness.deep_merge(cfg, {"server": {"trusted_proxies": ["127.0.0.1"]}})
        out.write_text(yaml.safe_dump(trial, sort_keys=False))
        if harness.check_config(out).returncode == 0:
            print("trusted_proxies: [127.0.0.1]")
            return
        print("trusted_proxies: not supported by this binary")
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))


def cmd_ws_rtt(args):
    import websockets
    url, n = args[0], int(args[1])

    async def run():
        rtts = []
        async with asyncio.timeout(120):
            async with websockets.connect(url, open_timeout=10, max_size=None) as ws:
                msg = "x" * 64
                for i in range(50 + n):  # 50 warm-up round trips
                    t = time.perf_counter()
                    await ws.send(msg)
                    if await ws.recv() != msg:
                        raise RuntimeError("echo differs")
                    if i >= 50:
                        rtts.append((time.perf_counter() - t) * 1000)
        return rtts

    try:
        rtts = sorted(asyncio.run(run()))
    except Exception as e:  # the figure is the failure
        fail(f"{type(e).__name__}: {str(e)[:120]}")
    print(f"{rtts[len(rtts) // 2]:.3f} {rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]:.3f}")


def cmd_hold_streams(args):
    import aiohttp
    url, n, status_file, hold = args[0], int(args[1]), Path(args[2]), float(args[3])

    async def run():
        got = [0] * n
        errors = []
        ready = asyncio.Event()

        async def one(session, i):
            try:
                async with session.get(url) as r:
                    if r.status != 200:
                        errors.append(f"status {r.status}")
                        got[i] = -1
                        return
                    async for _ in r.content.iter_any():
                        if got[i] == 0:
                            got[i] = 1
                            if all(g != 0 for g in got):
                                ready.set()
            except Exception as e:
                errors.append(type(e).__name__)
                got[i] = -1
                if all(g != 0 for g in got):
                    ready.set()

        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
            tasks = [asyncio.create_task(one(s, i)) for i in range(n)]
            try:
                await asyncio.wait_for(ready.wait(), 30)
            except asyncio.TimeoutError:
                pass
            opened = sum(1 for g in got if g == 1)
            reason = f" ({', '.join(sorted(set(errors))[:3])})" if errors else ""
            status_file.write_text(f"opened={opened} failed={n - opened}{reason}\n")
            await asyncio.sleep(hold)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


def fetch(host, port, path, timeout=10.0):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Accept-Encoding": "gzip"})
        r = c.getresponse()
        body = r.read()
        return r.status, len(body)
    finally:
        c.close()


def cmd_page_load(args):
    from urllib.parse import urlsplit
    base, rounds = urlsplit(args[0]), int(args[1])
    host, port = base.hostname, base.port
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        try:
            status, _ = fetch(host, port, "/static/index.html")
            results = {}

            def sub(p):
                try:
                    results[p] = fetch(host, port, p)[0]
                except Exception as e:
                    results[p] = type(e).__name__

            th = [threading.Thread(target=sub, args=(p,)) for p in ("/static/app.js", "/static/style.css")]
            for x in th:
                x.start()
            for x in th:
                x.join(15)
        except Exception as e:
            fail(f"{type(e).__name__}: {str(e)[:100]}")
        bad = [f"{p} {s}" for p, s in results.items() if s != 200]
        if status != 200 or bad or len(results) != 2:
            fail(f"index.html {status}; " + ", ".join(bad or ["a static file did not answer"]))
        times.append((time.perf_counter() - t) * 1000)
        time.sleep(0.2)
    print(f"{statistics.median(times):.1f}")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    cmds = {"config": cmd_config, "ws-rtt": cmd_ws_rtt, "hold-streams": cmd_hold_streams, "page-load": cmd_page_load}
    if sys.argv[1] not in cmds:
        print(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
