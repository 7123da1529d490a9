#!/usr/bin/python3
"""legacy_sim.py - a stand-in for the slow legacy FastAPI trading webapp.

Implements the contract in /work/shared/legacy-api.md so the cacheproxy tests
have an upstream they can drive and look into. Single file, single process,
asyncio.  Run it with Debian's interpreter (python3-fastapi / python3-uvicorn):

    /usr/bin/python3 scripts/legacy_sim.py [--host 127.0.0.1] [--port 8765]
        [--latency 3.0] [--gzip] [--positions N] [--keepalive-timeout 5]

Prints "legacy-sim listening on HOST:PORT" (flushed) once the port accepts
connections (--port 0 picks a free port; the line shows the real one).
SIGTERM / SIGINT stop it at once, even with requests in flight.

Legacy routes (per-user ones need "Authorization: Bearer <token>", else 401)
    GET    /api/trading/balance?exchange=E&account_type=A      (latency)
    GET    /api/trading/positions?exchange=E&account_type=A    (latency, snapshot at arrival)
    GET    /api/trading/orders?exchange=E&account_type=A       (latency, snapshot at arrival)
    GET    /api/trading/ticker?symbol=S          no auth       (latency)
    GET    /api/trading/config                                 (0.05 s)
    PUT    /api/trading/config   JSON object merged into settings (0.05 s)
    POST   /api/trading/order    {"exchange","account_type","symbol","side","qty","type","price"?}
    POST   /api/trading/close    {"exchange","account_type","symbol"}
    DELETE /api/trading/order/{id}?exchange=E&account_type=A
    POST   /api/auth/logout      revokes the caller's token -> {"success":true}
    GET    /health                                             (no latency)
A revoked token gets 401 {"detail":"Token revoked"} on every per-user route.

Test controls (no auth, never counted in the stats)
    GET  /__sim/stats      {"requests":{route:n},"total","connections","headers_seen",...}
    POST /__sim/reset      zero counters; ?state=1 also user state;
                           ?faults=1 also latency back to CLI values and no failures;
                           ?all=1 both
    POST /__sim/latency    {"default":0.0,"positions":2.5,...}   seconds per route name
    POST /__sim/fail       {"route":"balance","mode":"500"|"hang"|"none","count":N}
    POST /__sim/positions  {"user":"<token>","exchange","account_type","count":300}
    POST /__sim/revoke     {"token":"<token>"}  the app refuses that token from now on
                           (until /__sim/reset?state=1)

Test helpers (counted as "echo" / "other")
    ANY  /echo/{path}      method, path, raw_query, headers in received order, body_len, body_sha256
    POST /echo_raw         the request body, byte for byte, with the request's content-type
    GET  /bytes?n=N        N deterministic bytes, Content-Length set
    GET  /stream?n=N&chunk=M&delay=S   the same bytes, chunked transfer, text/plain
    GET  /slow?s=X         sleeps X seconds, then {"slept": X}
    Deterministic bytes: byte i = (i * 31 + 7) % 251.

Route names (for stats, latency, fail): balance positions orders ticker config
config_put order close cancel health echo other.
"""

import argparse
import asyncio
import copy
import hashlib
import json
import logging
import re
import sys
import time
import zlib

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.middleware.gzip import GZipMiddleware

ROUTES = ["balance", "positions", "orders", "ticker", "config", "config_put",
          "order", "close", "cancel", "health", "echo", "other"]
EXCHANGE_ROUTES = ["balance", "positions", "orders", "ticker", "order", "close", "cancel"]
CONFIG_LATENCY = 0.05
HANG_SECONDS = 3600.0

BASE_PRICES = {"BTCUSDT": 97000.0, "ETHUSDT": 3400.0, "SOLUSDT": 190.0, "XRPUSDT": 2.2,
               "DOGEUSDT": 0.32, "ADAUSDT": 0.9, "BNBUSDT": 700.0, "AVAXUSDT": 38.0,
               "LINKUSDT": 23.0, "DOTUSDT": 7.1}
