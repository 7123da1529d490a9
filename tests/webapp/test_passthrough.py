"""Pages, static files, cookies, redirects, slow handlers, event streams and the
cached ticker: each hit direct and through the proxy, the answers compared."""
from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest

from clients import MATTER, curl, get, httpx_client, local_connector, same_headers, sse_events

STATIC = ["/static/index.html", "/static/app.js", "/static/style.css", "/static/"]


def both(app, proxy):
    return {"direct": app.url, "proxy": proxy.url}


@pytest.mark.parametrize("path", STATIC)
def test_static_files_identical_with_httpx(app, proxy, path):
    """httpx (Accept-Encoding: gzip, deflate; decodes): same status, type, body and Last-Modified."""
    d, p = get(app.url, path), get(proxy.url, path)
    assert d.status == 200
    assert (p.status, p.h("content-type"), p.h("last-modified")) == (d.status, d.h("content-type"), d.h("last-modified"))
    assert p.body == d.body


@pytest.mark.parametrize("path", STATIC[:3])
def test_static_files_identical_with_curl_identity(app, proxy, path):
    """curl without Accept-Encoding: byte-identical, and every header that matters is the same
    (the proxy may add Vary: Accept-Encoding: it gzips for clients that ask)."""
    d, p = curl(app.url + path), curl(proxy.url + path)
    assert d.status == 200 and p.status == 200
    diff = same_headers(d, p)
    if diff.get("vary") == (None, "Accept-Encoding"):
        diff.pop("vary")
    assert diff == {}
    assert p.body == d.body


def test_unknown_path_is_the_apps_404(app, proxy):
    d, p = curl(app.url + "/no/such/page"), curl(proxy.url + "/no/such/page")
    assert d.status == 404
    assert (p.status, p.body, p.h("content-type")) == (d.status, d.body, d.h("content-type"))


def test_cookies_set_and_echo(app, proxy):
    for base in (app.url, proxy.url):
        with httpx_client(base) as c:
            r = c.get("/cookies/set", params={"name": "sid", "value": "v-" + base[-5:]})
            assert r.status_code == 200
            assert r.headers["set-cookie"].startswith("sid=v-" + base[-5:])
            assert "HttpOnly" in r.headers["set-cookie"]
            echo = c.get("/cookies/echo").json()
            assert echo == {"cookies": {"sid": "v-" + base[-5:]}}
    d = curl(app.url + "/cookies/set?name=a&value=1")
    p = curl(proxy.url + "/cookies/set?name=a&value=1")
    assert same_headers(d, p, ("set-cookie", "content-type", "content-length")) == {}


def test_absolute_redirect_names_the_host_the_client_used(app, proxy):
    """The app builds Location from request.url: through the proxy it must name the proxy's address."""
    d = curl(app.url + "/redirect")
    p = curl(proxy.url + "/redirect")
    assert d.status == 307 and d.h("location") == f"{app.url}/whoami"
    assert p.status == 307 and p.h("location") == f"{proxy.url}/whoami"
    followed = curl(proxy.url + "/redirect", "-L")
    assert followed.status == 200 and followed.json()["scheme"] == "http"


def test_slow_handler_answers_after_its_delay(app, proxy):
    for base in (app.url, proxy.url):
        r = get(base, "/slow?s=1.5")
        assert r.status == 200 and r.json()["slept"] == 1.5
        assert r.seconds >= 1.4


def test_cached_route_is_served_from_the_cache(app, proxy):
    """The shipped rules cache /api/trading/ticker: through the proxy the second call is a HIT
    (same body, one upstream call); direct, every call reaches the app."""
    sym = "T" + uuid.uuid4().hex[:8].upper()
    path = f"/api/trading/ticker?symbol={sym}"
    before = get(app.url, "/counters").json().get("/api/trading/ticker", 0)
    first, second = get(proxy.url, path), get(proxy.url, path)
    after = get(app.url, "/counters").json().get("/api/trading/ticker", 0)
    assert first.status == 200 and second.status == 200
    assert first.h("x-cache") == "MISS" and second.h("x-cache") == "HIT"
    assert second.body == first.body and first.json()["symbol"] == sym
    assert set(first.json()) >= {"symbol", "last", "bid", "ask", "ts"}
    assert after - before == 1
    d1, d2 = get(app.url, path), get(app.url, path)
    assert d1.json()["seq"] != d2.json()["seq"]


def test_cors_preflight_passes_through(app, proxy):
    from conftest import TEST_ORIGIN
    args = ("-X", "OPTIONS", "-H", f"Origin: {TEST_ORIGIN}", "-H", "Access-Control-Request-Method: GET",
            "-H", "Access-Control-Request-Headers: authorization")
    d = curl(app.url + "/api/trading/ticker?symbol=BTCUSDT", *args)
    p = curl(proxy.url + "/api/trading/ticker?symbol=BTCUSDT", *args)
    assert d.status == 200 and d.h("access-control-allow-origin") == TEST_ORIGIN
    assert p.status == d.status
    assert same_headers(d, p, MATTER + ("access-control-allow-methods", "access-control-allow-headers",
                                        "access-control-max-age")) == {}


def test_whoami_scheme_is_http_on_plain_connections(app, proxy):
    for base in (app.url, proxy.url):
        assert get(base, "/whoami").json()["scheme"] == "http"


@pytest.mark.parametrize("target", ["direct", "proxy"])
def test_event_stream_delivers_events_as_they_happen(app, proxy, target):
    """aiohttp reads the first 5 events of /events (one per 100 ms) within 3 s, in order."""
    base = both(app, proxy)[target]

    async def run():
        async with aiohttp.ClientSession(connector=local_connector()) as s:
            t = time.monotonic()
            evs = await sse_events(s, base + "/events", 5, timeout=3)
            return evs, time.monotonic() - t

    evs, secs = asyncio.run(run())
    assert [e["seq"] for e in evs] == [0, 1, 2, 3, 4]
    assert secs < 2.5, f"5 events took {secs:.2f} s: buffered?"
