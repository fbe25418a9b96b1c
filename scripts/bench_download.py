#!/usr/bin/env python3
"""How long `digitnet download` takes when the first mirror stalls forever after its headers.

    python scripts/bench_download.py [--source ../shared/mnist] [--timeout SECONDS]

Two mirrors on 127.0.0.1: the first answers 200 with its headers and then sends
nothing, ever; the second serves the four files of --source (with their own
SHA256SUMS, passed as --checksums).  `digitnet download` runs as a user would run
it, in a fresh data folder, with the default --timeout unless one is given.
Bar (issue 10): all four files in <= 45 s with the default 15 s timeout, identical
to the source.  Prints the request log and one JSON line of figures.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
BAR_SECONDS = 45.0


def start_mirrors(source: Path):
    """/stall/<file>: headers, then silence until the end; /good/<file>: the file."""
    requests = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            _, mirror, name = self.path.split("/", 2)
            with lock:
                requests[(mirror, name)] += 1
            path = source / name
            if name not in FILES or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mirror == "stall":
                self.wfile.flush()
                stop.wait()  # forever, as far as the client can tell
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # the client hanging up on the stalled mirror is the point

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests, stop


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=root.parent / "shared" / "mnist",
                        help="folder with the four .gz files and their SHA256SUMS")
    parser.add_argument("--timeout", type=float, default=None, help="pass --timeout (default: digitnet's own)")
    args = parser.parse_args()
    sums = args.source / "SHA256SUMS"
    if not all((args.source / name).is_file() for name in FILES) or not sums.is_file():
        sys.exit(f"{args.source} needs the four MNIST .gz files and SHA256SUMS")

    server, requests, stop = start_mirrors(args.source)
    port = server.server_address[1]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "data"
        command = [sys.executable, "-m", "digitnet", "download", "--quiet",
                   "--mirror", f"http://127.0.0.1:{port}/stall/", "--mirror", f"http://127.0.0.1:{port}/good/",
                   "--checksums", str(sums), "--data-dir", str(target)]
        if args.timeout is not None:
            command += ["--timeout", str(args.timeout)]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        seconds = time.perf_counter() - started
        identical = all((target / name).is_file() and (target / name).read_bytes() == (args.source / name).read_bytes()
                        for name in FILES)
    stop.set()
    server.shutdown()
    print(done.stdout + done.stderr, end="")
    print("requests:", ", ".join(f"{mirror}/{name} x{n}" for (mirror, name), n in sorted(requests.items())))
    figures = {"seconds": round(seconds, 1), "bar_seconds": BAR_SECONDS, "exit_code": done.returncode,
               "identical_files": identical, "timeout": args.timeout or "default",
               "stalled_mirror_requests": sum(n for (m, _), n in requests.items() if m == "stall"),
               "good_mirror_requests": sum(n for (m, _), n in requests.items() if m == "good")}
    figures["meets_bar"] = done.returncode == 0 and identical and seconds <= BAR_SECONDS
    print(json.dumps(figures))
    return 0 if figures["meets_bar"] else 1


if __name__ == "__main__":
    sys.exit(main())
