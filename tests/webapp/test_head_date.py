"""Issue 13 #10 and #11: HEAD gets the headers its GET would get; every response
carries a current Date."""
from __future__ import annotations

import time
import uuid

import pytest

from clients import curl, date_skew, same_headers
from harness import free_port

# Date has a resolution of 1 s and uvicorn renews its value once a second: a
# current Date is up to ~2 s behind the clock.
DATE_SLACK = 2.5
HEAD_NAMES = ("content-type", "content-length", "content-encoding", "etag", "last-modified", "vary",
              "cache-control")


@pytest.mark.parametrize("accept_encoding", ["gzip", "identity"])
@pytest.mark.parametrize("path", ["/static/app.js", "/static/style.css"])
def test_head_has_the_headers_of_its_get(app, proxy, path, accept_encoding):
    """Direct and through the proxy, HEAD and GET (same Accept-Encoding) agree on every
    representation header; HEAD has no body."""
    for base in (app.url, proxy.url):
        g = curl(base + path, "-H", f"Accept-Encoding: {accept_encoding}")
        h = curl(base + path, "-I", "-H", f"Accept-Encoding: {accept_encoding}")
        assert g.status == 200 and h.status == 200
        diff = same_headers(g, h, HEAD_NAMES)
        if g.h("transfer-encoding") == "chunked" and "content-length" in diff and diff["content-length"][0] is None:
            diff.pop("content-length")  # RFC 9110 9.3.2: HEAD may omit what only the framing of GET says
        assert diff == {}, f"{base}: GET vs HEAD differ: {diff}"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_gzip_through_the_proxy_keeps_a_validator(app, proxy, method):
    """Direct, the static file has an ETag; through the proxy with gzip the answer needs one too
    (weak is right for a re-encoded body), or browsers cannot revalidate static files."""
    args = ["-H", "Accept-Encoding: gzip"] + (["-I"] if method == "HEAD" else [])
    d, p = curl(app.url + "/static/app.js", *args), curl(proxy.url + "/static/app.js", *args)
    assert d.h("etag")
    assert p.h("content-encoding") == "gzip"
    assert p.h("etag") is not None and p.h("etag").lstrip("W/").strip('"') == d.h("etag").strip('"')


def test_date_is_current_direct(app):
    """uvicorn's Date is fixed when a connection opens; a fresh connection per request gets a current one."""
    time.sleep(1.0)
    for _ in range(2):
        r = curl(app.url + "/whoami")
        assert date_skew(r) is not None and date_skew(r) <= DATE_SLACK
        time.sleep(2.5)


def test_date_is_current_through_the_proxy_over_a_pooled_connection(proxy):
    """Steady traffic through the proxy: a request a second for 6 s, one at a time, so they
    reuse one pooled upstream connection (each inside uvicorn's 5 s keep-alive). Every answer
    must carry a Date within DATE_SLACK of now."""
    skews = []
    for _ in range(7):
        r = curl(proxy.url + "/whoami")
        assert r.status == 200
        assert len(r.headers.get("date", [])) <= 1, r.headers
        skews.append(date_skew(r))
        time.sleep(1.0)
    assert all(s is not None and s <= DATE_SLACK for s in skews), skews


@pytest.mark.parametrize("kind", ["cached-miss", "cached-hit", "proxy-413", "proxy-502"])
def test_every_answer_of_the_proxy_has_a_current_date(proxy, make_proxy, tmp_path, kind):
    if kind.startswith("cached"):
        path = "/api/trading/ticker?symbol=D" + uuid.uuid4().hex[:8].upper()
        r = curl(proxy.url + path)
        if kind == "cached-hit":
            r = curl(proxy.url + path)
            assert r.h("x-cache") == "HIT"
    elif kind == "proxy-413":
        # A watched write keeps a body limit (set explicitly); curl sends Expect: 100-continue.
        p = make_proxy({"limits": {"max_body_bytes": "1MiB"}})
        body = tmp_path / "order.json"
        body.write_bytes(b'{"pad":"' + b"x" * (2 << 20) + b'"}')
        r = curl(p.url + "/api/trading/order", "--data-binary", f"@{body}", "-H", "Content-Type: application/json")
        assert r.status == 413
    else:
        p = make_proxy(upstream_port=free_port())  # nothing listens there
        r = curl(p.url + "/whoami")
        assert r.status == 502
    assert len(r.headers.get("date", [])) == 1, r.headers  # ours alone, never the upstream's or a stored one too
    assert date_skew(r) <= DATE_SLACK
