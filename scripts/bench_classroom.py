"""A classroom on one server (issue 21's bar), measured from outside: `digitnet serve` in a subprocess
on loopback, and in this one process (asyncio, raw sockets, so the clients are not the bottleneck):

  40 browsers      each with an event stream open (GET /api/train/events) and two keep-alive
                   connections: a prediction every 300 ms (a 280x280 canvas PNG, as the page sends it)
                   on one, an explanation every 5 s on the other (--browsers, --predict-every, --explain-every)
  the teacher      trains a 784-100-10 network from the page (POST /api/train/start with the page's
                   additions, real MNIST from /work/shared/mnist when present), stopped at the end
  300 idle sockets connected and silent, reconnected a second after the server drops one (--idle)
  20 tricklers     a request's headers one byte every 4 s, started again a second after being cut off (--tricklers)
  a new client     every second: connect, GET /api/model, read the answer (the health check)

and prints, against the bars (zero errors and zero 503s for the 40, prediction p99 <= 250 ms, every
stream receives every epoch event, server memory <= 200 MB, a new client answered within 1 s):

  errors / 503s for the 40, prediction p50/p99, explanation p50/p99, epochs the run completed and
  the epochs each stream saw (min over streams), the server's peak RSS (VmHWM of the server process;
  and, sampled each second, with its prediction workers as PSS; the training child is not counted), the
  new client's slowest answer, how long a trickler held a connection at most, and this process's CPU
  time and event-loop lag (the proof that the clients kept up).

Run it alone:  flock /tmp/digitnet-bench.lock sh -c 'uptime; .venv/bin/python scripts/bench_classroom.py; uptime'
(PYTHONPATH=/path/to/other/checkout measures another version of the server: it starts `python -m digitnet serve`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import canvas_png, descendants, peak_rss_mb, percentile  # noqa: E402

SHARED_MNIST = Path("/work/shared/mnist")
BARS = {"p99": 0.250, "rss_mb": 200.0, "new_client": 1.0}
REQUEST_TIMEOUT = 10.0  # seconds before a browser's request counts as an error


class Http:
    """One keep-alive HTTP/1.1 connection as a browser holds it: requests one after another."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    retried = 0  # requests sent again after a keep-alive race (all connections)

    async def request(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> tuple[int, bytes]:
        """Send and read one request.  When a reused connection closes before any byte of the answer
        (the server ended an idle keep-alive connection as the request went out), send it once more on a
        new connection, as browsers do."""
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Accept: */*"]
        if method == "POST":
            head += [f"Origin: http://127.0.0.1:{self.port}", f"Content-Length: {len(body)}"]
            if content_type:
                head.append(f"Content-Type: {content_type}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in (1, 2):
            reused = self.writer is not None and not self.writer.is_closing()
            if not reused:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                self.writer.write(request)
                status, headers = await read_head(self.reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if reused and attempt == 1:
                    Http.retried += 1
                    continue
                raise
            answer = await read_body(self.reader, headers)
            if headers.get("connection", "").lower() == "close":
                self.close()
            return status, answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await reader.readline()
    if not line:
        raise ConnectionError("the server closed the connection")
    status = int(line.split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if "chunked" in headers.get("transfer-encoding", ""):
        return b"".join([chunk async for chunk in chunks(reader)])
    return await reader.read()


async def chunks(reader: asyncio.StreamReader):
    """The chunks of a chunked body, as they arrive (an event stream is one)."""
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


class Tally:
    """What the 40 browsers saw."""

    def __init__(self):
        self.latency = {"predict": [], "explain": []}
        self.errors: dict[str, int] = {}
        self.busy = 0  # 503s
        self.stream_epochs: list[set[int]] = []
        self.stream_reconnects = 0
        self.stream_events = 0
        self.stream_bytes = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def browser_requests(port: int, tally: Tally, kind: str, every: float, body: bytes, until: float) -> None:
    """One keep-alive connection sending ``kind`` every ``every`` seconds (at a fixed pace, as a
    pointer-move throttle does; a late answer delays the next one)."""
    http = Http(port)
    path = "/api/predict" if kind == "predict" else "/api/explain"
    next_at = time.monotonic() + random.uniform(0, every)
    while True:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if time.monotonic() >= until:
            break
        next_at += every
        start = time.perf_counter()
        try:
            status, _ = await asyncio.wait_for(http.request("POST", path, body, "image/png"), REQUEST_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            tally.error(f"{kind}: {type(e).__name__}")
            http.close()
            continue
        if status == 200:
            tally.latency[kind].append(time.perf_counter() - start)
        elif status == 503:
            tally.busy += 1
        else:
            tally.error(f"{kind}: HTTP {status}")
        next_at = max(next_at, time.monotonic())
    http.close()


async def event_stream(port: int, tally: Tally, run: dict, until: float) -> None:
    """The page's EventSource: the epochs it is told of (``epochs_completed`` of the teacher's run), and
    reconnects as EventSource does when the stream ends."""
    seen: set[int] = set()
    tally.stream_epochs.append(seen)
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /api/train/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         "Accept: text/event-stream\r\n\r\n".encode())
            status, headers = await asyncio.wait_for(read_head(reader), REQUEST_TIMEOUT)
            if status != 200:
                tally.busy += status == 503
                if status != 503:
                    tally.error(f"events: HTTP {status}")
                writer.close()
                await asyncio.sleep(1.0)
                continue
            source = chunks(reader) if "chunked" in headers.get("transfer-encoding", "") else raw_chunks(reader)
            pending = b""
            async for chunk in source:
                tally.stream_bytes += len(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.startswith(b"data: "):
                        tally.stream_events += 1
                        status_now = json.loads(line[6:])
                        if run.get("run") and status_now.get("run") == run["run"] and status_now["epochs_completed"]:
                            seen.add(status_now["epochs_completed"])
                if time.monotonic() >= until + 2:
                    break
            writer.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            tally.error(f"events: {type(e).__name__}")
        if time.monotonic() < until:
            tally.stream_reconnects += 1
            await asyncio.sleep(1.0)  # EventSource's retry


async def raw_chunks(reader: asyncio.StreamReader):
    while chunk := await reader.read(65536):
        yield chunk


async def idle_socket(port: int, until: float, counts: dict) -> None:
    """A connection that says nothing; opened again when the server drops it."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["idle_refused"] += 1
            await asyncio.sleep(1.0)
            continue
        try:
            await asyncio.wait_for(reader.read(), max(0.1, until - time.monotonic()))
            counts["idle_dropped"] += 1
        except (asyncio.TimeoutError, OSError):
            pass
        writer.close()
        await asyncio.sleep(1.0)  # a browser's idle connection comes back, but not in a tight loop


async def trickler(port: int, until: float, held: list[tuple[float, bool]], every: float = 4.0) -> None:
    """A request's headers one byte every ``every`` seconds: (how long the server let it hold the
    connection, whether the server cut it) for each connection, the last one still open at the end."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(1.0)
            continue
        began, cut = time.monotonic(), False
        try:
            writer.write(f"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(4096), every)
                except asyncio.TimeoutError:
                    writer.write(b"a")
                    await writer.drain()
                    continue
                while data:  # its answer (408, 400), then the close
                    data = await reader.read(4096)
                cut = True
                break
        except OSError:
            cut = True
        finally:
            held.append((time.monotonic() - began, cut))
            writer.close()
        await asyncio.sleep(1.0)


async def new_client(port: int, until: float, answered: list[float], failures: list[str]) -> None:
    """Every second a fresh connection asks GET /api/model: how long until it has its answer."""
    while time.monotonic() < until:
        started = time.perf_counter()
        http = Http(port)
        try:
            status, _ = await asyncio.wait_for(http.request("GET", "/api/model"), REQUEST_TIMEOUT)
            answered.append(time.perf_counter() - started)
            if status != 200:
                failures.append(f"HTTP {status}")
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            answered.append(time.perf_counter() - started)
            failures.append(type(e).__name__)
        http.close()
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))


async def loop_lag(until: float, lags: list[float]) -> None:
    while time.monotonic() < until:
        before = time.perf_counter()
        await asyncio.sleep(0.1)
        lags.append(time.perf_counter() - before - 0.1)


def pss_mb(pid: int) -> float:
    """Proportional set size: resident memory, pages shared with other processes (the prediction
    workers are forked from the server) divided among them, so a sum over processes counts them once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_split(pid: int, run: dict) -> tuple[float, float]:
    """(CPU seconds of the server and its prediction workers, of the training child and its children)."""
    trainer = run.get("pid")
    training = {trainer, *descendants(trainer)} if trainer else set()
    serving = [pid, *(child for child in descendants(pid) if child not in training)]
    return sum(map(cpu_seconds, serving)), sum(map(cpu_seconds, filter(None, training)))


async def memory(pid: int, run: dict, until: float, peaks: dict) -> None:
    """The server's memory with its prediction workers (PSS summed; not the training child nor its
    children), each second."""
    while time.monotonic() < until:
        trainer = run.get("pid")
        skip = {trainer, *descendants(trainer)} if trainer else set()
        total = pss_mb(pid) + sum(pss_mb(child) for child in descendants(pid) if child not in skip)
        peaks["with_workers"] = max(peaks["with_workers"], total)
        peaks["training_cpu"] = max(peaks.get("training_cpu", 0.0), cpu_split(pid, run)[1])  # gone once it ends
        await asyncio.sleep(1.0)


async def teacher(port: int, run: dict, epochs: int, tries: float = 30.0) -> None:
    """The page's Train button: the form's settings plus what the page adds to every run.  A server that
    refuses (503: no connection free) is asked again each second for ``tries`` seconds, as a teacher would
    click again; ``run["refused"]`` counts the refusals."""
    settings = {"hidden_sizes": [100], "epochs": epochs}
    deadline = time.monotonic() + tries
    run["refused"] = 0
    while time.monotonic() < deadline:
        http = Http(port)
        try:
            status, described = await asyncio.wait_for(http.request("GET", "/api/train/settings"), REQUEST_TIMEOUT)
            if status == 200:
                page = json.loads(described).get("page", {})
                body = json.dumps({"settings": {**settings, **page}}).encode()
                status, answer = await asyncio.wait_for(
                    http.request("POST", "/api/train/start", body, "application/json"), REQUEST_TIMEOUT)
                if status == 202:
                    run.update(json.loads(answer))
                    log(f"the teacher started {run['run']}")
                    return
                log(f"the teacher's start was answered {status}: {answer[:200]!r}")
            run["refused"] += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            run["refused"] += 1
            log(f"the teacher's start failed: {type(e).__name__}")
        finally:
            http.close()
        await asyncio.sleep(1.0)
    log("the teacher could not start a run")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def training_status(port: int, tries: float = 10.0) -> dict:
    """GET /api/train, asked again each 0.2 s for ``tries`` seconds while refused (503: no connection free)."""
    deadline = time.monotonic() + tries
    while True:
        http = Http(port)
        try:
            status, answer = await asyncio.wait_for(http.request("GET", "/api/train"), REQUEST_TIMEOUT)
            if status == 200:
                return json.loads(answer)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            pass
        finally:
            http.close()
        if time.monotonic() > deadline:
            return {}
        await asyncio.sleep(0.2)


async def stop_training(port: int, tries: float = 10.0) -> None:
    """Stop the teacher's run (SIGTERM to the server would too, but waits for the epoch's end); asked
    again while refused."""
    deadline = time.monotonic() + tries
    while time.monotonic() < deadline:
        http = Http(port)
        try:
            status, _ = await asyncio.wait_for(http.request("POST", "/api/train/stop"), REQUEST_TIMEOUT)
            if status != 503:
                return
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            pass
        finally:
            http.close()
        await asyncio.sleep(0.2)


async def classroom(port: int, pid: int, args) -> dict:
    body = canvas_png(280, mode=args.canvas)
    tally, run = Tally(), {}
    counts = {"idle_refused": 0, "idle_dropped": 0}
    held, answered, failures, lags = [], [], [], []
    peaks = {"with_workers": 0.0}
    until = time.monotonic() + args.seconds + 30  # the crowd arrives before the run starts
    tasks = [asyncio.create_task(idle_socket(port, until, counts)) for _ in range(args.idle)]
    tasks += [asyncio.create_task(trickler(port, until, held)) for _ in range(args.tricklers)]
    tasks += [asyncio.create_task(event_stream(port, tally, run, until)) for _ in range(args.browsers)]
    await asyncio.sleep(2.0)  # the idle sockets and the streams are in
    log(f"{args.idle} idle sockets, {args.tricklers} tricklers and {args.browsers} streams connecting")
    await teacher(port, run, args.epochs)
    until = time.monotonic() + args.seconds
    started_cpu, started_split = time.process_time(), cpu_split(pid, run)
    for _ in range(args.browsers):
        tasks.append(asyncio.create_task(browser_requests(port, tally, "predict", args.predict_every, body, until)))
        tasks.append(asyncio.create_task(browser_requests(port, tally, "explain", args.explain_every, body, until)))
    tasks += [asyncio.create_task(new_client(port, until, answered, failures)),
              asyncio.create_task(loop_lag(until, lags)), asyncio.create_task(memory(pid, run, until, peaks))]
    for second in range(int(args.seconds)):
        await asyncio.sleep(1.0)
        if second % 30 == 29:
            log(f"{second + 1} s: {len(tally.latency['predict'])} predictions, {sum(tally.errors.values())} errors, "
                f"{tally.busy} 503s, epoch {max(map(max, filter(None, tally.stream_epochs)), default=0)}")
    await asyncio.sleep(args.seconds - int(args.seconds))
    ended_split = cpu_split(pid, run)
    await stop_training(port)  # the run's last epoch is then final: every stream must have been told of it
    final = await training_status(port)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and final.get("running"):
        await asyncio.sleep(0.2)
        final = await training_status(port)
    epochs = final.get("epochs_completed") or 0
    while time.monotonic() < deadline and any(epochs not in seen for seen in tally.stream_epochs):
        await asyncio.sleep(0.2)  # the last events are on their way
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"tally": tally, "run": run, "final": final, "counts": counts, "held": held, "answered": answered,
            "failures": failures, "lags": lags, "peaks": peaks, "cpu": time.process_time() - started_cpu,
            "server_cpu": ended_split[0] - started_split[0],
            "training_cpu": max(ended_split[1], peaks.get("training_cpu", 0.0)) - started_split[1]}


def start_server(args, workdir: Path) -> tuple[subprocess.Popen, int]:
    model = Path(args.model).resolve() if args.model else make_model(workdir / "model.npz")
    command = [sys.executable, "-m", "digitnet", "serve", "--model", str(model), "--port", "0",
               "--runs-dir", str(workdir / "runs")]
    data_dir = args.data_dir or (str(SHARED_MNIST) if SHARED_MNIST.is_dir() else None)
    if data_dir:
        command += ["--data-dir", data_dir]
    if args.workers is not None:
        command += ["--workers", str(args.workers)]
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for _ in range(20):
        line = process.stdout.readline()
        if "http://" in line:
            port = int(line.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            return process, port
        if not line:
            break
    process.kill()
    raise SystemExit("the server did not start (run `digitnet serve` by hand to see why)")


def make_model(path: Path) -> Path:
    """A 784-100-10 network with random weights: the figures do not depend on what it learnt."""
    import numpy as np

    from digitnet import checkpoint
    from digitnet.network import Network

    return checkpoint.save(path, Network([784, 100, 10], rng=np.random.default_rng(0)), {"epochs_completed": 0})


def report(result: dict, server_hwm: float, args) -> bool:
    tally = result["tally"]
    predict, explain = sorted(tally.latency["predict"]), sorted(tally.latency["explain"])
    epochs = result["final"].get("epochs_completed") or 0
    streams = [len(seen & set(range(1, epochs + 1))) for seen in tally.stream_epochs]
    errors = sum(tally.errors.values())
    p99 = percentile(predict, 99) if predict else float("inf")
    newest = max(result["answered"], default=float("inf"))
    server_memory = server_hwm
    print(f"{args.browsers} browsers for {args.seconds:g} s, {args.idle} idle sockets, {args.tricklers} tricklers; "
          f"canvases {args.canvas} PNG ({len(canvas_png(280, mode=args.canvas)):,} bytes)")
    print(f"  the teacher's run:   {result['run'].get('run') or 'NOT STARTED'} "
          f"(refused {result['run'].get('refused', 0)} times first)")
    print(f"  errors (the {args.browsers}):   {errors} {dict(sorted(tally.errors.items())) if errors else ''}")
    print(f"  503s (the {args.browsers}):     {tally.busy}")
    if predict:
        print(f"  predictions:         {len(predict)} ({len(predict) / args.seconds:.0f}/s of the "
              f"{args.browsers / args.predict_every:.0f}/s asked), p50 {statistics.median(predict) * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms (bar {BARS['p99'] * 1000:.0f} ms)")
    if explain:
        print(f"  explanations:        {len(explain)}, p50 {statistics.median(explain) * 1000:.0f} ms, "
              f"p99 {percentile(explain, 99) * 1000:.0f} ms")
    print(f"  epochs completed:    {epochs}; streams saw every one: {sum(s == epochs for s in streams)} of "
          f"{len(streams)} (fewest seen {min(streams, default=0)}; stream reconnects {tally.stream_reconnects}; "
          f"{tally.stream_events} events, {tally.stream_bytes / 1e6:.0f} MB in all)")
    print(f"  server memory:       VmHWM {server_hwm:.0f} MB (bar {BARS['rss_mb']:.0f} MB); with its prediction "
          f"workers (PSS) {result['peaks']['with_workers']:.0f} MB at most")
    print(f"  new client answered: slowest {newest * 1000:.0f} ms of {len(result['answered'])} "
          f"(bar {BARS['new_client'] * 1000:.0f} ms); failed {len(result['failures'])} "
          f"{sorted(set(result['failures']))}")
    cut = [seconds for seconds, was_cut in result["held"] if was_cut]
    still = [seconds for seconds, was_cut in result["held"] if not was_cut]
    print(f"  tricklers:           cut off {len(cut)} times, after {max(cut, default=0):.1f} s at most; "
          f"{len(still)} still open at the end" + (f" after {max(still):.1f} s" if still else ""))
    print(f"  idle sockets:        dropped by the server {result['counts']['idle_dropped']} times, "
          f"refused {result['counts']['idle_refused']}")
    print(f"  CPU in the {args.seconds:g} s:    server and its prediction workers {result['server_cpu']:.0f} s, "
          f"the training run {result['training_cpu']:.0f} s, these clients {result['cpu']:.0f} s "
          f"(event-loop lag max {max(result['lags'], default=0) * 1000:.0f} ms; {Http.retried} requests sent "
          "again after a keep-alive race)")
    ok = (bool(result["run"].get("run")) and errors == 0 and tally.busy == 0 and p99 <= BARS["p99"] and epochs > 0
          and min(streams, default=0) == epochs and server_memory <= BARS["rss_mb"] and newest <= BARS["new_client"])
    print("  bars:                " + ("all met" if ok else "NOT all met"))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the lesson (default: 120)")
    parser.add_argument("--browsers", type=int, default=40, help="simulated browsers (default: 40)")
    parser.add_argument("--idle", type=int, default=300, help="idle sockets (default: 300)")
    parser.add_argument("--tricklers", type=int, default=20, help="header tricklers (default: 20)")
    parser.add_argument("--predict-every", type=float, default=0.3, help="seconds between predictions (default: 0.3)")
    parser.add_argument("--explain-every", type=float, default=5.0, help="seconds between explanations (default: 5)")
    parser.add_argument("--epochs", type=int, default=1000,
                        help="the teacher's run, enough to outlast the lesson (stopped at the end; default: 1000)")
    parser.add_argument("--canvas", choices=["L", "RGBA"], default="L",
                        help="the drawn canvas's PNG mode: L (8-bit grey, what the page sends since static/png.js) "
                             "or RGBA (what it sent before, and what other clients may send) (default: L)")
    parser.add_argument("--model", default=None, help="model to serve (default: a 784-100-10 with random weights)")
    parser.add_argument("--workers", type=int, default=None, help="passed to digitnet serve (default: its own)")
    parser.add_argument("--data-dir", default=None, help=f"MNIST for the run (default: {SHARED_MNIST} if present, "
                                                         "else digitnet's own)")
    args = parser.parse_args()
    if min(args.seconds, args.predict_every, args.explain_every) <= 0 or min(args.browsers, args.epochs) < 1:
        parser.error("--seconds, --predict-every and --explain-every must be above 0, "
                     "--browsers and --epochs at least 1")
    needed = args.idle + args.tricklers + 3 * args.browsers + 100
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < needed:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, 4096)), hard))
    except (ImportError, ValueError, OSError):
        pass
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as tmp:
        process, port = start_server(args, Path(tmp))
        try:
            result = asyncio.run(classroom(port, process.pid, args))
            hwm = peak_rss_mb(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    sys.exit(0 if report(result, hwm, args) else 1)


if __name__ == "__main__":
    main()
