#!/usr/bin/env python3
"""N identical requests, sent at the same moment on N open connections.

    coalesce_client.py --url http://127.0.0.1:PORT/path?q [-H 'Name: value']... [-n 1000]

Used by coalescing.sh. Python 3 standard library only (any python3 >= 3.7).

1. Opens N TCP connections to the target (blocking connects, one after the
   other), with SO_TIMESTAMPNS on each, then waits --settle seconds so the
   server has accepted them all: connection set-up is not part of what is
   measured.
2. Sends the same GET on every connection in one tight loop (all N requests
   leave within a few ms; the time that took is reported).
3. Waits (epoll) for every response (status line, headers, Content-Length or
   chunked body) and records for each one the moment its last byte reached
   this host's socket: the kernel's receive timestamp of that data
   (SO_TIMESTAMPNS, CLOCK_REALTIME), so the client's own speed at reading
   1000 sockets in Python does not count. Falls back to time.time() when the
   kernel gives no timestamp.

Prints one JSON object on stdout:
  n, ok (200s), statuses {code: n}, x_cache {value: n} (X-Cache or
  X-Cache-Status), errors (connection errors, timeouts), connect_s, send_ms
  (first to last send), first_ms / p50_ms / last_ms (completion times after
  the first send), spread_ms (last - first completion: how long after the
  fill landed the last waiter got its answer), timestamps ("kernel" or
  "client").
"""

import argparse
import json
import select
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux (x86, arm); absent from Python's module


class Conn:
    __slots__ = ("sock", "buf", "done", "t_done", "status", "xcache", "error", "need")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.done = False
        self.t_done = None
        self.status = None
        self.xcache = None
        self.error = None
        self.need = None   # total bytes of the response once the headers are in (None: not yet; -1: chunked)


def parse(c):
    """True once c.buf holds a whole response."""
    if c.need is None:
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(c.buf[:end]).decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        c.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        length = 0
        chunked = False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name in ("x-cache", "x-cache-status"):
                c.xcache = value
        c.need = -1 if chunked else end + 4 + length
    if c.need == -1:
        return c.buf.endswith(b"0\r\n\r\n")
    return len(c.buf) >= c.need


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("-H", "--header", action="append", default=[])
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=0.5, help="seconds between connecting and sending")
    ap.add_argument("--timeout", type=float, default=30.0, help="give up on answers after this long")
    a = ap.parse_args()

    u = urlsplit(a.url)
    host, port = u.hostname, u.port or 80
    target = u.path + ("?" + u.query if u.query else "")
    req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\n" % (target, host, port)
    for h in a.header:
        req += h + "\r\n"
    req = (req + "\r\n").encode("latin-1")

    t0 = time.monotonic()
    conns = []
    connect_errors = 0
    for _ in range(a.n):
        try:
            s = socket.create_connection((host, port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            conns.append(Conn(s))
        except OSError as e:
            connect_errors += 1
            print("connect error: %s" % e, file=sys.stderr)
    connect_s = time.monotonic() - t0
    time.sleep(a.settle)

    ep = select.epoll()
    by_fd = {}
    t_send0 = time.time()
    for c in conns:
        try:
            c.sock.sendall(req)
        except OSError as e:
            c.error = str(e)
            c.done = True
    t_send1 = time.time()
    for c in conns:
        if not c.done:
            c.sock.setblocking(False)
            by_fd[c.sock.fileno()] = c
            ep.register(c.sock.fileno(), select.EPOLLIN)

    kernel_ts = 0
    client_ts = 0
    pending = len(by_fd)
    deadline = time.monotonic() + a.timeout
    anc_size = socket.CMSG_SPACE(16)
    while pending and time.monotonic() < deadline:
        for fd, _ev in ep.poll(0.5):
            c = by_fd.get(fd)
            if c is None or c.done:
                continue
            try:
                data, anc, _flags, _addr = c.sock.recvmsg(65536, anc_size)
            except BlockingIOError:
                continue
            except OSError as e:
                c.error, c.done = str(e), True
                pending -= 1
                ep.unregister(fd)
                continue
            now = time.time()
            if not data:
                c.error, c.done = "closed before a whole response", True
                pending -= 1
                ep.unregister(fd)
                continue
            c.buf += data
            ts = None
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    ts = sec + nsec / 1e9
            if parse(c):
                c.done = True
                if ts is not None:
                    kernel_ts += 1
                else:
                    client_ts += 1
                c.t_done = ts if ts is not None else now
                pending -= 1
                ep.unregister(fd)
    for c in conns:
        if not c.done:
            c.error = "timeout"
        c.sock.close()

    statuses, xcache = {}, {}
    times = []
    errors = connect_errors
    for c in conns:
        if c.error:
            errors += 1
            continue
        statuses[str(c.status)] = statuses.get(str(c.status), 0) + 1
        k = c.xcache or "-"
        xcache[k] = xcache.get(k, 0) + 1
        times.append((c.t_done - t_send0) * 1000.0)
    times.sort()
    out = {
        "n": a.n,
        "ok": statuses.get("200", 0),
        "statuses": statuses,
        "x_cache": xcache,
        "errors": errors,
        "connect_s": round(connect_s, 3),
        "send_ms": round((t_send1 - t_send0) * 1000.0, 3),
        "first_ms": round(times[0], 3) if times else None,
        "p50_ms": round(times[len(times) // 2], 3) if times else None,
        "last_ms": round(times[-1], 3) if times else None,
        "spread_ms": round(times[-1] - times[0], 3) if times else None,
        "timestamps": "kernel" if client_ts == 0 else ("client" if kernel_ts == 0 else "mixed"),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
