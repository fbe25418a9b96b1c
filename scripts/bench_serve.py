"""Speed and memory of `digitnet serve` (the serve issue's bars), measured from outside the server.

Starts `digitnet serve --port 0` in a subprocess and sends it a 280x280 canvas PNG of a drawn digit
(RGBA, dark round strokes on white: what the page sends), then prints:

  time to first answer   from starting the process to the first 200 from /api/predict
  one client             round-trip p50 / p99 over --requests sequential predictions (keep-alive)
  8 clients at once      predictions per second and p99 round trip (each client its own connection)
  server peak RSS        VmHWM of the server process from /proc/PID/status, after all of the above

With --while-training the same figures are measured while the server trains a network in its child
process (started through POST /api/train/start: the textbook's settings, epochs enough to outlast the
measurement), against the training issue's bars (p50 <= 30 ms, 8 clients p99 <= 200 ms), and it adds:

  epoch saved -> page    from the checkpoint's write (its mtime) to the Server-Sent Event that reports
                         the epoch arriving here, for every epoch during the measurement (bar: <= 1 s)

Run it alone (`flock /tmp/digitnet-bench.lock python scripts/bench_serve.py --model model.npz`): the
figures depend on what else the 2 cores are doing.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests  # the training run and its event stream (--while-training)
from PIL import Image, ImageDraw

BARS = {"p50": 0.015, "throughput": 200, "p99_concurrent": 0.100, "rss_mb": 150, "first_answer": 1.0}
TRAINING_BARS = {"p50": 0.030, "p99_concurrent": 0.200, "progress": 1.0}


def canvas_png(side: int = 280) -> bytes:
    """A 4 drawn the way the page draws: round strokes 7.2% of the side wide, RGBA PNG."""
    image = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    pen = ImageDraw.Draw(image)
    width = round(0.072 * side)
    ink = (22, 22, 22, 255)  # the page's INK, #161616: neutral, so the server reads one channel, not three
    for stroke in ([(0.58, 0.16), (0.42, 0.4), (0.26, 0.62), (0.76, 0.62)], [(0.62, 0.36), (0.62, 0.86)]):
        points = [(x * side, y * side) for x, y in stroke]
        pen.line(points, fill=ink, width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=ink)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class Client:
    """One keep-alive HTTP/1.1 connection, as a browser tab keeps one.

    The standard library's http.client costs about 0.3 ms of CPU a request; ``requests`` costs
    about 2 ms, which on 2 shared cores was a fifth of all the CPU the measurement used, and
    slowed the server it was measuring.
    """

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body)
        response = self.connection.getresponse()
        return response.status, response.read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pss_mb(pid: int) -> float:
    """Proportional set size: resident memory, pages shared with other processes divided among them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def descendants(pid: int) -> list[int]:
    """The processes the server started (its worker processes, multiprocessing's resource tracker)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def start_server(model: str, data_dir: str | None, workers: int | None = None,
                 runs_dir: str | None = None) -> tuple[subprocess.Popen, str, float]:
    command = [sys.executable, "-m", "digitnet", "serve", "--model", model, "--port", "0"]
    if workers is not None:
        command += ["--workers", str(workers)]
    if data_dir:
        command += ["--data-dir", data_dir]
    if runs_dir:
        command += ["--runs-dir", runs_dir]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if " on http://" not in line:
        process.kill()
        sys.exit(f"the server did not start: {line.strip()} {process.stderr.read().strip()}")
    url = line.split(" on ", 1)[1].split(" ", 1)[0]
    return process, url, started


class ProgressWatcher:
    """Starts a training run on the server and follows its event stream like the page does,
    noting for each new epoch how long after its checkpoint was written the event arrived."""

    SETTINGS = {"epochs": 1000}  # the textbook's settings otherwise; stopped when the measurement ends

    def __init__(self, url: str, runs_dir: str):
        self.url, self.runs_dir = url, Path(runs_dir)
        self.delays: list[float] = []
        self.first_epoch = None
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._done = threading.Event()

    def start_run(self) -> None:
        answer = requests.post(self.url + "api/train/start", json={"settings": self.SETTINGS}, timeout=10)
        if answer.status_code != 202:
            sys.exit(f"cannot start a training run: {answer.text}")
        self.run = answer.json()["run"]
        self._thread.start()
        # Measure while it trains, not while it loads the data: wait for the first epoch.
        deadline = time.monotonic() + 120
        while self.first_epoch is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.first_epoch is None:
            sys.exit("the training run did not finish an epoch within 2 minutes")

    def _follow(self) -> None:
        seen = 0
        with requests.get(self.url + "api/train/events", stream=True, timeout=60) as response:
            for line in response.iter_lines(chunk_size=1, decode_unicode=True):
                if self._done.is_set():
                    return
                if not line.startswith("data: "):
                    continue
                arrived = time.time()
                status = json.loads(line[6:])
                if status["epochs_completed"] > seen and status.get("saved_epoch"):
                    seen = status["epochs_completed"]
                    written = (self.runs_dir / Path(status["run"]).name).stat().st_mtime
                    if self.first_epoch is None:
                        self.first_epoch = seen
                    else:
                        self.delays.append(arrived - written)

    def finish(self) -> None:
        self._done.set()
        requests.post(self.url + "api/train/stop", timeout=10)


def stage_breakdown(model: str, body: bytes, rounds: int = 100) -> list[tuple[str, float]]:
    """CPU milliseconds per prediction of each step, in this process (images.preprocess_with_notes's
    steps, in order: what `predict` and the server run)."""
    from digitnet import checkpoint
    from digitnet.images import decode, normalise, paper
    from digitnet.images import ink as locate

    ckpt = checkpoint.load(model)
    network = ckpt.best_network or ckpt.network
    totals: dict[str, float] = {}

    def timed(name, function, *args):
        start = time.process_time()
        result = function(*args)
        totals[name] = totals.get(name, 0.0) + time.process_time() - start
        return result

    for i in range(rounds + 5):
        if i == 5:
            totals.clear()  # warm-up done
        image = timed("decode the PNG (open_image)", decode.open_image, io.BytesIO(body))
        pixels, alpha = timed("pixels to floats, flatten alpha", decode.to_float_channels, image)
        flattened = timed("pixels to floats, flatten alpha", decode.composite, pixels, alpha)
        flat = timed("find the ink", paper._flat_paper, flattened) \
            if max(flattened.shape[:2]) <= 2 * locate.DETECT_SIDE else None
        if flat is not None:  # a clean drawing: found once, at full size, in the window around it
            ink, dark = timed("find the ink", locate._ink_on_flat_paper, flattened, *flat, None)[:2]
            factor = 1
        else:
            small, factor = timed("find the ink", locate.shrink_for_detection, flattened)
            ink, dark = timed("find the ink", locate.find_ink, small, None)
        timed("look for digits side by side", locate.digit_groups, ink)
        cropped = locate.crop_to_ink(ink)
        if factor > 1 and max(cropped.shape) < normalise.FINE_SIDE:
            cropped = timed("refine: find it again at full size", locate.refine, flattened, ink, factor, dark)
        reshaped = timed("normalise the strokes", normalise.normalise_strokes, locate.require_digit_size(cropped))
        boxed = timed("fit to 20 px, centre by mass", normalise.fit_to_box, cropped if reshaped is None else reshaped)
        grid = timed("fit to 20 px, centre by mass", normalise.centre_by_mass, boxed)
        timed("feedforward", network.feedforward, grid.reshape(1, -1))
    return [(name, seconds / rounds * 1000) for name, seconds in totals.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="model.npz", help="model to serve (default: model.npz)")
    parser.add_argument("--data-dir", default=None, help="passed to digitnet serve")
    parser.add_argument("--workers", type=int, default=None, help="passed to digitnet serve (default: its default)")
    parser.add_argument("--requests", type=int, default=400, help="sequential predictions (default: 400)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at once (default: 8)")
    parser.add_argument("--per-client", type=int, default=100, help="predictions per concurrent client (default: 100)")
    parser.add_argument("--while-training", action="store_true",
                        help="measure while the server trains a network (POST /api/train/start)")
    args = parser.parse_args()
    if not Path(args.model).is_file():
        sys.exit(f"{args.model}: no such model; train one (digitnet train) or pass --model PATH")
    body = canvas_png()
    bars = dict(BARS, **TRAINING_BARS) if args.while_training else BARS
    runs_dir = tempfile.mkdtemp(prefix="bench-serve-runs-") if args.while_training else None

    process, url, started = start_server(args.model, args.data_dir, args.workers, runs_dir)
    watcher = None
    try:
        session = Client(url)
        while True:  # time to the first answer, counted from starting the process
            status, answer = session.request("POST", "/api/predict", body)
            if status == 200:
                break
        first_answer = time.perf_counter() - started
        digit = json.loads(answer)["digit"]
        if args.while_training:
            watcher = ProgressWatcher(url, runs_dir)
            watcher.start_run()

        for _ in range(20):  # warm-up
            session.request("POST", "/api/predict", body)
        one = []
        for _ in range(args.requests):
            t = time.perf_counter()
            status, _ = session.request("POST", "/api/predict", body)
            one.append(time.perf_counter() - t)
            assert status == 200

        overhead = []  # HTTP alone: the smallest route, no image
        for _ in range(200):
            t = time.perf_counter()
            session.request("GET", "/api/model")
            overhead.append(time.perf_counter() - t)

        latencies: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(args.concurrency + 1)

        def client():
            own = Client(url)
            own.request("POST", "/api/predict", body)  # connect before the clock starts
            mine = []
            barrier.wait()
            for _ in range(args.per_client):
                t = time.perf_counter()
                status, _ = own.request("POST", "/api/predict", body)
                mine.append(time.perf_counter() - t)
                assert status == 200
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
        for thread in threads:
            thread.start()
        barrier.wait()
        t0 = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - t0
        throughput = len(latencies) / wall
        family = [process.pid] + descendants(process.pid)
        rss = peak_rss_mb(process.pid)
        rss_all = sum(peak_rss_mb(pid) for pid in family)  # shared pages counted once per process
        pss_all = sum(pss_mb(pid) for pid in family)
        if watcher is not None:
            watcher.finish()
    finally:
        process.terminate()
        process.wait(timeout=60)
        if runs_dir:
            shutil.rmtree(runs_dir, ignore_errors=True)

    rows = [
        ("time to first answer (process start to first 200)", f"{first_answer:.2f} s", f"<= {bars['first_answer']:g} s"),
        ("one client: round trip p50", f"{statistics.median(one) * 1000:.1f} ms", f"<= {bars['p50'] * 1000:g} ms"),
        ("one client: round trip p99", f"{percentile(one, 99) * 1000:.1f} ms", ""),
        ("one client: GET /api/model p50 (HTTP alone)", f"{statistics.median(overhead) * 1000:.1f} ms", ""),
        (f"{args.concurrency} clients: predictions per second", f"{throughput:.0f}/s", f">= {bars['throughput']}/s"),
        (f"{args.concurrency} clients: round trip p99", f"{percentile(latencies, 99) * 1000:.1f} ms",
         f"<= {bars['p99_concurrent'] * 1000:g} ms"),
        (f"{args.concurrency} clients: round trip p50", f"{statistics.median(latencies) * 1000:.1f} ms", ""),
        (f"server peak RSS (VmHWM), {len(family)} process(es) summed", f"{rss_all:.0f} MB", f"<= {bars['rss_mb']} MB"),
        ("  of which the server process itself", f"{rss:.0f} MB", ""),
        ("  PSS summed at the end (shared pages split)", f"{pss_all:.0f} MB", ""),
    ]
    if watcher is not None:
        delays = watcher.delays
        rows += [
            ("training: epochs completed during the measurement", f"{len(delays)}", ""),
            ("training: epoch saved -> page (SSE), worst", f"{max(delays) * 1000:.0f} ms" if delays else "n/a",
             f"<= {bars['progress'] * 1000:g} ms"),
            ("training: epoch saved -> page (SSE), median",
             f"{statistics.median(delays) * 1000:.0f} ms" if delays else "n/a", ""),
        ]
    during = " while training (textbook settings, child process)" if args.while_training else ""
    workers = "" if args.workers is None else f" --workers {args.workers}"
    print(f"digitnet serve --model {args.model}{workers}{during}: 280x280 canvas PNG ({len(body):,} bytes) read as {digit}; "
          f"{args.requests} sequential, {args.concurrency}x{args.per_client} concurrent predictions")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
          + f" on {os.cpu_count()} cores")
    print(f"| {'figure':<52} | {'measured':>10} | {'bar':>10} |")
    print(f"|{'-' * 54}|{'-' * 12}|{'-' * 12}|")
    for name, value, bar in rows:
        print(f"| {name:<52} | {value:>10} | {bar:>10} |")
    stages = stage_breakdown(args.model, body)
    print(f"\nwhere a prediction's CPU time goes (in-process, {sum(ms for _, ms in stages):.1f} ms in all):")
    for name, ms in stages:
        print(f"  {name:<40} {ms:6.1f} ms")


if __name__ == "__main__":
    main()
