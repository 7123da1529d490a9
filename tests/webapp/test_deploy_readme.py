"""deploy/README.md run literally: its commands are taken from the file itself (not
copied here), with only the paths and ports replaced, and what the app then sees
is checked.

- section 1: the fenced ```sh block that starts with `uvicorn` is the app's command
  line (the README's module becomes this test app, its --port a free port; every
  other flag is kept as written);
- section 3: the ```sh block with the `install` lines, run with /etc/cacheproxy and
  /usr/local/bin moved into a temp dir (the build line is replaced by $CACHEPROXY_BIN);
- section 4: the `cacheproxy --config ... --check` line, on the installed files;
- a ```nginx block with proxy_pass, if the README has one, is the TLS front's
  location (else harness.FRONT_LOCATION), and a ```yaml block naming
  trusted_proxies is merged into the installed config.
The installed proxy runs with the command-line flags README.md documents
(--listen, --admin, --upstream) to put it on free ports.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
import yaml

import harness
from clients import get
from harness import CLIENT_ADDR

README = harness.ROOT / "deploy" / "README.md"


def fenced_blocks(text: str):
    """[(lang, body)] of every ``` fenced block."""
    return [(m.group(1).strip().lower(), m.group(2)) for m in re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.M | re.S)]


def logical_lines(body: str):
    """Lines with backslash continuations joined, comments and blanks dropped."""
    out, cur = [], ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip() and not cur.strip().startswith("#"):
            out.append(cur.strip())
        cur = ""
    return out


def readme_text():
    assert README.is_file(), f"{README} is missing"
    return README.read_text()


def uvicorn_command(text: str):
    for lang, body in fenced_blocks(text):
        lines = logical_lines(body)
        if lang in ("sh", "bash", "shell", "console") and lines and lines[0].startswith("uvicorn "):
            return shlex.split(lines[0])
    raise AssertionError("deploy/README.md has no ```sh block starting with `uvicorn`")


