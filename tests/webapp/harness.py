"""Processes for the webapp end-to-end tests: the test app under uvicorn, cacheproxy,
a TLS front (nginx). Everything on loopback, on ports picked at run time (bind port 0),
every wait bounded, every process stopped by pid (Proc.stop: SIGTERM, then SIGKILL).

Used by conftest.py (pytest fixtures) and by scripts/bench/webapp_client.py.
"""
from __future__ import annotations

import copy
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
# The tree whose config/, rules/ and deploy/README.md go with the binary under
# test (default: this one; CACHEPROXY_SOURCE_DIR names another checkout, e.g. an
# older commit's, when CACHEPROXY_BIN was built from it).
ROOT = Path(os.environ.get("CACHEPROXY_SOURCE_DIR", str(HERE.parent.parent))).resolve()
SHIPPED_CONFIG = ROOT / "config" / "cacheproxy.yaml"
SHIPPED_RULES = ROOT / "rules" / "trading.yaml"
DEFAULT_BIN = HERE.parent.parent / "build" / "cacheproxy"

# A second loopback address standing for a real (remote) client: Linux routes
# all of 127/8 to lo, so a socket bound to it reaches 127.0.0.1 and the other
# side sees 127.0.0.2 as the peer, which no hop trusts (uvicorn trusts 127.0.0.1).
CLIENT_ADDR = "127.0.0.2"


def cacheproxy_bin() -> Path:
    return Path(os.environ.get("CACHEPROXY_BIN", str(DEFAULT_BIN)))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Proc:
    """One child process in its own session (process group), output to a log file."""

    def __init__(self, name: str, argv: list, log_path: Path, env: dict | None = None, cwd: Path | None = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=full_env, cwd=str(cwd) if cwd else None, start_new_session=True)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-n:].decode("utf-8", "replace")

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM to the process group this process leads, SIGKILL after `grace` s."""
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=5)
        else:
            # The leader is gone; make sure nothing it started is left in its group.
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._log.close()
        return self.popen.returncode

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid}): {' '.join(self.argv)}\n--- log tail ---\n{self.log_tail()}"


def wait_until(pred, timeout: float, interval: float = 0.05, proc: Proc | None = None, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what}: process exited ({proc.popen.returncode})\n{proc.describe()}")
        time.sleep(interval)
    raise TimeoutError(f"{what}: not true after {timeout} s" + (f"\n{proc.describe()}" if proc else ""))


def http_status(port: int, path: str, host: str = "127.0.0.1", timeout: float = 2.0) -> int | None:
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


# ------------------------------------------------------------------- the app

class App:
    def __init__(self, proc: Proc, port: int):
        self.proc, self.port = proc, port
        self.url = f"http://127.0.0.1:{port}"

    def stop(self):
        return self.proc.stop()


def start_app(workdir: Path, port: int | None = None, argv: list | None = None, env: dict | None = None,
              name: str = "webapp", ready_timeout: float = 30.0) -> App:
    """uvicorn with the test app; argv replaces serve.py's command (e.g. the README's)."""
    port = port or free_port()
    if argv is None:
        argv = [sys.executable, str(HERE / "serve.py"), "--port", str(port)]
    app_env = {"PYTHONDONTWRITEBYTECODE": "1"}
    app_env.update(env or {})
    proc = Proc(name, argv, Path(workdir) / f"{name}-{port}.log", env=app_env, cwd=HERE)
    try:
        # /whoami answers only once the startup hook (the 50 MB file) has run.
        wait_until(lambda: http_status(port, "/whoami") == 200, ready_timeout, 0.1, proc, f"{name} on :{port}")
    except Exception:
        proc.stop()
        raise
    return App(proc, port)


# ------------------------------------------------------------------ the proxy

def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def proxy_config(upstream_port: int, listen_port: int, admin_port: int, rules: Path | str | None = SHIPPED_RULES,
                 overrides: dict | None = None) -> dict:
    """config/cacheproxy.yaml as shipped, pointed at the app on loopback ports."""
    cfg = yaml.safe_load(SHIPPED_CONFIG.read_text())
    cfg["listen"] = f"127.0.0.1:{listen_port}"
    cfg["threads"] = 2
    cfg["upstream"]["url"] = f"http://127.0.0.1:{upstream_port}"
    cfg["admin"]["listen"] = f"127.0.0.1:{admin_port}"
    cfg["logging"]["file"] = ""
    if rules is None:
        cfg.pop("rules", None)
    else:
        cfg["rules"] = str(rules)
    return deep_merge(cfg, overrides or {})


class Proxy:
    def __init__(self, proc: Proc, port: int, admin_port: int, config_path: Path):
        self.proc, self.port, self.admin_port, self.config_path = proc, port, admin_port, config_path
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        # SIGTERM drains in-flight requests (limits.drain_timeout); by now there are none.
        return self.proc.stop(grace=10)


def check_config(config_path: Path, binary: Path | None = None) -> subprocess.CompletedProcess:
    binary = binary or cacheproxy_bin()
    return subprocess.run([str(binary), "--config", str(config_path), "--check"], capture_output=True, text=True,
                          timeout=30)


def start_proxy(workdir: Path, upstream_port: int, overrides: dict | None = None, name: str = "proxy",
                port: int | None = None, rules: Path | str | None = SHIPPED_RULES, binary: Path | None = None,
                extra_args: list | None = None, config: dict | None = None) -> Proxy:
    binary = binary or cacheproxy_bin()
    if not binary.is_file():
        raise FileNotFoundError(f"cacheproxy binary {binary} not found (set CACHEPROXY_BIN or build it)")
    port = port or free_port()
    admin_port = free_port()
    cfg = config if config is not None else proxy_config(upstream_port, port, admin_port, rules, overrides)
    cfg_path = Path(workdir) / f"{name}-{port}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    chk = check_config(cfg_path, binary)
    if chk.returncode != 0:
        raise RuntimeError(f"cacheproxy --check refused {cfg_path}:\n{chk.stdout}{chk.stderr}")
    proc = Proc(name, [binary, "--config", cfg_path, "--log-level", "info", *(extra_args or [])],
                Path(workdir) / f"{name}-{port}.log")
    try:
        wait_until(lambda: port_open(port), 15, 0.05, proc, f"{name} on :{port}")
    except Exception:
        proc.stop()
        raise
    return Proxy(proc, port, admin_port, cfg_path)


# --------------------------------------------------------------- a TLS front

def make_cert(workdir: Path) -> tuple[Path, Path]:
    key, crt = Path(workdir) / "front.key", Path(workdir) / "front.crt"
    if not crt.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True, timeout=60)
    return key, crt


# The TLS front's location block, as nginx docs and most deployments write it
# (the Upgrade lines let WebSockets through). deploy/README.md may carry its own;
# test_deploy_readme.py uses that one when it does.
FRONT_LOCATION = """
        proxy_pass http://127.0.0.1:{upstream_port};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_buffering off;
        proxy_read_timeout 120s;
        client_max_body_size 0;