SEED_SYMBOLS = list(BASE_PRICES)

# byte i of every deterministic body = (i * 31 + 7) % 251; the pattern repeats every 251 bytes
PATTERN = bytes((i * 31 + 7) % 251 for i in range(251))


# ---------------------------------------------------------------- state

class Sim:
    """Everything mutable: settings from the CLI, counters, faults, user state."""

    def __init__(self, args):
        self.args = args
        self.seq = 0            # global, never reset: bumped on every answered read
        self.next_order = 0     # order ids o-1, o-2, ...
        self.reset_counters()
        self.reset_faults()
        self.reset_state()

    def reset_counters(self):
        self.requests = {r: 0 for r in ROUTES}
        self.total = 0
        self.clients = set()
        self.headers_seen = {}

    def reset_faults(self):
        self.latency = {r: 0.0 for r in ROUTES}
        for r in EXCHANGE_ROUTES:
            self.latency[r] = self.args.latency
        self.latency["config"] = self.latency["config_put"] = CONFIG_LATENCY
        self.fail = {}          # route -> {"mode": "500"|"hang", "count": int|None}

    def reset_state(self):
        self.accounts = {}      # (user_id, exchange, account_type) -> account dict
        self.configs = {}       # user_id -> settings dict
        self.revoked = set()    # tokens the app refuses (logout, /__sim/revoke)

    def next_seq(self):
        self.seq += 1
        return self.seq

    def account(self, user_id, exchange, account_type):
        key = (user_id, exchange, account_type)
        if key not in self.accounts:
            self.accounts[key] = seed_account(user_id, exchange, account_type,
                                              self.args.positions)
        return self.accounts[key]

    def config(self, user_id):
        if user_id not in self.configs:
            self.configs[user_id] = seed_config(user_id)
        return self.configs[user_id]

    def take_fault(self, route):
        """Arrival of a request on `route`: returns "500", "hang" or None."""
        f = self.fail.get(route)
        if not f:
            return None
        if f["count"] is not None:
            f["count"] -= 1
            if f["count"] <= 0:
                del self.fail[route]
        return f["mode"]


SIM = None  # set in main()


# ---------------------------------------------------------------- deterministic data

def det_bytes(offset, n):
    """n deterministic bytes starting at absolute position `offset`."""
    start = offset % 251
    reps = (start + n) // 251 + 1
    return (PATTERN * reps)[start:start + n]


def price_of(symbol):
    if symbol in BASE_PRICES:
        return BASE_PRICES[symbol]
    return float(zlib.crc32(symbol.encode()) % 100000) / 100 + 1.0


def position_symbol(i):
    return SEED_SYMBOLS[i] if i < len(SEED_SYMBOLS) else "ALT%04dUSDT" % i


def gen_positions(user_id, exchange, account_type, count):
    """`count` positions whose content depends only on the arguments."""
    salt = zlib.crc32(("%s/%s" % (exchange, account_type)).encode()) % 1000
    out = []
    for i in range(count):
        symbol = position_symbol(i)
        last = price_of(symbol)
        side = "LONG" if (user_id + i) % 2 == 0 else "SHORT"
        size = round(0.01 * ((user_id * 7 + i * 13 + salt) % 97 + 1), 4)
        entry = round(last * (1 + ((i * 17 + user_id) % 21 - 10) / 1000.0), 6)
        pnl = round(size * (last - entry) * (1 if side == "LONG" else -1), 2)
        out.append({"symbol": symbol, "side": side, "size": size,
                    "entry_price": entry, "unrealized_pnl": pnl})
    return out


def seed_account(user_id, exchange, account_type, n_positions):
    total = round(10000.0 + (user_id % 1000) * 1.25 + (0 if account_type == "demo" else 500), 2)
    return {"total": total, "available": round(total * 0.8, 2),
            "positions": gen_positions(user_id, exchange, account_type, n_positions),
            "orders": []}


