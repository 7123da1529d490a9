"""Issue 13 #3: health from evidence, not from a probe path the app may not have.
The app has no /health, and one of its handlers blocks its event loop for 3 s."""
from __future__ import annotations

import concurrent.futures
import time

import pytest

import harness
from clients import get

SHIPPED_HEALTH = harness.proxy_config(1, 1, 1)["upstream"].get("health", {})


def test_the_app_has_no_health_route(app):
    assert get(app.url, "/health").status == 404


def requests_over(base: str, seconds: float, every: float, path: str = "/whoami"):
    """GET path every `every` s for `seconds` s, each in its own thread (timeout 15 s): [(sent_at, status)]."""
    t0 = time.monotonic()

    def one(delay):
        time.sleep(delay)
        try:
            return delay, get(base, path, timeout=15).status
        except Exception as e:  # a reset or timeout is a result too
            return delay, f"{type(e).__name__}"

    n = int(seconds / every)
    with concurrent.futures.ThreadPoolExecutor(max_workers=n + 2) as ex:
        futs = [ex.submit(one, i * every) for i in range(n)]
        out = [f.result(timeout=60) for f in futs]
    assert time.monotonic() - t0 < 60
    return out


@pytest.mark.parametrize("health", ["shipped", "explicit-/health"])
def test_no_health_route_requests_still_200(app, make_proxy, health):
    """With the shipped config (and with health.path: /health set on purpose), requests the app
    answers get 200, also after several probe intervals."""
    if health == "shipped":
        p = make_proxy(base={})  # config/cacheproxy.yaml's upstream.health as shipped
    else:
        p = make_proxy(base={}, overrides={"upstream": {"health": {"path": "/health", "interval": "500ms",
                                                                     "timeout": "1s"}}})
    time.sleep(2.5)  # a few probe intervals (shipped: 2 s)
    got = requests_over(p.url, 2.0, 0.25)
    assert [s for _, s in got] == [200] * len(got), got


@pytest.mark.parametrize("target", [
    "direct",
    "proxy",
])
def test_event_loop_block_requests_wait_but_do_not_fail(app, make_proxy, target):
    """A handler blocks the app's event loop for 3 s (time.sleep). Concurrent requests, direct,
    wait and get 200. Through the proxy with an active check on a path that exists (the shipped
    interval and timeout: 2 s, 1 s) they must do the same."""
    if target == "direct":
        base = app.url
    else:
        health = dict(SHIPPED_HEALTH)
        health["path"] = "/counters"
        base = make_proxy(base={}, overrides={"upstream": {"health": health}}).url
        time.sleep(2.5)  # the check has run and found the app up
        assert get(base, "/whoami").status == 200

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        blocker = ex.submit(get, base, "/block?s=3", timeout=20)
        time.sleep(0.2)  # the block has begun
        got = requests_over(base, 4.8, 0.3)
        blocked = blocker.result(timeout=30)
    assert blocked.status == 200
    assert [s for _, s in got] == [200] * len(got), got


def test_a_dead_upstream_is_a_prompt_502(make_proxy):
    """What must stay: a connect failure is a 502 at once (nothing listens on the upstream port)."""
    p = make_proxy(upstream_port=harness.free_port())
    for _ in range(3):
        r = get(p.url, "/whoami", timeout=10)
        assert r.status == 502
        assert r.seconds < 1.5