"""


class Front:
    def __init__(self, proc: Proc, port: int):
        self.proc, self.port = proc, port
        self.url = f"https://127.0.0.1:{port}"

    def stop(self):
        return self.proc.stop()


def start_tls_front(workdir: Path, upstream_port: int, location: str | None = None, name: str = "front") -> Front:
    """nginx terminating TLS (self-signed, made now) on a free port, proxying to upstream_port."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise FileNotFoundError("nginx not found (apt-get install nginx-light)")
    key, crt = make_cert(workdir)
    port = free_port()
    d = Path(workdir) / f"{name}-{port}"
    (d / "tmp").mkdir(parents=True)
    os.chmod(d, 0o755)
    body = (location if location is not None else FRONT_LOCATION).format(upstream_port=upstream_port)
    conf = f"""
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{
{body}
        }}
    }}
}}
"""
    (d / "nginx.conf").write_text(conf)
    test = subprocess.run([nginx, "-t", "-q", "-c", str(d / "nginx.conf"), "-p", str(d), "-e", str(d / "error.log")],
                          capture_output=True, text=True, timeout=30)
    if test.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {test.stderr}\n{conf}")
    proc = Proc(name, [nginx, "-c", d / "nginx.conf", "-p", d, "-e", d / "error.log"], d / "stdout.log")
    try:
        wait_until(lambda: port_open(port), 10, 0.05, proc, f"nginx {name} on :{port}")
    except Exception:
        proc.stop()
        raise
    return Front(proc, port)
