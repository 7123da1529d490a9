"""Issue 13 #1: WebSockets through the proxy (connect, echo both ways, server push,
close). Direct runs are the baseline: they must pass, or the test app is broken."""
from __future__ import annotations

import asyncio
import json
import os

import pytest
import websockets

from clients import ws_echo_aiohttp, ws_echo_websockets

def targets():
    return [pytest.param("direct", id="direct"), pytest.param("proxy", id="proxy")]


def ws_base(app, proxy, target):
    return (app.url if target == "direct" else proxy.url).replace("http://", "ws://")


MESSAGES = ["hello", "x" * 70000, os.urandom(1024), json.dumps({"op": "subscribe", "symbol": "BTCUSDT"})]


@pytest.mark.parametrize("target", targets())
def test_ws_echo_with_websockets_client(app, proxy, target):
    back = asyncio.run(ws_echo_websockets(ws_base(app, proxy, target) + "/ws/echo", MESSAGES))
    assert back == MESSAGES


@pytest.mark.parametrize("target", targets())
def test_ws_echo_with_aiohttp(app, proxy, target):
    msgs = ["ping", b"\x00\x01binary", "y" * 5000]
    back = asyncio.run(ws_echo_aiohttp(ws_base(app, proxy, target) + "/ws/echo", msgs))
    assert back == msgs


@pytest.mark.parametrize("target", targets())
def test_ws_server_push_and_clean_close(app, proxy, target):
    """/ws/ticks pushes 10 ticks 50 ms apart, then closes with 1000: the close reaches the client."""
    async def run():
        ticks = []
        async with asyncio.timeout(8):
            async with websockets.connect(ws_base(app, proxy, target) + "/ws/ticks?n=10&ms=50") as ws:
                try:
                    while True:
                        ticks.append(json.loads(await ws.recv()))
                except websockets.ConnectionClosedOK as e:
                    return ticks, e.rcvd.code if e.rcvd else None
        return ticks, None

    ticks, code = asyncio.run(run())
    assert [t["seq"] for t in ticks] == list(range(10))
    assert code == 1000


@pytest.mark.parametrize("target", targets())
def test_ws_client_close_reaches_the_app(app, proxy, target):
    """Close from the client side: the echo handler returns, and a new socket works at once."""
    async def run():
        async with asyncio.timeout(8):
            ws = await websockets.connect(ws_base(app, proxy, target) + "/ws/echo")
            await ws.send("bye")
            assert await ws.recv() == "bye"
            await ws.close(code=1000, reason="done")
            assert ws.close_code == 1000
            return await ws_echo_websockets(ws_base(app, proxy, target) + "/ws/echo", ["again"])

    assert asyncio.run(run()) == ["again"]
