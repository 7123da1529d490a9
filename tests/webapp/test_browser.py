"""Headless Chromium loads static/browser.html (direct, and through the proxy): the
page opens a WebSocket and an EventSource on its own origin (http://127.0.0.1:PORT)
and fetches the cached ticker from another origin (http://localhost:PORT), and
writes each outcome into the DOM, read back over the DevTools protocol (cdp.py)
once the page marks itself done.

Before the page loads, the ticker entry is filled by a request without Origin
(as the terminal's own same-origin polling does), so the cross-origin fetch is a
cache hit through the proxy (issue 13 #4)."""
from __future__ import annotations

import re
import uuid

import pytest

from cdp import chromium_path, load_page
from clients import get

CHECKS = ["ws", "sse", "cors", "static"]
XFAILS: dict = {}  # (target, check) -> reason, for a check the proxy does not pass yet


def parse_dom(html: str) -> dict:
    out = {}
    for cid in CHECKS + ["done"]:
        m = re.search(rf'<(?:span|div) id="{cid}" data-(?:result|done)="([a-z]+)">([^<]*)<', html)
        out[cid] = (m.group(1), m.group(2)) if m else (None, None)
    return out


@pytest.fixture(scope="module")
def page_results(app, proxy, tmp_path_factory):
    chromium = chromium_path()
    if not chromium:
        pytest.skip("chromium not found: install Debian's chromium (scripts/deps.sh)")
    results = {}
    for target, port in (("direct", app.port), ("proxy", proxy.port)):
        sym = "B" + uuid.uuid4().hex[:8].upper()
        fill = get(f"http://127.0.0.1:{port}", f"/api/trading/ticker?symbol={sym}")  # no Origin
        assert fill.status == 200
        url = f"http://127.0.0.1:{port}/static/browser.html?other=http://localhost:{port}&symbol={sym}"
        html = load_page(url, tmp_path_factory.mktemp(f"chromium-{target}"),
                         "document.getElementById('done') && document.getElementById('done').dataset.done === 'yes'")
        dom = parse_dom(html)
        assert dom["done"][0] == "yes", f"{target}: the page did not finish:\n{html[-3000:]}"
        results[target] = dom
    return results


def cases():
    for target in ("direct", "proxy"):
        for check in CHECKS:
            reason = XFAILS.get((target, check))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(target, check, id=f"{target}-{check}", marks=marks)


@pytest.mark.parametrize("target,check", list(cases()))
def test_browser_page(page_results, target, check):
    result, detail = page_results[target][check]
    assert result == "ok", f"{target} {check}: {detail}"
