"""Speed and memory of `digitnet serve` (issue 23's bars), measured from outside the server.

Starts `digitnet serve --port 0` in a subprocess and sends it 280x280 canvas PNGs, dark ink on white,
8-bit grey as the page sends them (static/png.js, byte for byte: ``page_png``): a drawn digit (round strokes, as the page draws
them), the same as RGBA (another client's upload: four times the pixels to inflate) and, with MNIST
in --data-dir, upscaled MNIST test digits (64 different ones, in turn).  Then it prints:

  time to first answer   from starting the process to the first 200 from /api/predict
  one client             round-trip p50 / p99 over --requests sequential predictions (keep-alive)
  8 clients at once      predictions per second and p99 round trip (each client its own connection)
  server peak RSS        VmHWM of the server process from /proc/PID/status, after all of the above
  the server's breakdown CPU ms of each step of a prediction in-process (the worker's work, then the
                         answer as the JSON text sent), the least disturbed of --breakdown-rounds (6)
                         rounds taken in turn with --old's trees; the steps are whatever
                         digitnet.images.pipeline calls

With --old DIR (a checkout of the code before the change: `git worktree add /tmp/old HEAD`; repeatable)
every figure is measured for that code too, server started with PYTHONPATH=DIR, and printed side by side.

With --while-training the same figures are measured while the server trains a network in its child
process (started through POST /api/train/start: the textbook's settings, epochs enough to outlast the
measurement), against the training issue's bars (p50 <= 30 ms, 8 clients p99 <= 200 ms), and it adds:

  epoch saved -> page    from the checkpoint's write (its mtime) to the Server-Sent Event that reports
                         the epoch arriving here, for every epoch during the measurement (bar: <= 1 s)

Run it alone (`flock /tmp/digitnet-bench.lock python scripts/bench_serve.py --model model.npz`): the
figures depend on what else the 2 cores are doing; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import requests  # the training run and its event stream (--while-training)
from PIL import Image, ImageDraw

BARS = {"p50": 0.005, "throughput": 400, "p99_concurrent": 0.050, "rss_mb": 150, "first_answer": 1.0, "cpu_ms": 1.2}
TRAINING_BARS = {"p50": 0.030, "p99_concurrent": 0.200, "progress": 1.0}


def canvas_png(side: int = 280, mode: str = "L") -> bytes:
    """A 4 drawn the way the page draws: round strokes 7.2% of the side wide, as the page sends it
    (``mode`` "L": 8-bit grey, static/png.js) or as another client might (``mode`` "RGBA")."""
    image = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    pen = ImageDraw.Draw(image)
    width = round(0.072 * side)
    ink = (22, 22, 22, 255)  # the page's INK, #161616: neutral, so the server reads one channel, not three
    for stroke in ([(0.58, 0.16), (0.42, 0.4), (0.26, 0.62), (0.76, 0.62)], [(0.62, 0.36), (0.62, 0.86)]):
        points = [(x * side, y * side) for x, y in stroke]
        pen.line(points, fill=ink, width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=ink)
    if mode == "L":
        return page_png(np.asarray(image.convert("L")))
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, "PNG")
    return buffer.getvalue()


def page_png(grey) -> bytes:
    """The bytes static/png.js sends for a canvas of (H, W) uint8 ``grey`` levels: every row with
    PNG filter 0 (none), deflated at zlib's level 6 (Chromium's CompressionStream("deflate"); the
    browser tests check that the page's bytes are these).  Pillow's encoder filters each row
    (mostly "Up" and "Paeth"), which the server then undoes: 0.08-0.25 ms a canvas that the page
    never costs it."""
    height, width = grey.shape
    rows = np.zeros((height, width + 1), np.uint8)
    rows[:, 1:] = grey

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


class Client:
    """One keep-alive HTTP/1.1 connection, as a browser tab keeps one (and, like a browser, connecting
    again when the server has closed it for being idle).

    The standard library's http.client costs about 0.3 ms of CPU a request; ``requests`` costs
    about 2 ms, which on 2 shared cores was a fifth of all the CPU the measurement used, and
    slowed the server it was measuring.
    """

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()  # closed while idle (keep-alive timeout): the next try reconnects
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


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


def family_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server and the processes it started, from /proc."""
    total = 0
    for member in [pid] + descendants(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th fields
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


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
                 runs_dir: str | None = None, env: dict | None = None) -> tuple[subprocess.Popen, str, float]:
    command = [sys.executable, "-m", "digitnet", "serve", "--model", model, "--port", "0"]
    if workers is not None:
        command += ["--workers", str(workers)]
    if data_dir:
        command += ["--data-dir", data_dir]
    if runs_dir:
        command += ["--runs-dir", runs_dir]
    started = time.perf_counter()
    # stderr to a file, not a pipe nobody reads: a chatty server must not block on a full pipe
    errors = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env,
                               cwd=(env or {}).get("PYTHONPATH"))
    line = process.stdout.readline()
    if " on http://" not in line:
        process.kill()
        process.wait()
        errors.seek(0)
        sys.exit(f"the server did not start: {line.strip()} {errors.read().strip()[-500:]}")
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


