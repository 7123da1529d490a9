#!/usr/bin/env python3
"""The driver of scripts/bench/reload.sh (issue 14): loopback only, every loop
bounded in count and time. Starts the legacy simulator and cacheproxy, then
measures (1) requests and errors during N SIGHUP reloads under steady load
(alternately removing one route and adding it back),
(2) the hit ratio just before and just after a reload changing one route's
TTL, (3) connection attempts lost across a restart through socket activation,
this script holding the listening socket as systemd would (fd 3, LISTEN_FDS=1,
LISTEN_PID)."""
import argparse, http.client, json, os, signal, socket, subprocess, sys, tempfile, threading, time

HOST = "127.0.0.1"


def free_port():
    s = socket.socket(); s.bind((HOST, 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, seconds=15):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close(); return
        except OSError:
            time.sleep(0.05)
    sys.exit("port %d never opened" % port)


def rules(balance_ttl="60s", ticker_ttl="60s", with_ticker=True):
    text = f"""identity: {{ header: Authorization }}
coalesce: {{ timeout: 10s, max_waiters: 10000 }}
routes:
  - name: balance
    match: {{ method: GET, path: /api/trading/balance }}
    ttl: {balance_ttl}
    key: {{ identity: true, query: [exchange, account_type] }}
  - name: ticker
    match: {{ method: GET, path: /api/trading/ticker }}
    ttl: {ticker_ttl}
    shared: true
    key: {{ query: [symbol] }}
"""
    return text if with_ticker else text[:text.index("  - name: ticker")]


def write(path, text):
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)


def get(port, target, headers, timeout=5):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", target, headers=headers)
        r = c.getresponse(); r.read()
        return r.status, r.getheader("X-Cache", "")
    finally:
        c.close()


class Load:
    """CLIENTS threads of GETs (balance for 8 users, ticker for 4 symbols), each on a
    keep-alive-free connection, until stop() or `max_seconds`; X-Cache per phase."""

    def __init__(self, port, clients, max_seconds=60, max_requests=200000):
        self.port, self.stop_flag, self.lock = port, threading.Event(), threading.Lock()
        self.phase = "warm"
        self.counts = {}
        self.deadline = time.time() + max_seconds
        self.left = max_requests
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(clients)]
        for t in self.threads: t.start()

    def run(self, n):
        i = 0
        while not self.stop_flag.is_set() and time.time() < self.deadline:
            with self.lock:
                if self.left <= 0: return
                self.left -= 1
            i += 1
            if i % 2:
                target, headers = "/api/trading/balance?exchange=bybit&account_type=demo", {"Authorization": "Bearer user%d" % ((n * 7 + i) % 8)}
            else:
                target, headers = "/api/trading/ticker?symbol=%s" % ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"][i % 4], {}
            try:
                status, xc = get(self.port, target, headers)
                ok = status == 200
            except OSError:
                ok, xc = False, ""
            with self.lock:
                c = self.counts.setdefault(self.phase, {"requests": 0, "errors": 0, "hits": 0})
                c["requests"] += 1
                c["errors"] += 0 if ok else 1
                c["hits"] += 1 if xc in ("HIT", "STALE") else 0

    def set_phase(self, name):
        with self.lock: self.phase = name

    def stop(self):
        self.stop_flag.set()
        for t in self.threads: t.join()


def stats(admin):
    c = http.client.HTTPConnection(HOST, admin, timeout=5)
    c.request("GET", "/stats"); body = c.getresponse().read(); c.close()
    return json.loads(body)


def reloads_seen(admin):
    r = stats(admin)["reloads"]; return r["ok"] + r["failed"]


def sighup_and_wait(proc, admin, seconds=5):
    before = reloads_seen(admin)
    proc.send_signal(signal.SIGHUP)
    end = time.time() + seconds
    while time.time() < end and reloads_seen(admin) == before:
        time.sleep(0.01)


def phase_reloads(args, proc, admin, port, rules_path):
    load = Load(port, args.clients)
    time.sleep(1.0)
    load.set_phase("reloads")
    for i in range(args.reloads):
        # alternately: the ticker route removed, then added back (its TTL 30s / 60s in turn)
        write(rules_path, rules(ticker_ttl="30s" if i % 4 == 1 else "60s", with_ticker=i % 2 == 1))
        sighup_and_wait(proc, admin)
        time.sleep(0.1)
    load.set_phase("after")
    time.sleep(0.5)
    load.stop()
    c = load.counts.get("reloads", {"requests": 0, "errors": 0})
    s = stats(admin)["reloads"]
    print(f"1. {args.reloads} reloads under load ({args.clients} clients; removing and adding the ticker route "
          f"in turn): requests {c['requests']}, "
          f"errors {c['errors']} (reloads ok {s['ok']}, failed {s['failed']}; all requests: "
          f"{sum(v['requests'] for v in load.counts.values())}, errors {sum(v['errors'] for v in load.counts.values())})")
    return c["errors"]


