#!/usr/bin/python3
"""Start the test app (app.py) under Debian's uvicorn with deploy/README.md's flags.

    /usr/bin/python3 tests/webapp/serve.py --port 8765 [--host 127.0.0.1] [-- extra uvicorn args]

is the same as

    cd tests/webapp && /usr/bin/python3 -m uvicorn app:app --host 127.0.0.1 --port 8765 \\
        --proxy-headers --forwarded-allow-ips 127.0.0.1

--port 0 picks a free port (printed first). The process becomes uvicorn (exec),
so its pid is uvicorn's and SIGTERM stops it.
"""
import argparse
import os
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The flags deploy/README.md section 1 gives (test_deploy_readme.py runs the
# README's own command line; this launcher is for the other tests and by hand).
README_FLAGS = ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]


def uvicorn_argv(host: str, port: int, extra=()) -> list:
    return [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(HERE),
            "--host", host, "--port", str(port), *README_FLAGS, *extra]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("extra", nargs="*", help="more uvicorn arguments (after --)")
    args = ap.parse_args()
    port = args.port
    if port == 0:
        with socket.socket() as s:
            s.bind((args.host, 0))
            port = s.getsockname()[1]
    print(f"webapp: http://{args.host}:{port}/static/index.html", flush=True)
    argv = uvicorn_argv(args.host, port, args.extra)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