def mnist_canvases(data_dir: str | None, count: int = 64, side: int = 280, mode: str = "L") -> list[bytes]:
    """The first ``count`` MNIST test digits upscaled to side x side canvases, dark ink on white, the grey
    PNG the page would send if the digit were drawn on it (``page_png``; ``mode`` "RGBA": as another client might);
    [] without the MNIST test files."""
    import gzip

    folder = Path(data_dir or os.environ.get("DIGITNET_DATA_DIR") or "data")
    path = folder / "t10k-images-idx3-ubyte.gz"
    if not path.is_file():
        return []
    with gzip.open(path) as f:
        pixels = np.frombuffer(f.read(16 + 784 * count)[16:], np.uint8).reshape(count, 28, 28)
    bodies = []
    for digit in pixels:
        coverage = np.asarray(Image.fromarray(digit).resize((side, side), Image.BICUBIC), np.float32) / 255
        grey = (255 - coverage * (255 - 22)).round().astype(np.uint8)  # the page's INK #161616 on white
        if mode == "L":
            bodies.append(page_png(grey))
            continue
        buffer = io.BytesIO()
        Image.fromarray(grey).convert(mode).save(buffer, "PNG")
        bodies.append(buffer.getvalue())
    return bodies


class Bodies:
    """The canvases of one kind, handed out in turn (thread-safe enough: a race repeats one)."""

    def __init__(self, name: str, bodies: list[bytes]):
        self.name, self.bodies, self._next = name, bodies, 0

    def __call__(self) -> bytes:
        body = self.bodies[self._next % len(self.bodies)]
        self._next += 1
        return body