def phase_hit_ratio(args, proc, admin, port, rules_path):
    load = Load(port, args.clients)
    time.sleep(1.0)  # warm: every key filled
    load.set_phase("before")
    time.sleep(2.0)
    write(rules_path, rules(balance_ttl="45s", ticker_ttl="60s"))  # balance's TTL changes, nothing else
    load.set_phase("reload")
    sighup_and_wait(proc, admin)
    load.set_phase("after")
    time.sleep(2.0)
    load.stop()
    ratio = lambda p: 100.0 * load.counts[p]["hits"] / max(1, load.counts[p]["requests"])
    print(f"2. hit ratio 2 s before a reload changing balance's TTL (60s -> 45s): {ratio('before'):.1f}% "
          f"of {load.counts['before']['requests']}; 2 s after: {ratio('after'):.1f}% of {load.counts['after']['requests']}")


def start_activated(bin_path, config, log, listen_fd):
    # sh moves the socket to fd 3 and exports its own pid, which exec keeps.
    cmd = f'exec 3<&{listen_fd}; LISTEN_FDS=1 LISTEN_PID=$$ exec "{bin_path}" --config "{config}"'
    return subprocess.Popen(["/bin/sh", "-c", cmd], stdout=log, stderr=subprocess.STDOUT, pass_fds=(listen_fd,))


def phase_restart(args, tmp, sim_port):
    holder = socket.socket(); holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind((HOST, 0)); holder.listen(4096)
    port = holder.getsockname()[1]
    config = os.path.join(tmp, "activated.yaml")
    write(config, f"""listen: 127.0.0.1:{free_port()}
threads: 2
upstream: {{ url: "http://127.0.0.1:{sim_port}" }}
logging: {{ level: warn, access_log: false }}
admin: {{ enabled: false }}
rules: {os.path.join(tmp, "rules.yaml")}
""")
    log = open(os.path.join(tmp, "activated.log"), "ab")
    old = start_activated(args.bin, config, log, holder.fileno())
    end = time.time() + 10
    while time.time() < end:
        try:
            if get(port, "/echo/ready", {}, timeout=1)[0] == 200: break
        except OSError:
            time.sleep(0.05)
    counts = {"attempts": 0, "lost": 0}
    stop, lock = threading.Event(), threading.Lock()

    def client():
        deadline = time.time() + 30
        for _ in range(10000):
            if stop.is_set() or time.time() >= deadline: return
            try:
                ok = get(port, "/echo/restart", {}, timeout=10)[0] == 200
            except OSError:
                ok = False
            with lock:
                counts["attempts"] += 1
                counts["lost"] += 0 if ok else 1

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads: t.start()
    time.sleep(1.0)
    t0 = time.time()
    old.send_signal(signal.SIGTERM)  # kill -TERM old; start new
    old.wait(timeout=30)
    new = start_activated(args.bin, config, log, holder.fileno())
    gap = time.time() - t0
    time.sleep(1.5)
    stop.set()
    for t in threads: t.join()
    new.send_signal(signal.SIGTERM); new.wait(timeout=30)
    print(f"3. restart through socket activation (kill -TERM old; start new, {gap * 1000:.0f} ms without a "
          f"process): connection attempts {counts['attempts']}, lost {counts['lost']}")
    return counts["lost"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True); ap.add_argument("--root", required=True)
    ap.add_argument("--reloads", type=int, default=20); ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="reload-bench-")
    procs = []
    try:
        sim_port, port, admin = free_port(), free_port(), free_port()
        sim_log = open(os.path.join(tmp, "sim.log"), "ab")
        procs.append(subprocess.Popen(["/usr/bin/python3", os.path.join(args.root, "scripts/legacy_sim.py"),
                                       "--port", str(sim_port), "--latency", "0.05"], stdout=sim_log, stderr=subprocess.STDOUT))
        wait_port(sim_port)
        rules_path = os.path.join(tmp, "rules.yaml")
        write(rules_path, rules())
        config = os.path.join(tmp, "cacheproxy.yaml")
        write(config, f"""listen: 127.0.0.1:{port}
threads: 2
upstream: {{ url: "http://127.0.0.1:{sim_port}", max_connections: 400 }}
logging: {{ level: info, access_log: false }}
admin: {{ listen: 127.0.0.1:{admin} }}
rules: {rules_path}
""")
        proxy_log = open(os.path.join(tmp, "proxy.log"), "ab")
        proxy = subprocess.Popen([args.bin, "--config", config], stdout=proxy_log, stderr=subprocess.STDOUT)
        procs.append(proxy)
        wait_port(port); wait_port(admin)
        print(f"# scripts/bench/reload.sh  {time.strftime('%Y-%m-%d %H:%M:%S')}  nproc {os.cpu_count()}  {args.bin}")
        errors = phase_reloads(args, proxy, admin, port, rules_path)
        phase_hit_ratio(args, proxy, admin, port, rules_path)
        lost = phase_restart(args, tmp, sim_port)
        sys.exit(1 if errors else 0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try: p.wait(timeout=10)
                except subprocess.TimeoutExpired: p.kill()
        if os.environ.get("BENCH_KEEP_TMP") != "1":
            subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
