"""Issue 13 #2: long-lived responses must not starve other requests. 50 event
streams are open (50 users with the terminal open); an unrelated request must
still be answered at once."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from clients import local_connector, sse_events

STREAMS = 50


async def streams_then_request(base: str):
    """Opens STREAMS event streams, waits for each one's first event, then times GET /whoami."""
    async with aiohttp.ClientSession(connector=local_connector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as s:
        opened = asyncio.Event()
        counts = [0] * STREAMS

        async def stream(i):
            async with s.get(base + "/events?ms=200") as r:
                if r.status != 200:
                    counts[i] = -r.status
                    return
                async for _ in r.content.iter_any():
                    counts[i] += 1
                    if all(c != 0 for c in counts):
                        opened.set()
                    await asyncio.sleep(0)

        tasks = [asyncio.create_task(stream(i)) for i in range(STREAMS)]
        try:
            try:
                await asyncio.wait_for(opened.wait(), 15)
            except asyncio.TimeoutError:
                pass
            refused = [c for c in counts if c < 0]
            silent = sum(1 for c in counts if c == 0)
            async with aiohttp.ClientSession(connector=local_connector()) as other:
                t = time.monotonic()
                try:
                    async with other.get(base + "/whoami", timeout=aiohttp.ClientTimeout(total=10)) as r:
                        status, body = r.status, await r.read()
                except asyncio.TimeoutError:
                    status, body = None, b"timeout after 10 s"
                took = time.monotonic() - t
            still_open = sum(1 for t in tasks if not t.done())
            return {"refused": refused, "silent": silent, "status": status, "body": body[:200],
                    "seconds": took, "still_open": still_open}
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("target", [
    "direct",
    "proxy",
])
def test_unrelated_request_answers_while_50_streams_are_open(app, make_proxy, target):
    base = app.url if target == "direct" else make_proxy().url  # shipped pool settings
    r = asyncio.run(streams_then_request(base))
    assert r["refused"] == [] and r["silent"] == 0, r
    assert r["status"] == 200, r
    assert r["seconds"] < 2.0, r
    assert r["still_open"] == STREAMS, r


@pytest.mark.parametrize("target", ["direct", "proxy"])
def test_a_stream_ends_upstream_when_the_client_leaves(app, make_proxy, target):
    """After a client drops its event stream, the app's generator is cancelled (no leak of
    upstream connections): 20 open-and-drop rounds, then a request is answered at once."""
    base = app.url if target == "direct" else make_proxy({"upstream": {"max_connections": 8}}).url

    async def run():
        for _ in range(20):
            async with aiohttp.ClientSession(connector=local_connector()) as s:
                evs = await sse_events(s, base + "/events?ms=50", 2, timeout=5)
                assert len(evs) == 2
        async with aiohttp.ClientSession(connector=local_connector()) as s:
            t = time.monotonic()
            async with s.get(base + "/whoami", timeout=aiohttp.ClientTimeout(total=10)) as r:
                return r.status, time.monotonic() - t

    status, secs = asyncio.run(run())
    assert status == 200 and secs < 2.0