def stage_breakdown(model: str, bodies: list[bytes], rounds: int = 200) -> list[tuple[str, float]]:
    """CPU milliseconds per prediction of each step, in this process: what a worker runs
    (``predict.predict_bytes``: decode, the pipeline's steps, the verdict, the feedforward), then what
    the server adds (the answer, with its 28x28 input, as the JSON text it sends).

    The steps are found, not listed: every function of another digitnet.images module that
    digitnet.images.pipeline calls by name is timed (so the breakdown follows the pipeline as it
    changes); what pipeline.py does itself between them is one row."""
    import json as json_module

    from digitnet import checkpoint, images, predict
    from digitnet.images import pipeline

    try:  # as a prediction worker does (serve.workers._work), in the code that has it
        from digitnet.memory import keep_freed_memory
    except ImportError:
        pass
    else:
        keep_freed_memory()
    ckpt = checkpoint.load(model)
    network = ckpt.best_network or ckpt.network
    totals: dict[str, float] = {}
    depth = [0]

    def timed(name, function):
        def wrapper(*args, **kwargs):
            if depth[0]:
                return function(*args, **kwargs)
            depth[0] += 1
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                totals[name] = totals.get(name, 0.0) + time.process_time() - start
                depth[0] -= 1
        return wrapper

    patched = []
    for name, value in vars(pipeline).items():
        module = getattr(value, "__module__", "") or ""
        if callable(value) and module.startswith("digitnet.images.") and module != pipeline.__name__ \
                and not isinstance(value, type):
            patched.append((pipeline, name, value))
    patched.append((images, "open_image", images.open_image))
    if hasattr(images, "open_picture"):  # what predict reads an upload with, where the code has it
        patched.append((images, "open_picture", images.open_picture))
    patched.append((network, "feedforward", network.feedforward))
    for owner, name, function in patched:
        label = ("decode the upload: " if name in ("open_image", "open_picture") else "") + \
            (f"{function.__module__.rsplit('.', 1)[-1]}.{name}" if owner is not network else "feedforward")
        setattr(owner, name, timed(label, function))
    whole = 0.0
    # A worker serves a class for hours: its steady state is the figure.  The first few dozen
    # predictions of a fresh process cost up to 5 ms each (the heap growing to its working size,
    # first-use paths), which over 5 rounds of warm-up added 0.3-0.6 ms to the mean.
    warm_up = 50
    try:
        for i in range(rounds + warm_up):
            if i == warm_up:
                totals.clear()  # warm-up done
                whole = 0.0
            body = bodies[i % len(bodies)]
            start = time.process_time()
            answer = predict.predict_bytes(network, body)
            whole += time.process_time() - start
            if hasattr(answer, "to_json"):  # what the server sends (api.Recogniser.predict_json)
                timed("the answer as JSON (Prediction.to_json, the 28x28 input)", answer.to_json)(with_input=True)
            else:  # the code before it: the dict, then json.dumps
                record = timed("the answer as a dict (to_dict, the 28x28 input)", answer.to_dict)(with_input=True)
                timed("the answer as JSON (json.dumps)", json_module.dumps)(record, separators=(",", ":"))
    finally:
        for owner, name, function in patched:
            if owner is network:
                del network.feedforward
            else:
                setattr(owner, name, function)
    steps = sum(seconds for name, seconds in totals.items() if not name.startswith("the answer as"))
    totals["the rest (pipeline.py and predict.py themselves)"] = max(0.0, whole - steps)
    return [(name, seconds / rounds * 1000) for name, seconds in totals.items()]


def hand_over_cpu(model: str, body: bytes, rounds: int = 200) -> float:
    """The server process's own CPU ms a prediction costs when a worker process computes it
    (serve.workers.PredictionPool: sending the upload, waiting, reading the answer back; the JSON
    text itself where the code has ``predict_json``, which /api/predict calls, else the Prediction)."""
    from digitnet import checkpoint
    from digitnet.serve.workers import PredictionPool

    ckpt = checkpoint.load(model)
    pool = PredictionPool(ckpt.best_network or ckpt.network, processes=1)
    try:
        if not pool.wait_until_started(timeout=120):
            sys.exit("the worker process did not start")
        ask = getattr(pool, "predict_json", pool.predict)
        for _ in range(20):
            ask(body)
        start = time.process_time()
        for _ in range(rounds):
            ask(body)
        return (time.process_time() - start) / rounds * 1000
    finally:
        pool.close()


