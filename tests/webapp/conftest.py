"""Fixtures for the webapp end-to-end tests (issue 13): the test app under uvicorn
and the real cacheproxy binary ($CACHEPROXY_BIN, default build/cacheproxy) in
front of it, both on loopback ports picked at run time, stopped at the end.

`app` and `proxy` live for the whole session; `make_proxy(...)` starts a proxy
with other settings for one test (stopped when that test ends); `make_front`
a TLS front (nginx, self-signed certificate made for the run).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

# Origins CORSMiddleware allows (besides the page origins of test_browser.py).
TEST_ORIGIN = "https://terminal.example"
OTHER_ORIGIN = "https://desk.example"

# Every proxy a test starts is the shipped config/cacheproxy.yaml with the
# upstream, listen and admin ports changed and these overrides. The shipped
# active health check probes GET /health, which this app (like many) does not
# have: with it on, every request is a 502 (issue 13 #3, test_health.py). Off
# here so that the other findings are seen on their own.
BASE_OVERRIDES = {"upstream": {"health": {"path": ""}}}


def pytest_report_header(config):
    b = harness.cacheproxy_bin()
    return [f"cacheproxy: {b}" + ("" if b.is_file() else " (MISSING)"), f"python: {sys.executable}"]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("webapp")
    os.chmod(d, 0o755)  # nginx workers (dropped to nobody when run as root) read the cert from here
    return d


@pytest.fixture(scope="session")
def proxy_port() -> int:
    """Picked before the app starts: the browser page's origin names it, and the app's CORS list must allow it."""
    return harness.free_port()


@pytest.fixture(scope="session")
def app(workdir, proxy_port):
    app_port = harness.free_port()
    origins = [TEST_ORIGIN, OTHER_ORIGIN, f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{app_port}"]
    a = harness.start_app(workdir, app_port, env={"WEBAPP_CORS_ORIGINS": ",".join(origins)})
    yield a
    a.stop()


def _stop_checked(p, what: str):
    """Stops p; a proxy that does not exit 0 on SIGTERM (crash, sanitizer report, hang) fails the run."""
    alive = p.proc.alive()
    rc = p.stop()
    if not alive or rc != 0:
        raise AssertionError(f"{what} exited with {rc} (alive before stop: {alive})\n{p.proc.describe()}")


@pytest.fixture(scope="session")
def proxy(workdir, app, proxy_port):
    if not harness.cacheproxy_bin().is_file():
        pytest.fail(f"cacheproxy binary {harness.cacheproxy_bin()} not found: build it or set CACHEPROXY_BIN")
    p = harness.start_proxy(workdir, app.port, BASE_OVERRIDES, port=proxy_port, name="proxy-main")
    yield p
    _stop_checked(p, "the session's cacheproxy")


@pytest.fixture
def make_proxy(workdir, app):
    """make_proxy(overrides={...}, base=BASE_OVERRIDES, upstream_port=app.port) -> a started Proxy."""
    started = []

    def start(overrides=None, base=BASE_OVERRIDES, upstream_port=None, **kw):
        p = harness.start_proxy(workdir, upstream_port or app.port,
                                harness.deep_merge(base or {}, overrides or {}), **kw)
        started.append(p)
        return p

    yield start
    errors = []
    for p in started:
        try:
            _stop_checked(p, "a test's cacheproxy")
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        raise AssertionError("\n".join(errors))


@pytest.fixture
def make_front(workdir):
    started = []

    def start(upstream_port, location=None):
        f = harness.start_tls_front(workdir, upstream_port, location)
        started.append(f)
        return f

    yield start
    for f in started:
        f.stop()


def trusted_proxies_supported(workdir) -> bool:
    """Whether this binary knows server.trusted_proxies (issue 13): --check of a config with it."""
    cfg = harness.proxy_config(1, harness.free_port(), harness.free_port(), harness.SHIPPED_RULES,
                               harness.deep_merge(BASE_OVERRIDES, {"server": {"trusted_proxies": ["127.0.0.1"]}}))
    path = Path(workdir) / "trusted-probe.yaml"
    import yaml
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return harness.check_config(path).returncode == 0
