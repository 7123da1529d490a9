"""Issue 13 #5 and #6: the client address and scheme the app sees, through the
proxy and behind a TLS front (nginx, self-signed certificate made for the run).

The client connects from 127.0.0.2 (harness.CLIENT_ADDR), standing for a remote
address: uvicorn runs with deploy/README.md's flags (--proxy-headers
--forwarded-allow-ips 127.0.0.1), so it trusts only 127.0.0.1, where the proxy
and the front are."""
from __future__ import annotations

import asyncio
import ssl

import pytest

from clients import get, ws_echo_websockets
from conftest import trusted_proxies_supported
from harness import CLIENT_ADDR


@pytest.fixture
def front_proxy(workdir, make_proxy):
    """A proxy that trusts the TLS front on 127.0.0.1, when this binary has server.trusted_proxies."""
    over = {"server": {"trusted_proxies": ["127.0.0.1"]}} if trusted_proxies_supported(workdir) else {}
    return make_proxy(overrides=over)


def whoami(base, **kw):
    r = get(base, "/whoami", client_addr=CLIENT_ADDR, verify=False, **kw)
    assert r.status == 200, (r.status, r.body[:300])
    return r.json()


def test_client_address_through_the_proxy(app, proxy):
    """Direct the app sees 127.0.0.2; through the proxy (X-Forwarded-For from the proxy) too."""
    d, p = whoami(app.url), whoami(proxy.url)
    assert d["client"][0] == CLIENT_ADDR and d["scheme"] == "http"
    assert p["client"] is not None and p["client"][0] == CLIENT_ADDR
    assert p["scheme"] == "http"


SPOOF = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


def test_a_client_cannot_claim_another_address_or_scheme(app, front_proxy):
    """A client that is not a trusted front sends its own X-Forwarded-For/-Proto: overwritten."""
    seen = whoami(front_proxy.url, headers=SPOOF)
    assert seen["client"][0] == CLIENT_ADDR
    assert seen["scheme"] == "http"
    hdrs = dict((k, v) for k, v in seen["headers"])
    assert "203.0.113.9" not in hdrs.get("x-forwarded-for", "")
    assert hdrs.get("x-forwarded-proto") == "http"


def test_a_client_cannot_claim_another_host(app, front_proxy):
    seen = whoami(front_proxy.url, headers=SPOOF)
    hdrs = dict((k, v) for k, v in seen["headers"])
    assert hdrs.get("x-forwarded-host") in (None, f"127.0.0.1:{front_proxy.port}"), hdrs


def test_tls_front_direct_to_the_app_baseline(app, make_front):
    """nginx -> app: the README's uvicorn flags give the app https and the real client."""
    f = make_front(app.port)
    seen = whoami(f.url)
    assert seen["scheme"] == "https" and seen["client"][0] == CLIENT_ADDR
    r = get(f.url, "/redirect", client_addr=CLIENT_ADDR, verify=False)
    assert r.status == 307 and r.h("location") == f"{f.url}/whoami"


def test_tls_front_through_the_proxy_redirect_is_https(app, front_proxy, make_front):
    f = make_front(front_proxy.port)
    r = get(f.url, "/redirect", client_addr=CLIENT_ADDR, verify=False)
    assert r.status == 307
    assert r.h("location") == f"{f.url}/whoami"


def test_tls_front_through_the_proxy_app_sees_https_and_the_client(app, front_proxy, make_front):
    f = make_front(front_proxy.port)
    seen = whoami(f.url)
    assert seen["scheme"] == "https"
    assert seen["client"] is not None and seen["client"][0] == CLIENT_ADDR


def _insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.mark.parametrize("via", [
    "front-app",
    "front-proxy-app",
])
def test_wss_through_the_tls_front(app, front_proxy, make_front, via):
    f = make_front(app.port if via == "front-app" else front_proxy.port)
    url = f.url.replace("https://", "wss://") + "/ws/echo"
    assert asyncio.run(ws_echo_websockets(url, ["over tls", b"\x01\x02"], ssl=_insecure())) == ["over tls", b"\x01\x02"]