def breakdown_in(tree: str | None, model: str, data_dir: str | None) -> dict:
    """``stage_breakdown`` for each kind of canvas, run by the code in ``tree`` (a subprocess)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--breakdown-only", "--model", model]
    if data_dir:
        command += ["--data-dir", data_dir]
    done = subprocess.run(command, env=tree_env(tree), cwd=tree_root(tree), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        sys.exit(f"the breakdown failed{' with ' + tree if tree else ''}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def least_disturbed_breakdowns(trees: list[tuple[str, str | None]], args) -> dict:
    """``breakdown_in`` for each tree, --breakdown-rounds times, the trees in turn, their order reversed
    every other round (old, now, now, old, ...: a fixed order gave the last tree 0.1-0.2 ms more in
    every round of one run); for each kind of canvas the round with the smallest total is kept.  One
    process's figures drift by a fifth or more on a shared host (its steps' times rise and fall
    together), so a single round cannot tell the code's changes of 10% from the host's."""
    best: dict[str, dict] = {label: {} for label, _ in trees}
    for round_ in range(args.breakdown_rounds):
        for label, tree in (trees if round_ % 2 == 0 else trees[::-1]):
            found = breakdown_in(tree, args.model, args.data_dir)
            for name, steps in found.items():
                total = steps if name == "hand-over" else sum(v for _, v in steps)
                kept = best[label].get(name)
                if kept is None or total < (kept if name == "hand-over" else sum(v for _, v in kept)):
                    best[label][name] = steps
    return best


def tree_root(tree: str | None) -> str:
    """The folder holding the code to run (None: this checkout).  Children run with it as their
    PYTHONPATH and their working directory: ``python -m`` puts the working directory first on the
    path, so a child started from another checkout would run that checkout's code."""
    return str(Path(tree).resolve()) if tree else str(Path(__file__).resolve().parents[1])


def tree_env(tree: str | None) -> dict:
    """The environment that runs the code in ``tree`` (None: this checkout)."""
    return dict(os.environ, PYTHONPATH=tree_root(tree))


def measure(tree: str | None, kinds: list[Bodies], args) -> dict:
    """Every figure of the server running the code in ``tree``, for each kind of canvas."""
    runs_dir = tempfile.mkdtemp(prefix="bench-serve-runs-") if args.while_training else None
    process, url, started = start_server(args.model, args.data_dir, args.workers, runs_dir, tree_env(tree))
    watcher = None
    figures: dict = {"kinds": {}}
    try:
        session = Client(url)
        while True:  # time to the first answer, counted from starting the process
            status, answer = session.request("POST", "/api/predict", kinds[0].bodies[0])
            if status == 200:
                break
        figures["first_answer"] = time.perf_counter() - started
        figures["digit"] = json.loads(answer)["digit"]
        if args.while_training:
            watcher = ProgressWatcher(url, runs_dir)
            watcher.start_run()
        for kind in kinds:
            figures["kinds"][kind.name] = measure_kind(url, session, kind, args, process.pid)
        overhead = []  # HTTP alone: the smallest route, no image
        for _ in range(200):
            t = time.perf_counter()
            session.request("GET", "/api/model")
            overhead.append(time.perf_counter() - t)
        figures["overhead_p50"] = statistics.median(overhead)
        family = [process.pid] + descendants(process.pid)
        figures["processes"] = len(family)
        figures["rss"] = peak_rss_mb(process.pid)
        figures["rss_all"] = sum(peak_rss_mb(pid) for pid in family)  # shared pages counted once per process
        figures["pss_all"] = sum(pss_mb(pid) for pid in family)
        if watcher is not None:
            watcher.finish()
            figures["delays"] = watcher.delays
    finally:
        process.terminate()
        process.wait(timeout=60)
        if runs_dir:
            shutil.rmtree(runs_dir, ignore_errors=True)
    return figures


def round_trips(client: Client, kind: Bodies, count: int) -> list[float]:
    """Seconds of each of ``count`` predictions in a row on one connection."""
    times = []
    for _ in range(count):
        body = kind()
        t = time.perf_counter()
        status, _ = client.request("POST", "/api/predict", body)
        times.append(time.perf_counter() - t)
        assert status == 200, status
    return times