def seed_config(user_id):
    return {"exchange": "bybit", "account_type": "demo", "leverage": 10,
            "risk_percent": 1.0, "lang": "en",
            "strategies": {"scalper": {"enabled": True, "tp": 1.5, "sl": 0.8},
                           "swing": {"enabled": user_id % 2 == 0, "tp": 4.0, "sl": 2.0}}}


# ---------------------------------------------------------------- identity, helpers

def user_id_of_token(token):
    m = re.search(r"(\d+)$", token)
    if m:
        return 999000 + int(m.group(1))
    return 999000 + (zlib.crc32(token.encode()) % 100000) + 1000


def require_user(request):
    """user_id from "Authorization: Bearer <token>", or 401."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    if token in SIM.revoked:
        raise HTTPException(401, "Token revoked", headers={"WWW-Authenticate": "Bearer"})
    return user_id_of_token(token)


def bearer_token(request):
    return request.headers.get("authorization", "").partition(" ")[2].strip()


async def latency(route):
    d = SIM.latency.get(route, 0.0)
    if d > 0:
        await asyncio.sleep(d)


async def json_object(request):
    """The body as a JSON object, or 422 like FastAPI's body validation."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise HTTPException(422, [{"loc": ["body"], "msg": "invalid JSON: %s" % e,
                                   "type": "value_error.jsondecode"}])
    if not isinstance(body, dict):
        raise HTTPException(422, [{"loc": ["body"], "msg": "expected a JSON object",
                                   "type": "type_error.dict"}])
    return body


def now():
    return round(time.time(), 3)


def fail(msg):
    return {"success": False, "error": msg}


def classify(method, path):
    """Route name of a request for stats/latency/fail; None for /__sim/ controls."""
    if path.startswith("/__sim/"):
        return None
    read = method == "GET"
    if path == "/health":
        return "health"
    if path.startswith("/echo/") or path == "/echo_raw":
        return "echo"
    if path.startswith("/api/trading/"):
        tail = path[len("/api/trading/"):]
        if read and tail in ("balance", "positions", "orders", "ticker", "config"):
            return tail
        if method == "PUT" and tail == "config":
            return "config_put"
        if method == "POST" and tail in ("order", "close"):
            return tail
        if method == "DELETE" and tail.startswith("order/"):
            return "cancel"
    return "other"


# ---------------------------------------------------------------- counting + faults (pure ASGI)

