"""Issue 13 #7 and #8: big bodies both ways. A 50 MB download and upload must arrive
whole (same sha256) through the proxy; uploads over 1 MiB must pass; a body the
proxy refuses for its size must get a 413 the client can read. Throughput is
printed (pytest -s), not asserted: scripts/bench/webapp.sh measures it."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os

import aiohttp
import httpx
import pytest

from clients import curl, get, httpx_client



def targets(xfail=None):
    return ["direct", pytest.param("proxy", marks=xfail) if xfail else "proxy"]


def base_of(app, proxy, target):
    return app.url if target == "direct" else proxy.url


@pytest.fixture(scope="module")
def info(app):
    return get(app.url, "/download/info?mb=50").json()


@pytest.fixture(scope="module")
def big_upload(tmp_path_factory):
    p = tmp_path_factory.mktemp("upload") / "up50.bin"
    data = os.urandom(50 * 1000 * 1000)
    p.write_bytes(data)
    yield p, hashlib.sha256(data).hexdigest(), len(data)
    p.unlink()  # pytest keeps its last temp dirs: not 50 MB each


@pytest.mark.parametrize("target", targets())
def test_download_50mb_file_identical(app, proxy, info, target):
    r = curl(base_of(app, proxy, target) + "/download/big", timeout=120)
    assert r.status == 200
    assert len(r.body) == info["big_bytes"] and r.sha256 == info["big_sha256"]
    assert r.h("content-length") == str(info["big_bytes"])
    print(f"\n{target}: 50 MB download {len(r.body) / r.seconds / 1e6:.0f} MB/s")


@pytest.mark.parametrize("target", targets())
def test_download_50mb_generated_stream_identical(app, proxy, info, target):
    """A chunked body from a generator, read by httpx as a stream."""
    digest, n = hashlib.sha256(), 0
    with httpx_client(base_of(app, proxy, target), timeout=60) as c:
        with c.stream("GET", "/download/stream?mb=50") as r:
            assert r.status_code == 200
            for block in r.iter_raw():
                digest.update(block)
                n += len(block)
    assert n == 50 * 1000 * 1000 and digest.hexdigest() == info["stream_sha256"]


@pytest.mark.parametrize("target", targets())
def test_upload_50mb_raw_with_curl_identical(app, proxy, big_upload, target):
    path, sha, size = big_upload
    r = curl(base_of(app, proxy, target) + "/upload/raw", "--data-binary", f"@{path}",
             "-H", "Content-Type: application/octet-stream", timeout=120)
    assert r.status == 200, r.body[:200]
    assert r.json()["bytes"] == size and r.json()["sha256"] == sha
    print(f"\n{target}: 50 MB upload {size / r.seconds / 1e6:.0f} MB/s")


@pytest.mark.parametrize("target", targets())
def test_upload_5mib_multipart_with_httpx(app, proxy, target):
    data = os.urandom(5 << 20)
    with httpx_client(base_of(app, proxy, target), timeout=60) as c:
        r = c.post("/upload", files={"file": ("photo.jpg", data, "image/jpeg")})
    assert r.status_code == 200, r.text[:200]
    assert r.json() == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "filename": "photo.jpg"}


@pytest.mark.parametrize("target", targets())
def test_upload_5mib_chunked_with_aiohttp(app, proxy, target):
    """No Content-Length: aiohttp sends an async generator's body chunked."""
    blocks = [os.urandom(256 << 10) for _ in range(20)]

    async def gen():
        for b in blocks:
            yield b

    async def run():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
            async with s.post(base_of(app, proxy, target) + "/upload/raw", data=gen()) as r:
                return r.status, await r.read()

    status, raw = asyncio.run(run())
    whole = b"".join(blocks)
    assert status == 200, raw[:200]
    body = json.loads(raw)
    assert body["bytes"] == len(whole) and body["sha256"] == hashlib.sha256(whole).hexdigest()
    assert body["chunked"] is True


@pytest.mark.parametrize("target", targets())
def test_upload_512kib_multipart_with_curl(app, proxy, tmp_path, target):
    """Under the limit: passes today (the baseline for the tests above)."""
    data = os.urandom(512 << 10)
    f = tmp_path / "small.bin"
    f.write_bytes(data)
    r = curl(base_of(app, proxy, target) + "/upload", "-F", f"file=@{f}")
    assert r.status == 200
    assert r.json()["bytes"] == len(data) and r.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_refused_body_413_is_readable_by_httpx(make_proxy):
    """A watched write (POST /api/trading/order), where the body limit stays (1 MiB, set here
    explicitly): an 8 MiB body is refused, and httpx, which sends the whole body before it
    reads, must see the 413."""
    proxy = make_proxy({"limits": {"max_body_bytes": "1MiB"}})
    data = b'{"exchange":"bybit","account_type":"demo","pad":"' + b"x" * (8 << 20) + b'"}'
    with httpx.Client(timeout=30) as c:
        r = c.post(proxy.url + "/api/trading/order", content=data, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