def measure_kind(url: str, session: Client, kind: Bodies, args, pid: int) -> dict:
    """One client's sequential round trips, then --concurrency clients at once, on this kind of canvas;
    and the server's CPU (all its processes) per prediction over the sequential ones."""
    round_trips(session, kind, 20)  # warm-up
    cpu = family_cpu(pid)
    one = round_trips(session, kind, args.requests)
    cpu = (family_cpu(pid) - cpu) / args.requests

    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(args.concurrency + 1)

    def client():
        own = Client(url)
        own.request("POST", "/api/predict", kind())  # connect before the clock starts
        barrier.wait()
        mine = round_trips(own, kind, args.per_client)
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
    return {"p50": statistics.median(one), "p99": percentile(one, 99), "throughput": len(latencies) / wall, "cpu": cpu,
            "p99_concurrent": percentile(latencies, 99), "p50_concurrent": statistics.median(latencies)}


def table(rows: list[tuple], columns: list[str]) -> None:
    widths = [56] + [max(10, len(c)) for c in columns[1:]]
    print("| " + " | ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(columns, widths)))
          + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths)))
              + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="model.npz", help="model to serve (default: model.npz)")
    parser.add_argument("--data-dir", default=None,
                        help="passed to digitnet serve; its MNIST test digits make the second kind of canvas")
    parser.add_argument("--workers", type=int, default=None, help="passed to digitnet serve (default: its default)")
    parser.add_argument("--requests", type=int, default=400, help="sequential predictions (default: 400)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at once (default: 8)")
    parser.add_argument("--per-client", type=int, default=100, help="predictions per concurrent client (default: 100)")
    parser.add_argument("--old", metavar="DIR", action="append", default=[],
                        help="also measure the code in DIR (a checkout before the change), side by side; "
                             "repeat for several (each is named by its folder's name)")
    parser.add_argument("--while-training", action="store_true",
                        help="measure while the server trains a network (POST /api/train/start)")
    parser.add_argument("--breakdown-rounds", type=lambda text: max(1, int(text)), default=6,
                        help="breakdowns per tree, in turn; each kind's least disturbed is printed (default: 6)")
    parser.add_argument("--breakdown-only", action="store_true", help=argparse.SUPPRESS)  # breakdown_in's child
    args = parser.parse_args()
    if not Path(args.model).is_file():
        sys.exit(f"{args.model}: no such model; train one (digitnet train) or pass --model PATH")
    args.model = str(Path(args.model).resolve())  # the children run in the code's folder (tree_root)
    args.data_dir = args.data_dir and str(Path(args.data_dir).resolve())
    kinds = [Bodies("drawn 4", [canvas_png()]), Bodies("drawn 4, RGBA", [canvas_png(mode="RGBA")])]
    mnist = mnist_canvases(args.data_dir)
    if mnist:
        kinds.append(Bodies("MNIST digits", mnist))
    if args.breakdown_only:
        found = {kind.name: stage_breakdown(args.model, kind.bodies) for kind in kinds}
        print(json.dumps(dict(found, **{"hand-over": hand_over_cpu(args.model, kinds[0].bodies[0])})))
        return
    bars = dict(BARS, **TRAINING_BARS) if args.while_training else BARS
    trees = [(Path(tree).name, tree) for tree in args.old] + [("now", None)]
    results = {label: measure(tree, kinds, args) for label, tree in trees}
    breakdowns = least_disturbed_breakdowns(trees, args)
    report(results, breakdowns, kinds, bars, args)


