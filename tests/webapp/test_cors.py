"""Issue 13 #4: a cached route must vary on what the app varies on. The app's
CORSMiddleware answers a request with an allowed Origin with
Access-Control-Allow-Origin: <that origin> and Vary: Origin, and a request
without Origin with neither; a cache entry filled by one must not be served as
the answer to the other."""
from __future__ import annotations

import uuid

import pytest

from clients import get
from conftest import OTHER_ORIGIN, TEST_ORIGIN


def ticker(base, sym, origin=None):
    return get(base, f"/api/trading/ticker?symbol={sym}", headers={"Origin": origin} if origin else None)


def fresh_symbol():
    return "C" + uuid.uuid4().hex[:8].upper()


def test_direct_the_app_answers_each_origin_itself(app):
    sym = fresh_symbol()
    plain, a, b = ticker(app.url, sym), ticker(app.url, sym, TEST_ORIGIN), ticker(app.url, sym, OTHER_ORIGIN)
    assert plain.h("access-control-allow-origin") is None
    assert a.h("access-control-allow-origin") == TEST_ORIGIN and a.h("vary") == "Origin"
    assert b.h("access-control-allow-origin") == OTHER_ORIGIN


def test_origin_request_after_a_fill_without_origin_gets_allow_origin(proxy):
    sym = fresh_symbol()
    fill = ticker(proxy.url, sym)
    assert fill.status == 200 and fill.h("access-control-allow-origin") is None
    cross = ticker(proxy.url, sym, TEST_ORIGIN)
    assert cross.status == 200
    assert cross.h("access-control-allow-origin") == TEST_ORIGIN
    assert cross.h("access-control-allow-credentials") == "true"


def test_second_origin_gets_its_own_allow_origin(proxy):
    sym = fresh_symbol()
    a = ticker(proxy.url, sym, TEST_ORIGIN)
    assert a.h("access-control-allow-origin") == TEST_ORIGIN
    b = ticker(proxy.url, sym, OTHER_ORIGIN)
    assert b.status == 200 and b.h("access-control-allow-origin") == OTHER_ORIGIN


def test_request_without_origin_after_a_cross_origin_fill_gets_no_allow_origin(proxy):
    """The other order: an entry filled for an Origin is not handed, with its
    Access-Control-Allow-Origin, to a request that sent none."""
    sym = fresh_symbol()
    a = ticker(proxy.url, sym, TEST_ORIGIN)
    assert a.status == 200 and a.h("access-control-allow-origin") == TEST_ORIGIN
    plain = ticker(proxy.url, sym)
    assert plain.status == 200
    assert plain.h("access-control-allow-origin") is None, plain.headers
