"""A FastAPI app with the shapes a trading webapp's frontend uses (issue 13).

Run under Debian's uvicorn (/usr/bin/python3, python3-fastapi, python3-uvicorn),
with the flags deploy/README.md gives; serve.py does that on a port chosen at
run time. Environment (all optional):

  WEBAPP_CORS_ORIGINS   comma-separated origins CORSMiddleware allows
                        (default: https://terminal.example)
  WEBAPP_BIG_MB         size of the generated download file in MB (default 50)
  WEBAPP_TICKER_DELAY   seconds the ticker route "calls the exchange" (default 0.05)

Routes (there is deliberately no /health):

  /static/...           index.html, app.js, style.css, browser.html, browser.js
  /download/big         the generated binary (FileResponse: Content-Length, ETag)
  /download/stream?mb=N a generated body of N MB, chunked (no Content-Length)
  /download/info        size and sha256 of /download/big and of the stream's bytes
  POST /upload          multipart, field "file": {"bytes", "sha256", "filename"}
  POST /upload/raw      any body, read as a stream: {"bytes", "sha256", "chunked"}
  /ws/echo              WebSocket: every text/binary message is sent back
  /ws/ticks?n=N&ms=M    WebSocket: N ticks, one every M ms, then close (1000)
  /events?ms=M          Server-Sent Events, one every M ms (100), endless
  /events/quiet?gap=S&n=N  SSE: an event, then silence for S s, N times, then end
  /api/trading/ticker?symbol=S  legacy ticker shape (cached by rules/trading.yaml)
  POST /api/trading/order       legacy order answer (a watched write)
  /cookies/set?name=&value=     Set-Cookie;  /cookies/echo: the cookies received
  /redirect             307 to an absolute URL built from request.url (/whoami)
  /whoami               what the app sees: request.client, scheme, url, headers
  /slow?s=N             answers after N s (await asyncio.sleep)
  /block?s=N            blocks the event loop for N s (time.sleep in async def)
  /counters             how many times each route was called (for the tests)
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI, File, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
CHUNK = 64 * 1024

app = FastAPI(title="cacheproxy webapp test app", docs_url=None, redoc_url=None, openapi_url=None)

origins = [o.strip() for o in os.environ.get("WEBAPP_CORS_ORIGINS", "https://terminal.example").split(",") if o.strip()]
app.add_middleware(
    CORSMiddleware,
    allow_origins=origins,
    allow_credentials=True,
    allow_methods=["GET", "POST", "PUT", "DELETE"],
    allow_headers=["Authorization", "Content-Type"],
)

app.mount("/static", StaticFiles(directory=STATIC_DIR, html=True), name="static")

counters: collections.Counter[str] = collections.Counter()
state: dict[str, object] = {}


def stream_block(i: int) -> bytes:
    """The i-th 64 KiB block of /download/stream: deterministic, not compressible."""
    return random.Random(i).randbytes(CHUNK)


@app.on_event("startup")
def make_big_file() -> None:
    """The big download, generated at start into a temp dir (never committed)."""
    mb = int(os.environ.get("WEBAPP_BIG_MB", "50"))
    tmp = Path(tempfile.mkdtemp(prefix="webapp-files-"))
    path = tmp / "big.bin"
    digest = hashlib.sha256()
    rng = random.Random(13)
    remaining = mb * 1000 * 1000
    with path.open("wb") as f:
        while remaining > 0:
            block = rng.randbytes(min(remaining, 1 << 20))
            f.write(block)
            digest.update(block)
            remaining -= len(block)
    state.update(tmp=tmp, big=path, big_size=mb * 1000 * 1000, big_sha256=digest.hexdigest())


@app.on_event("shutdown")
def remove_big_file() -> None:
    tmp = state.get("tmp")
    if isinstance(tmp, Path):
        shutil.rmtree(tmp, ignore_errors=True)


class CountCalls:
    """Plain ASGI middleware (BaseHTTPMiddleware would re-buffer every stream)."""

    def __init__(self, app):
        self.inner = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            counters[scope["path"]] += 1
        await self.inner(scope, receive, send)


app.add_middleware(CountCalls)


# ------------------------------------------------------------------ downloads

@app.get("/download/big")
async def download_big():
    return FileResponse(state["big"], media_type="application/octet-stream", filename="big.bin")


@app.get("/download/stream")
async def download_stream(mb: int = 50):
    total = mb * 1000 * 1000

    async def gen():
        sent, i = 0, 0
        while sent < total:
            block = stream_block(i)[: total - sent]
            sent += len(block)
            i += 1
            yield block

    return StreamingResponse(gen(), media_type="application/octet-stream")


@app.get("/download/info")
async def download_info(mb: int = 50):
    digest = hashlib.sha256()
    total, i = mb * 1000 * 1000, 0
    while total > 0:
        block = stream_block(i)[:total]
        digest.update(block)
        total -= len(block)
        i += 1
    return {"big_bytes": state["big_size"], "big_sha256": state["big_sha256"],
            "stream_mb": mb, "stream_sha256": digest.hexdigest()}


# -------------------------------------------------------------------- uploads

@app.post("/upload")
async def upload(file: UploadFile = File(...)):
    digest, n = hashlib.sha256(), 0
    while True:
        block = await file.read(CHUNK)
        if not block:
            break
        digest.update(block)
        n += len(block)
    return {"bytes": n, "sha256": digest.hexdigest(), "filename": file.filename}


@app.post("/upload/raw")
async def upload_raw(request: Request):
    digest, n = hashlib.sha256(), 0
    async for block in request.stream():
        digest.update(block)
        n += len(block)
    return {"bytes": n, "sha256": digest.hexdigest(),
            "chunked": "chunked" in request.headers.get("transfer-encoding", "").lower(),
            "content_length": request.headers.get("content-length")}


# ----------------------------------------------------------------- WebSockets

@app.websocket("/ws/echo")
async def ws_echo(ws: WebSocket):
    await ws.accept()
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") is not None:
                await ws.send_text(msg["text"])
            elif msg.get("bytes") is not None:
                await ws.send_bytes(msg["bytes"])
    except WebSocketDisconnect:
        return


@app.websocket("/ws/ticks")
async def ws_ticks(ws: WebSocket, n: int = 10, ms: int = 100):
    await ws.accept()
    try:
        for i in range(max(0, min(n, 100000))):
            await ws.send_json({"seq": i, "symbol": "BTCUSDT", "last": 97000.0 + i, "ts": time.time()})
            await asyncio.sleep(ms / 1000)
        await ws.close(code=1000)
    except WebSocketDisconnect:
        return


# ------------------------------------------------------------- event streams

@app.get("/events")
async def events(ms: int = 100):
    async def gen():
        i = 0
        while True:  # endless: Starlette cancels it when the client leaves
            yield f"id: {i}\nevent: tick\ndata: {{\"seq\": {i}, \"ts\": {time.time():.3f}}}\n\n"
            i += 1
            await asyncio.sleep(ms / 1000)

    return StreamingResponse(gen(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@app.get("/events/quiet")
async def events_quiet(gap: float = 35.0, n: int = 2):
    async def gen():
        for i in range(n):
            if i:
                await asyncio.sleep(gap)
            yield f"id: {i}\ndata: {{\"seq\": {i}, \"ts\": {time.time():.3f}}}\n\n"

    return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# ----------------------------------------------------------- trading API shape

@app.get("/api/trading/ticker")
async def ticker(symbol: str = "BTCUSDT"):
    await asyncio.sleep(float(os.environ.get("WEBAPP_TICKER_DELAY", "0.05")))
    seq = counters["/api/trading/ticker"]
    last = 97123.5 + seq
    return {"symbol": symbol, "last": last, "bid": last - 0.1, "ask": last + 0.1, "ts": time.time(), "seq": seq}


@app.post("/api/trading/order")
async def order(request: Request):
    body = await request.body()
    return {"success": True, "order_id": f"o-{counters['/api/trading/order']}", "bytes": len(body)}


# ------------------------------------------------- cookies, redirects, whoami

@app.get("/cookies/set")
async def cookies_set(name: str = "session", value: str = "abc123"):
    resp = JSONResponse({"set": {name: value}})
    resp.set_cookie(name, value, httponly=True, samesite="lax", path="/")
    return resp


@app.get("/cookies/echo")
async def cookies_echo(request: Request):
    return {"cookies": dict(request.cookies)}


@app.get("/redirect")
async def redirect(request: Request, to: str = "/whoami"):
    # Absolute, from what the app believes its URL is (scheme + host).
    return RedirectResponse(str(request.url.replace(path=to, query="")), status_code=307)


@app.get("/whoami")
async def whoami(request: Request):
    client = request.client
    return {
        "client": [client.host, client.port] if client else None,
        "scheme": request.url.scheme,
        "url": str(request.url),
        "headers": [[k, v] for k, v in request.headers.items()],
    }


# ------------------------------------------------------------- slow handlers

@app.get("/slow")
async def slow(s: float = 1.0):
    started = time.time()
    await asyncio.sleep(s)
    return {"slept": s, "started": started}


@app.get("/block")
async def block(s: float = 3.0):
    started = time.time()
    time.sleep(s)  # on purpose: blocks the event loop, every other request waits
    return {"blocked": s, "started": started}


@app.get("/counters")
async def get_counters():
    return dict(counters)
