"""Speed and memory of the inside-the-network routes (issue 18's bars), measured from outside the server.

For a 784-30-10 and a 784-800-10 model in turn it starts `digitnet serve --port 0 --workers 0` in a
subprocess and, from one keep-alive client, sends a 280x280 canvas-like PNG of an MNIST test digit
(dark strokes on white, RGBA, as the page sends a drawing), then prints:

  POST /api/explain       round-trip p50 / p90 over --requests requests (bars: 20 ms, 40 ms)
  POST /api/teach         round-trip p50 / p90, every step continuing one session (bar: 30 ms)
  8 taught sessions       the server's VmRSS (/proc/PID/status) with 8 taught 784-800-10 copies alive
                          (each taught once and explained once, as the page does) minus VmRSS before
                          any was taught (bar: 150 MB)

and the load average beside the timings (the 2 cores may be shared).  Models: --small / --large, else
/tmp/work/weights_after/{default,elastic}.npz when present, else untrained networks of those shapes
(saved into a temporary folder: the time of a request does not depend on what the weights are).

    flock /tmp/digitnet-bench.lock .venv/bin/python scripts/bench_explain.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from bench_serve import Client, canvas_png, percentile, start_server

BARS = {"explain 784-30-10": 0.020, "explain 784-800-10": 0.040, "teach": 0.030, "sessions_mb": 150}
DEFAULTS = {"small": ("/tmp/work/weights_after/default.npz", [784, 30, 10], "quadratic"),
            "large": ("/tmp/work/weights_after/elastic.npz", [784, 800, 10], "log-likelihood")}
SESSIONS = 8
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "mnist"


def digit_png(data_dir: str | None) -> tuple[bytes, str]:
    """The first 4 of the MNIST test split (in --data-dir, else `digitnet`'s data folder, else the shared
    copy beside the checkout), drawn as the page would send it: 280x280, dark on white, RGBA; without
    the data, bench_serve's drawn 4."""
    from digitnet import data
    from digitnet.serve.api import TEST_FILES

    folders = [data.resolve_data_dir(data_dir)] + ([] if data_dir else [SHARED_MNIST])
    found = [folder for folder in folders if not data.missing_files(folder, TEST_FILES)]
    if not found:
        return canvas_png(), "a drawn 4 (no MNIST test files found)"
    images, labels = data.load_pair(found[0], "t10k")
    index = int((labels == 4).nonzero()[0][0])
    picture = Image.fromarray(255 - images[index].reshape(28, 28).astype("uint8"), "L")
    picture = picture.resize((280, 280), Image.Resampling.BILINEAR).convert("RGBA")
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue(), f"MNIST test image {index} (a 4) as a 280x280 RGBA canvas PNG"


def model_path(given: str | None, which: str, folder: Path) -> str:
    """--small/--large, else the trained default when present, else an untrained network of that shape."""
    if given:
        return given
    default, sizes, cost = DEFAULTS[which]
    if Path(default).is_file():
        return default
    import numpy as np

    from digitnet import checkpoint
    from digitnet.network import Network

    path = folder / f"untrained-{which}.npz"
    checkpoint.save(path, Network(sizes, cost=cost, rng=np.random.default_rng(0)), {})
    return str(path)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timings(client: Client, path: str, body: bytes, n: int) -> tuple[list[float], dict]:
    """Round-trip seconds of n POSTs of ``body`` to ``path`` (after 10 not counted), and the last answer."""
    seconds, answer = [], None
    for i in range(n + 10):
        start = time.perf_counter()
        status, data = client.request("POST", path, body)
        elapsed = time.perf_counter() - start
        if status != 200:
            sys.exit(f"{path}: {status} {data[:200]!r}")
        if i >= 10:
            seconds.append(elapsed)
        answer = data
    return seconds, json.loads(answer)


def measure(model: str, body: bytes, n: int, runs_dir: str, memory: bool) -> dict:
    process, url, _ = start_server(model, None, workers=0, runs_dir=runs_dir)
    try:
        client = Client(url)
        explained, answer = timings(client, "/api/explain", body, n)
        sizes = [784] + [len(layer["activation"]) for layer in answer["layers"]] + [10]
        result = {"sizes": sizes, "explain": explained, "load_explain": os.getloadavg()}
        session = json.loads(client.request("POST", "/api/teach?label=9", body)[1])["session"]
        result["teach"], _ = timings(client, f"/api/teach?label=9&session={session}", body, n)
        result["load_teach"] = os.getloadavg()
        client.request("POST", "/api/teach/forget", json.dumps({"session": session}).encode())
        if memory:
            result["rss_none"] = rss_mb(process.pid)
            for _ in range(SESSIONS):
                made = json.loads(client.request("POST", "/api/teach?label=9", body)[1])["session"]
                client.request("POST", f"/api/explain?session={made}", body)
            result["rss_sessions"] = rss_mb(process.pid)
        return result
    finally:
        process.terminate()
        process.wait(30)


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


def verdict(value: float, bar: float) -> str:
    return "✓" if value <= bar else "✗ over the bar"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", help="a 784-30-10 checkpoint (default: default.npz, else untrained)")
    parser.add_argument("--large", help="a 784-800-10 checkpoint (default: elastic.npz, else untrained)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--data-dir", help="where the MNIST test files are (for the digit sent)")
    args = parser.parse_args()
    body, what = digit_png(args.data_dir)
    print(f"sending {what}, {len(body)} bytes; {args.requests} requests per figure, one client")
    with tempfile.TemporaryDirectory() as folder:
        for which in ("small", "large"):
            model = model_path(getattr(args, which), which, Path(folder))
            result = measure(model, body, args.requests, str(Path(folder) / "runs"), memory=which == "large")
            shape = "-".join(map(str, result["sizes"]))
            explain, teach = result["explain"], result["teach"]
            bar = BARS.get(f"explain {shape}", BARS["explain 784-800-10"])
            load = " ".join(f"{v:.2f}" for v in result["load_explain"])
            print(f"{shape} ({Path(model).name}): POST /api/explain p50 {ms(percentile(explain, 50))} "
                  f"p90 {ms(percentile(explain, 90))}  (bar p50 <= {ms(bar)} "
                  f"{verdict(percentile(explain, 50), bar)})  load average {load}")
            load = " ".join(f"{v:.2f}" for v in result["load_teach"])
            print(f"{shape} ({Path(model).name}): POST /api/teach   p50 {ms(percentile(teach, 50))} "
                  f"p90 {ms(percentile(teach, 90))}  (bar p50 <= {ms(BARS['teach'])} "
                  f"{verdict(percentile(teach, 50), BARS['teach'])})  load average {load}")
            if "rss_sessions" in result:
                more = result["rss_sessions"] - result["rss_none"]
                print(f"{shape}: server VmRSS {result['rss_none']:.0f} MB with no taught session, "
                      f"{result['rss_sessions']:.0f} MB with {SESSIONS} alive: {more:+.0f} MB "
                      f"(bar <= {BARS['sessions_mb']} MB {verdict(more, BARS['sessions_mb'])})")


if __name__ == "__main__":
    main()
