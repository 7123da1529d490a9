"""Client helpers for the webapp tests: curl (subprocess), httpx, aiohttp and the
websockets client, each bounded by a timeout. Headers are compared by lower-case
name; `same_headers` lists the ones that matter for a comparison."""
from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import websockets


# Headers a comparison of direct and proxied answers looks at (framing, Date,
# Server and the proxy's own X-Cache/Age/Cache-Status/Via are compared apart).
MATTER = ("content-type", "content-length", "content-encoding", "etag", "last-modified", "cache-control",
          "location", "set-cookie", "vary", "access-control-allow-origin", "access-control-allow-credentials",
          "content-disposition")


@dataclass
class Resp:
    status: int
    headers: dict = field(default_factory=dict)  # lower-case name -> [values]
    body: bytes = b""
    seconds: float = 0.0

    def h(self, name: str) -> str | None:
        v = self.headers.get(name.lower())
        return ", ".join(v) if v else None

    def json(self):
        return json.loads(self.body)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def headers_of(pairs) -> dict:
    out: dict = {}
    for k, v in pairs:
        out.setdefault(k.lower(), []).append(v)
    return out


def same_headers(a: Resp, b: Resp, names=MATTER, rewrite=None) -> dict:
    """{name: (a's, b's)} for each header in names that differs; rewrite maps b's values first."""
    diff = {}
    for n in names:
        va, vb = a.h(n), b.h(n)
        if rewrite and vb is not None:
            vb = rewrite(vb)
        if va != vb:
            diff[n] = (va, vb)
    return diff


def date_skew(resp: Resp) -> float | None:
    """Seconds between the response's Date and now (None without a Date)."""
    d = resp.h("date")
    if not d:
        return None
    return abs(time.time() - email.utils.parsedate_to_datetime(d).timestamp())


# --------------------------------------------------------------------- curl

def curl(url: str, *args: str, timeout: float = 60.0, client_addr: str | None = None) -> Resp:
    """curl -s, headers of the last response, body, total time; extra curl args as given."""
    with tempfile.TemporaryDirectory() as d:
        hfile, bfile = Path(d) / "h", Path(d) / "b"
        argv = ["curl", "-s", "-S", "--max-time", str(timeout), "-D", str(hfile), "-o", str(bfile),
                "-w", "%{http_code} %{time_total}"]
        if client_addr:
            argv += ["--interface", client_addr]
        argv += [*args, url]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)
        out = p.stdout.split()
        status = int(out[0]) if out and out[0].isdigit() else 0
        if p.returncode != 0 and status == 0:
            raise RuntimeError(f"curl failed ({p.returncode}): {p.stderr.strip()} {' '.join(argv)}")
        raw = hfile.read_text("latin-1") if hfile.exists() else ""
        blocks = [b for b in raw.replace("\r\n", "\n").split("\n\n") if b.strip()]
        pairs = []
        if blocks:
            for line in blocks[-1].split("\n")[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    pairs.append((k.strip(), v.strip()))
        body = bfile.read_bytes() if bfile.exists() else b""
        return Resp(status, headers_of(pairs), body, float(out[1]) if len(out) > 1 else 0.0)


# -------------------------------------------------------------------- httpx

def httpx_client(base: str, client_addr: str | None = None, timeout: float = 20.0, **kw) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=client_addr, verify=kw.pop("verify", True)) if client_addr else None
    return httpx.Client(base_url=base, timeout=timeout, transport=transport, **kw)


def from_httpx(r: httpx.Response, seconds: float = 0.0) -> Resp:
    return Resp(r.status_code, headers_of(r.headers.multi_items()), r.content, seconds)


def get(base: str, path: str, client_addr: str | None = None, **kw) -> Resp:
    headers = kw.pop("headers", None)
    with httpx_client(base, client_addr, **kw) as c:
        t = time.monotonic()
        r = c.get(path, headers=headers)
        return from_httpx(r, time.monotonic() - t)


# ------------------------------------------------------------------ aiohttp

async def sse_events(session: aiohttp.ClientSession, url: str, n: int, timeout: float) -> list[dict]:
    """The first n events' data (JSON) of an event stream; raises on a non-200 or a timeout."""
    events = []
    async with asyncio.timeout(timeout):
        async with session.get(url, headers={"Accept": "text/event-stream"}) as r:
            if r.status != 200:
                raise AssertionError(f"{url}: status {r.status}: {(await r.read())[:200]!r}")
            buf = b""
            async for chunk in r.content.iter_any():
                buf += chunk
                while b"\n\n" in buf:
                    ev, buf = buf.split(b"\n\n", 1)
                    for line in ev.split(b"\n"):
                        if line.startswith(b"data: "):
                            events.append(json.loads(line[6:]))
                    if len(events) >= n:
                        return events
    return events


def local_connector(client_addr: str | None = None, limit: int = 0) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(limit=limit, local_addr=(client_addr, 0) if client_addr else None,
                                force_close=False)


# --------------------------------------------------------------- websockets

async def ws_echo_websockets(url: str, messages: list, timeout: float = 5.0, ssl=None) -> list:
    """Connects with the websockets client, sends each message, returns what came back."""
    back = []
    async with asyncio.timeout(timeout):
        async with websockets.connect(url, ssl=ssl, open_timeout=timeout, close_timeout=2) as ws:
            for m in messages:
                await ws.send(m)
                back.append(await ws.recv())
    return back


async def ws_echo_aiohttp(url: str, messages: list, timeout: float = 5.0) -> list:
    back = []
    async with asyncio.timeout(timeout):
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(url, timeout=timeout, autoping=True) as ws:
                for m in messages:
                    if isinstance(m, bytes):
                        await ws.send_bytes(m)
                    else:
                        await ws.send_str(m)
                    msg = await ws.receive()
                    back.append(msg.data)
    return back