def app_argv(readme_argv: list, port: int) -> list:
    """The README's uvicorn line for this test app: its APP:VAR becomes app:app (with
    --app-dir), its --port the given port; all else as written."""
    argv = list(readme_argv[1:])
    spec = [i for i, a in enumerate(argv) if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", a)]
    assert spec, f"no APP:VAR in the README's uvicorn line: {readme_argv}"
    argv[spec[0]] = "app:app"
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(port)
    else:
        argv += ["--port", str(port)]
    return [sys.executable, "-m", "uvicorn", *argv, "--app-dir", str(harness.HERE)]


def install_block(text: str) -> list:
    for lang, body in fenced_blocks(text):
        lines = logical_lines(body)
        if lang in ("sh", "bash") and any(l.startswith("install ") and "cacheproxy.yaml" in l for l in lines):
            return lines
    raise AssertionError("deploy/README.md has no ```sh block installing cacheproxy.yaml")


def check_line(text: str) -> str:
    for lang, body in fenced_blocks(text):
        for l in logical_lines(body):
            if l.startswith("cacheproxy ") and "--check" in l:
                return l
    raise AssertionError("deploy/README.md has no `cacheproxy ... --check` line")


def nginx_location(text: str):
    """The body of the README's nginx location (or its bare directives), or None."""
    for lang, body in fenced_blocks(text):
        if lang == "nginx" or ("proxy_pass" in body and lang in ("", "conf", "nginx")):
            m = re.search(r"location\s+/\s*\{(.*?)^\s*\}", body, re.S | re.M)
            inner = m.group(1) if m else body
            if "proxy_pass" in inner and "server {" not in inner:
                inner = re.sub(r"proxy_pass\s+http://[^;]+;", "proxy_pass http://127.0.0.1:@UPSTREAM@;", inner)
                # harness.start_tls_front fills {upstream_port} with str.format
                return inner.replace("{", "{{").replace("}", "}}").replace("@UPSTREAM@", "{upstream_port}")
    return None


def yaml_trusted(text: str) -> dict:
    for lang, body in fenced_blocks(text):
        if lang in ("yaml", "yml") and "trusted_proxies" in body:
            return yaml.safe_load(body) or {}
    return {}


def localize(line: str, tmp, binary) -> str:
    line = line.replace("build-release/cacheproxy", str(binary))
    line = line.replace("/etc/cacheproxy", str(tmp / "etc" / "cacheproxy"))
    line = line.replace("/usr/local/bin", str(tmp / "bin"))
    return line


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Sections 3 and 4 of the README, run with paths moved into a temp dir."""
    text = readme_text()
    tmp = tmp_path_factory.mktemp("readme")
    (tmp / "bin").mkdir()
    binary = harness.cacheproxy_bin()
    ran = []
    for line in install_block(text):
        if line.startswith("scripts/build.sh"):
            continue  # the binary under test is $CACHEPROXY_BIN
        cmd = localize(line, tmp, binary)
        p = subprocess.run(["bash", "-euc", cmd], cwd=harness.ROOT, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"README line failed: {line}\nran: {cmd}\n{p.stdout}{p.stderr}"
        ran.append(cmd)
    cfg_path = tmp / "etc" / "cacheproxy" / "cacheproxy.yaml"
    extra = yaml_trusted(text)
    if extra:
        cfg = harness.deep_merge(yaml.safe_load(cfg_path.read_text()), extra)
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    check = localize(check_line(text), tmp, binary).replace("cacheproxy ", str(tmp / "bin" / "cacheproxy") + " ", 1)
    chk = subprocess.run(["bash", "-euc", check], capture_output=True, text=True, timeout=30)
    return {"tmp": tmp, "config": cfg_path, "check": chk, "ran": ran, "bin": tmp / "bin" / "cacheproxy",
            "yaml_extra": extra}


@pytest.fixture(scope="module")
def stack(installed, tmp_path_factory):
    """The README's uvicorn line (this app) and the installed proxy in front of it."""
    work = tmp_path_factory.mktemp("readme-run")
    port = harness.free_port()
    app = harness.start_app(work, port, argv=app_argv(uvicorn_command(readme_text()), port), name="readme-app")
    proxy_port, admin_port = harness.free_port(), harness.free_port()
    proc = harness.Proc("readme-proxy", [installed["bin"], "--config", installed["config"],
                                         "--listen", f"127.0.0.1:{proxy_port}", "--admin", f"127.0.0.1:{admin_port}",
                                         "--upstream", f"http://127.0.0.1:{port}"], work / "proxy.log")
    try:
        harness.wait_until(lambda: harness.port_open(proxy_port), 15, 0.05, proc, "the installed cacheproxy")
        yield {"app": app, "proxy_url": f"http://127.0.0.1:{proxy_port}", "proxy_port": proxy_port, "work": work}
    finally:
        proc.stop()
        app.stop()


def test_readme_install_and_check(installed):
    """Section 3's install lines work from the repo, and section 4's check accepts the result."""
    chk = installed["check"]
    assert chk.returncode == 0, chk.stdout + chk.stderr
    assert "configuration OK" in chk.stdout + chk.stderr
    cfg = yaml.safe_load(installed["config"].read_text())
    assert (installed["config"].parent / cfg["rules"]).is_file(), cfg["rules"]


def test_readme_uvicorn_line_direct(stack):
    """The README's uvicorn flags: a client reaching the app directly is seen as itself."""
    r = get(stack["app"].url, "/whoami", client_addr=CLIENT_ADDR)
    assert r.status == 200
    assert r.json()["client"][0] == CLIENT_ADDR and r.json()["scheme"] == "http"


def test_readme_setup_through_the_proxy(stack):
    """Page, API and what the app sees, through the proxy as installed by the README."""
    import time
    time.sleep(2.5)  # the shipped health interval has passed
    page = get(stack["proxy_url"], "/static/index.html", client_addr=CLIENT_ADDR)
    assert page.status == 200 and b"Trading terminal" in page.body
    seen = get(stack["proxy_url"], "/whoami", client_addr=CLIENT_ADDR)
    assert seen.status == 200, seen.body[:200]
    assert seen.json()["client"][0] == CLIENT_ADDR and seen.json()["scheme"] == "http"


def test_readme_setup_behind_a_tls_front(stack, make_front):
    """TLS front (the README's nginx location if it has one) -> installed proxy -> app."""
    loc = nginx_location(readme_text())
    front = make_front(stack["proxy_port"], loc)
    import time
    time.sleep(2.5)
    seen = get(front.url, "/whoami", client_addr=CLIENT_ADDR, verify=False)
    assert seen.status == 200, seen.body[:200]
    assert seen.json()["scheme"] == "https"
    assert seen.json()["client"] is not None and seen.json()["client"][0] == CLIENT_ADDR
    r = get(front.url, "/redirect", client_addr=CLIENT_ADDR, verify=False)
    assert r.status == 307 and r.h("location") == f"{front.url}/whoami"


SAMPLE = '''
Run it:

```sh
# a comment
uvicorn app.main:app --host 127.0.0.1 --port 8765 \\
    --proxy-headers --forwarded-allow-ips 127.0.0.1
```

```nginx
server {
    listen 443 ssl;
    location / {
        proxy_pass http://127.0.0.1:8080;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
}
```

```yaml
server:
  trusted_proxies: [127.0.0.1]
```
'''


def test_readme_extraction_on_a_sample():
    """The extraction itself, on a known text (so a README edit that breaks it shows up here)."""
    argv = uvicorn_command(SAMPLE)
    assert argv == ["uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "8765", "--proxy-headers",
                    "--forwarded-allow-ips", "127.0.0.1"]
    run = app_argv(argv, 4242)
    assert run[3:] == ["app:app", "--host", "127.0.0.1", "--port", "4242", "--proxy-headers",
                       "--forwarded-allow-ips", "127.0.0.1", "--app-dir", str(harness.HERE)]
    loc = nginx_location(SAMPLE).format(upstream_port=5555)
    assert "proxy_pass http://127.0.0.1:5555;" in loc and "X-Forwarded-Proto $scheme" in loc
    assert yaml_trusted(SAMPLE) == {"server": {"trusted_proxies": ["127.0.0.1"]}}