class Instrument:
    """Outermost layer: counts each request at arrival, then applies /__sim/fail."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = classify(scope["method"], scope["path"])
        if route is None:
            return await self.app(scope, receive, send)
        SIM.requests[route] += 1
        SIM.total += 1
        if scope.get("client"):
            SIM.clients.add(tuple(scope["client"]))
        for name, _ in scope["headers"]:
            n = name.decode("latin-1")
            SIM.headers_seen[n] = SIM.headers_seen.get(n, 0) + 1
        mode = SIM.take_fault(route)
        if mode is None:
            return await self.app(scope, receive, send)
        await drain_body(receive)
        if mode == "hang":
            await hang(receive)
            return
        await latency(route)
        await JSONResponse({"detail": "exchange error"}, status_code=500)(scope, receive, send)


async def drain_body(receive):
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


async def hang(receive):
    """Never answer: return after HANG_SECONDS or as soon as the client goes away."""
    async def disconnected():
        while (await receive())["type"] != "http.disconnect":
            pass
    try:
        await asyncio.wait_for(disconnected(), HANG_SECONDS)
    except asyncio.TimeoutError:
        pass


# ---------------------------------------------------------------- legacy routes

app = FastAPI(title="legacy-sim", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.get("/api/trading/balance")
async def balance(request: Request, exchange: str = "bybit", account_type: str = "demo"):
    uid = require_user(request)
    acc = SIM.account(uid, exchange, account_type)
    body = {"user_id": uid, "exchange": exchange, "account_type": account_type,
            "total": acc["total"], "available": round(acc["available"], 2),
            "currency": "USDT", "ts": now(), "seq": SIM.next_seq()}
    await latency("balance")
    return body


@app.get("/api/trading/positions")
async def positions(request: Request, exchange: str = "bybit", account_type: str = "demo"):
    uid = require_user(request)
    acc = SIM.account(uid, exchange, account_type)
    body = {"user_id": uid, "exchange": exchange, "account_type": account_type,
            "ts": now(), "seq": SIM.next_seq(),
            "positions": copy.deepcopy(acc["positions"])}   # snapshot at arrival
    await latency("positions")
    return body


@app.get("/api/trading/orders")
async def orders(request: Request, exchange: str = "bybit", account_type: str = "demo"):
    uid = require_user(request)
    acc = SIM.account(uid, exchange, account_type)
    body = {"user_id": uid, "exchange": exchange, "account_type": account_type,
            "ts": now(), "seq": SIM.next_seq(),
            "orders": copy.deepcopy(acc["orders"])}         # snapshot at arrival
    await latency("orders")
    return body


@app.get("/api/trading/ticker")
async def ticker(symbol: str = "BTCUSDT"):
    last = price_of(symbol)
    tick = round(last * 0.000001, 8) or 0.00000001
    body = {"symbol": symbol, "last": last, "bid": round(last - tick, 8),
            "ask": round(last + tick, 8), "ts": now(), "seq": SIM.next_seq()}
    await latency("ticker")
    return body


@app.get("/api/trading/config")
async def get_config(request: Request):
    uid = require_user(request)
    body = {"user_id": uid, "settings": copy.deepcopy(SIM.config(uid)), "seq": SIM.next_seq()}
    await latency("config")
    return body


@app.put("/api/trading/config")
async def put_config(request: Request):
    uid = require_user(request)
    changes = await json_object(request)
    await latency("config_put")
    SIM.config(uid).update(changes)
    return {"success": True}


def check_order(body):
    """Error text for an order the exchange rejects, or None."""
    if not body.get("symbol") or not isinstance(body.get("symbol"), str):
        return "missing symbol"
    qty = body.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, (int, float)) or qty <= 0:
        return "qty must be > 0"
    if body.get("side") not in ("Buy", "Sell"):
        return "side must be Buy or Sell"
    if body.get("type", "market") not in ("market", "limit"):
        return "type must be market or limit"
    price = body.get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))
                              or price <= 0):
        return "price must be > 0"
    if body.get("type") == "limit" and price is None:
        return "limit order needs a price"
    return None


def apply_market(acc, symbol, side, qty, price):
    want = "LONG" if side == "Buy" else "SHORT"
    for p in acc["positions"]:
        if p["symbol"] == symbol and p["side"] == want:
            new_size = p["size"] + qty
            p["entry_price"] = round((p["entry_price"] * p["size"] + price * qty) / new_size, 6)
            p["size"] = round(new_size, 8)
            break
    else:
        acc["positions"].append({"symbol": symbol, "side": want, "size": qty,
                                 "entry_price": price, "unrealized_pnl": 0.0})
    acc["available"] -= qty * price


@app.post("/api/trading/order")
async def place_order(request: Request):
    uid = require_user(request)
    body = await json_object(request)
    await latency("order")
    err = check_order(body)
    if err:
        return fail(err)
    acc = SIM.account(uid, body.get("exchange", "bybit"), body.get("account_type", "demo"))
    symbol, side, qty = body["symbol"], body["side"], body["qty"]
    price = float(body.get("price") or price_of(symbol))
    SIM.next_order += 1
    order_id = "o-%d" % SIM.next_order
    if body.get("type", "market") == "limit":
        acc["orders"].append({"order_id": order_id, "symbol": symbol, "side": side,
                              "qty": qty, "price": price, "type": "limit"})
        acc["available"] -= qty * price            # reserved until cancelled
    else:
        apply_market(acc, symbol, side, qty, price)
    return {"success": True, "order_id": order_id, "symbol": symbol, "side": side, "qty": qty}


@app.post("/api/trading/close")
async def close_position(request: Request):
    uid = require_user(request)
    body = await json_object(request)
    await latency("close")
    acc = SIM.account(uid, body.get("exchange", "bybit"), body.get("account_type", "demo"))
    gone = [p for p in acc["positions"] if p["symbol"] == body.get("symbol")]
    if not gone:
        return fail("no position")
    acc["positions"] = [p for p in acc["positions"] if p["symbol"] != body.get("symbol")]
    for p in gone:
        acc["available"] += p["size"] * p["entry_price"]
    return {"success": True}


@app.delete("/api/trading/order/{order_id}")
async def cancel_order(request: Request, order_id: str, exchange: str = "bybit",
                       account_type: str = "demo"):
    uid = require_user(request)
    await latency("cancel")
    acc = SIM.account(uid, exchange, account_type)
    gone = [o for o in acc["orders"] if o["order_id"] == order_id]
    if not gone:
        return fail("no order")
    acc["orders"] = [o for o in acc["orders"] if o["order_id"] != order_id]
    acc["available"] += gone[0]["qty"] * gone[0]["price"]
    return {"success": True, "order_id": order_id}


@app.post("/api/auth/logout")
async def logout(request: Request):
    require_user(request)
    SIM.revoked.add(bearer_token(request))
    return {"success": True}


# ---------------------------------------------------------------- /__sim/ controls

@app.get("/__sim/stats")
async def sim_stats():
    return {"requests": dict(SIM.requests), "total": SIM.total,
            "connections": len(SIM.clients), "headers_seen": dict(SIM.headers_seen),
            "seq": SIM.seq, "latency": dict(SIM.latency), "fail": copy.deepcopy(SIM.fail)}


@app.post("/__sim/reset")
async def sim_reset(state: int = 0, faults: int = 0, all: int = 0):
    SIM.reset_counters()
    if state or all:
        SIM.reset_state()
    if faults or all:
        SIM.reset_faults()
    return {"success": True}


@app.post("/__sim/latency")
async def sim_latency(request: Request):
    body = await json_object(request)
    for name, value in body.items():
        if name != "default" and name not in ROUTES:
            raise HTTPException(400, "unknown route %r" % name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise HTTPException(400, "latency for %r must be a number >= 0" % name)
    if "default" in body:
        for r in EXCHANGE_ROUTES:
            SIM.latency[r] = float(body["default"])
    for name, value in body.items():
        if name != "default":
            SIM.latency[name] = float(value)
    return {"success": True, "latency": dict(SIM.latency)}


@app.post("/__sim/fail")
async def sim_fail(request: Request):
    body = await json_object(request)
    route, mode, count = body.get("route"), str(body.get("mode", "500")), body.get("count")
    if route not in ROUTES:
        raise HTTPException(400, "unknown route %r" % route)
    if mode not in ("500", "hang", "none"):
        raise HTTPException(400, "mode must be 500, hang or none")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise HTTPException(400, "count must be an integer >= 1 or omitted")
    if mode == "none":
        SIM.fail.pop(route, None)
    else:
        SIM.fail[route] = {"mode": mode, "count": count}
    return {"success": True, "fail": copy.deepcopy(SIM.fail)}


@app.post("/__sim/positions")
async def sim_positions(request: Request):
    body = await json_object(request)
    if not isinstance(body.get("user"), str) or not body["user"]:
        raise HTTPException(400, "user (the bearer token) is required")
    count = body.get("count", 300)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise HTTPException(400, "count must be an integer >= 0")
    uid = user_id_of_token(body["user"])
    exchange, account_type = body.get("exchange", "bybit"), body.get("account_type", "demo")
    acc = SIM.account(uid, exchange, account_type)
    acc["positions"] = gen_positions(uid, exchange, account_type, count)
    return {"success": True, "user_id": uid, "exchange": exchange,
            "account_type": account_type, "count": count}


@app.post("/__sim/revoke")
async def sim_revoke(request: Request):
    body = await json_object(request)
    if not isinstance(body.get("token"), str) or not body["token"]:
        raise HTTPException(400, "token is required")
    SIM.revoked.add(body["token"])
    return {"success": True}


# ---------------------------------------------------------------- test helpers

@app.api_route("/echo/{path:path}",
               methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def echo(request: Request, path: str):
    body = await request.body()
    scope = request.scope
    return {"method": scope["method"], "path": scope["path"],
            "raw_path": scope.get("raw_path", b"").decode("latin-1"),
            "raw_query": scope["query_string"].decode("latin-1"),
            "http_version": scope.get("http_version"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}


@app.post("/echo_raw")
async def echo_raw(request: Request):
    body = await request.body()
    ctype = request.headers.get("content-type", "application/octet-stream")
    return Response(content=body, headers={"content-type": ctype})


def query_number(request, name, default, kind=int, minimum=0):
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else kind(raw)
    except ValueError:
        raise HTTPException(422, "%s must be a number" % name)
    if value < minimum:
        raise HTTPException(422, "%s must be >= %s" % (name, minimum))
    return value


@app.get("/bytes")
async def bytes_route(request: Request):
    n = query_number(request, "n", 1024)
    return Response(content=det_bytes(0, n), media_type="application/octet-stream")


@app.get("/stream")
async def stream(request: Request):
    n = query_number(request, "n", 65536)
    chunk = query_number(request, "chunk", 4096, minimum=1)
    delay = query_number(request, "delay", 0.0, kind=float)

    async def chunks():
        for off in range(0, n, chunk):
            if off and delay:
                await asyncio.sleep(delay)
            yield det_bytes(off, min(chunk, n - off))

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/slow")
async def slow(request: Request):
    s = query_number(request, "s", 1.0, kind=float)
    await asyncio.sleep(s)
    return {"slept": s}


# ---------------------------------------------------------------- server

class Server(uvicorn.Server):
    """Announces the bound address once listening; any stop signal exits at once."""

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        if self.should_exit or not self.servers:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        print("legacy-sim listening on %s:%d" % (host, port), flush=True)

    def handle_exit(self, sig, frame):
        # Stop now, like a killed process: don't wait for hanging / slow
        # requests, drop open connections (clients see EOF, not a 500), and
        # keep the cancelled handlers' tracebacks out of stderr.
        self.should_exit = True
        self.force_exit = True
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        for conn in list(self.server_state.connections):
            if getattr(conn, "transport", None) is not None:
                conn.transport.abort()


def parse_args(argv):
    p = argparse.ArgumentParser(description="Simulator of the legacy trading API.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 = pick a free port")
    p.add_argument("--latency", type=float, default=3.0,
                   help="seconds of exchange latency for the exchange-backed routes")
    p.add_argument("--gzip", action="store_true", help="GZipMiddleware(minimum_size=1000)")
    p.add_argument("--positions", type=int, default=2, help="seed positions per user")
    p.add_argument("--keepalive-timeout", type=float, default=5.0,
                   help="idle keep-alive seconds before the server closes (uvicorn default 5)")
    return p.parse_args(argv)


def main(argv=None):
    global SIM
    args = parse_args(sys.argv[1:] if argv is None else argv)
    SIM = Sim(args)
    inner = GZipMiddleware(app, minimum_size=1000) if args.gzip else app
    config = uvicorn.Config(Instrument(inner), host=args.host, port=args.port,
                            log_level="warning", access_log=False, lifespan="off",
                            proxy_headers=False,   # keep the real client (host, port)
                            timeout_keep_alive=args.keepalive_timeout)
    Server(config).run()


if __name__ == "__main__":
    main()
