"""Headless Chromium driven over the DevTools protocol (websockets client): load a
page, wait in real time until it says it is done, return its DOM.

`--dump-dom --virtual-time-budget` was tried first: virtual time does not wait
for a WebSocket, so the page's own 8 s timeouts could fire before a real echo
arrived (seen: "timeout after 8000 ms" on a direct, working socket).
"""
from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.request
from pathlib import Path

import websockets

from harness import Proc, wait_until


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_argv(chromium: str, profile: Path) -> list:
    # The flags of the machine notes: without the background-networking ones Chromium
    # tries to reach Google's hosts, which this closed network refuses.
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"]


async def _session(ws_url: str, url: str, done_js: str, timeout: float) -> str:
    async with websockets.connect(ws_url, max_size=None, open_timeout=10) as ws:
        ids = iter(range(1, 1_000_000))

        async def call(method, **params):
            mid = next(ids)
            await ws.send(json.dumps({"id": mid, "method": method, "params": params}))
            while True:  # skip events until our answer
                msg = json.loads(await ws.recv())
                if msg.get("id") == mid:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result", {})

        async def value(expr):
            r = await call("Runtime.evaluate", expression=expr, returnByValue=True)
            return r.get("result", {}).get("value")

        await call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await value(done_js):
                break
            await asyncio.sleep(0.2)
        return await value("document.documentElement.outerHTML") or ""


def load_page(url: str, workdir: Path, done_js: str, timeout: float = 30.0) -> str:
    """The page's DOM once done_js is truthy (or after timeout s)."""
    chromium = chromium_path()
    if not chromium:
        raise FileNotFoundError("chromium not found")
    profile = Path(workdir) / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    proc = Proc("chromium", chromium_argv(chromium, profile), Path(workdir) / "chromium.log")
    try:
        port_file = profile / "DevToolsActivePort"
        wait_until(lambda: port_file.exists() and len(port_file.read_text().splitlines()) >= 2, 30, 0.1, proc,
                   "chromium's DevToolsActivePort")
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        return asyncio.run(asyncio.wait_for(_session(page["webSocketDebuggerUrl"], url, done_js, timeout),
                                            timeout + 20))
    finally:
        proc.stop()
        shutil.rmtree(profile, ignore_errors=True)