def report(results: dict, breakdowns: dict, kinds: list[Bodies], bars: dict, args) -> None:
    labels = list(results)
    during = " while training (textbook settings, child process)" if args.while_training else ""
    workers = "" if args.workers is None else f" --workers {args.workers}"
    print(f"digitnet serve --model {args.model}{workers}{during}: 280x280 canvas PNGs ("
          + ", ".join(f"{k.name}: {statistics.mean(map(len, k.bodies)):,.0f} bytes" for k in kinds)
          + f"); {args.requests} sequential, {args.concurrency}x{args.per_client} concurrent predictions each")
    if mnist := [k for k in kinds if k.name == "MNIST digits"]:
        print(f"MNIST digits: the first {len(mnist[0].bodies)} test digits upscaled 10x, in turn")
    else:
        print("(no MNIST test files in --data-dir: drawn canvases only)")
    for tree in args.old:
        print(f"{Path(tree).name}: the code in {tree}; now: this checkout")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
          + f" on {os.cpu_count()} cores")

    def each(get, fmt):
        return tuple(fmt(get(results[label])) for label in labels)

    ms = lambda v: f"{v * 1000:.1f} ms"  # noqa: E731
    per_second = lambda v: f"{v:.0f}/s"  # noqa: E731
    ms2 = lambda v: f"{v * 1000:.2f} ms"  # noqa: E731
    seconds = lambda v: f"{v:.2f} s"  # noqa: E731
    rows = [("time to first answer (process start to first 200)", *each(lambda r: r["first_answer"], seconds),
             f"<= {bars['first_answer']:g} s")]
    for kind in kinds:
        get = lambda key: (lambda r: r["kinds"][kind.name][key])  # noqa: E731
        rows += [
            (f"{kind.name}: one client, round trip p50", *each(get("p50"), ms), f"<= {bars['p50'] * 1000:g} ms"),
            (f"{kind.name}: one client, round trip p99", *each(get("p99"), ms), ""),
            (f"{kind.name}: server CPU a prediction, all its processes", *each(get("cpu"), ms2),
             ""),
            (f"{kind.name}: {args.concurrency} clients, predictions/s", *each(get("throughput"), per_second),
             f">= {bars['throughput']}/s"),
            (f"{kind.name}: {args.concurrency} clients, round trip p99", *each(get("p99_concurrent"), ms),
             f"<= {bars['p99_concurrent'] * 1000:g} ms"),
            (f"{kind.name}: {args.concurrency} clients, round trip p50", *each(get("p50_concurrent"), ms), ""),
        ]
    rows += [
        ("one client: GET /api/model p50 (HTTP alone)", *each(lambda r: r["overhead_p50"], ms), ""),
        ("server peak RSS (VmHWM), its processes summed", *each(lambda r: r["rss_all"], lambda v: f"{v:.0f} MB"),
         f"<= {bars['rss_mb']} MB"),
        ("  of which the server process itself", *each(lambda r: r["rss"], lambda v: f"{v:.0f} MB"), ""),
        ("  PSS summed at the end (shared pages split)", *each(lambda r: r["pss_all"], lambda v: f"{v:.0f} MB"), ""),
    ]
    for kind in kinds:
        rows.append((f"{kind.name}: the server's CPU a prediction (breakdown)",
                     *(f"{sum(v for _, v in breakdowns[label][kind.name]):.2f} ms" for label in labels),
                     f"<= {bars['cpu_ms']:g} ms"))
    if args.while_training:
        for label in labels:
            delays = results[label].get("delays") or []
            rows.append((f"training ({label}): epoch saved -> page (SSE), worst",
                         *([""] * (labels.index(label))), f"{max(delays) * 1000:.0f} ms" if delays else "n/a",
                         *([""] * (len(labels) - labels.index(label) - 1)), f"<= {bars['progress'] * 1000:g} ms"))
    table(rows, ["figure", *labels, "bar"])
    for kind in kinds:
        print(f"\nwhere a prediction's CPU time goes, {kind.name} (ms, in-process; "
              + ", ".join(f"{label}: {sum(v for _, v in breakdowns[label][kind.name]):.2f} ms in all"
                          for label in labels)
              + "):")
        names = list(dict.fromkeys(name for label in reversed(labels) for name, _ in breakdowns[label][kind.name]))
        for name in names:
            values = [dict(breakdowns[label][kind.name]).get(name) for label in labels]
            print(f"  {name:<56} " + " ".join("     -" if v is None else f"{v:6.2f}" for v in values))
    hand_over = {label: breakdowns[label].get("hand-over") for label in labels}
    if any(hand_over.values()):
        print("\nthe hand-over to a worker process and back, the server process's own CPU a prediction (ms): "
              + ", ".join(f"{label} {value:.2f}" for label, value in hand_over.items() if value is not None))


if __name__ == "__main__":
    main()
