"""`make fuzz-api`: schemathesis against a live `digitnet serve`, N examples per operation (issue 21).

Starts `digitnet serve` in a subprocess on 127.0.0.1 (a free port) with a small model and small
synthetic MNIST files (tests/helpers.py's), loads its /api/openapi.json and sends every operation
--examples generated requests (positive and negative: bodies, query fields and settings inside and
outside the document's schemas), after a tour of what the page does (``tour``: predict, explain, teach,
models, a short training run: the answers a random body never gets), checking each answer:

  not_a_server_error, status_code_conformance, content_type_conformance,
  response_schema_conformance, response_headers_conformance

A run started by POST /api/train/start or /api/train/resume is stopped at once (the runs are real
`digitnet train` child processes: 2 epochs of a few hundred images take a moment, 1000 epochs of a
4096-unit layer would not).  The event stream (GET /api/train/events) never ends, so it is not
generated: its first event is checked against the document instead.  Each finding is printed with
a curl command that repeats it; the exit status is 1 when there is any.

    .venv/bin/python scripts/fuzz_api.py --examples 1000        # about 20 operations: a long run
    .venv/bin/python scripts/fuzz_api.py --url http://127.0.0.1:8000/ --examples 50   # a server of yours

``fuzz``, ``tour`` and ``first_event`` are what tests/test_serve_contract.py runs (10 examples per
operation, derandomized: the same requests every run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
NOT_GENERATED = ("GET /api/train/events",)  # a stream that never ends: checked by first_event
STARTS_A_RUN = ("POST /api/train/start", "POST /api/train/resume")


@dataclass
class Finding:
    operation: str
    check: str
    message: str
    curl: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.check}: {self.message}\n    {self.curl}"


def checks():
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                                   response_schema_conformance, status_code_conformance)

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
            response_headers_conformance]


def fuzz(base_url: str, document: dict, examples: int, seed: int | None = None, timeout: float = 15.0,
         operations: tuple[str, ...] | None = None, log=None) -> tuple[list[Finding], dict[str, dict]]:
    """Send every /api/ operation of ``document`` (but NOT_GENERATED; only ``operations`` when given)
    ``examples`` generated requests, positive and negative, to ``base_url``; return the findings (one per
    failed check, not shrunk) and, per operation, how many answers had each status.  ``seed`` None:
    derandomized (the same requests every run, for the suite)."""
    import hypothesis
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    findings: list[Finding] = []
    calls: dict[str, dict] = {}
    chosen = checks()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label in NOT_GENERATED or not operation.path.startswith("/api/") or (
                operations is not None and label not in operations):
            continue  # the page's files take nothing to generate: the tour asks for each
        strategy = hypothesis.strategies.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                                                operation.as_strategy(GenerationMode.NEGATIVE))

        one = _one_test(label, base_url, session, timeout, chosen, findings, calls)
        settings = hypothesis.settings(max_examples=examples, derandomize=seed is None, database=None, deadline=None,
                                       suppress_health_check=list(hypothesis.HealthCheck),
                                       phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        test = hypothesis.given(case=strategy)(_without_result(one))
        if seed is not None:
            test = hypothesis.seed(seed)(test)
        started = time.monotonic()
        settings(test)()
        if log is not None:
            answered = calls.get(label, {})
            print(f"{label}: {sum(answered.values())} requests in {time.monotonic() - started:.1f} s "
                  f"{dict(sorted(answered.items(), key=str))}", file=log, flush=True)
    return findings, calls


def _one_test(label, base_url, session, timeout, chosen, findings, calls, stop_runs=True):
    """The body hypothesis runs for each generated case of one operation: call, check, note findings
    (never raised: a failure is noted and the run goes on, unshrunk)."""
    from schemathesis.core.failures import FailureGroup

    def one(case):
        seen = calls.setdefault(label, {})
        try:
            response = case.call(base_url=base_url, session=session, timeout=timeout)
        except requests.RequestException as e:
            seen["no answer"] = seen.get("no answer", 0) + 1
            findings.append(Finding(label, "request", f"{type(e).__name__}: {e}"[:300], case.as_curl_command()))
            return
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=chosen)
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.append(Finding(label, type(failure).__name__, _first_line(failure), case.as_curl_command()))
        if stop_runs and label in STARTS_A_RUN and response.status_code == 202:
            stop_run(base_url, session, timeout)
        return response

    return one


def _without_result(one):
    """``one`` as hypothesis wants a test: returning None."""
    def generated(case):
        one(case)

    return generated


def tour(base_url: str, document: dict, picture: bytes, timeout: float = 15.0) -> tuple[list[Finding], dict[str, dict]]:
    """What the page does, step by step, every answer checked as ``fuzz`` checks them: generated requests
    seldom get past the checks (a random body is no picture), so this is where the 200s are checked.
    Predict, explain (a digit, units off), teach and keep and forget a session, the weight atlases, list,
    select and download the models, train (start, the run's atlas and answers, stop, resume, stop), the
    issue's inputs, and each of the page's files.  Returns what ``fuzz`` returns."""
    walk = _Tour(base_url, document, timeout)
    walk.inside(picture)
    walk.models()
    walk.training(picture)
    send = walk.send
    send("POST", "/api/evaluate")
    # The findings through the API: each must be a documented 4xx, not a 500.
    send("POST", "/api/train/start", body={"settings": {"augment": []}})
    send("POST", "/api/train/start", body={"settings": {"l2": int("9" * 400)}})
    for path in ("/api/train/start", "/api/models/select", "/api/teach/forget"):
        walk.raw("POST", path, b"[" * 20000)
    for path in [path for path in document["paths"] if not path.startswith("/api/")]:
        for method in document["paths"][path]:
            send(method.upper(), path)
    return walk.findings, walk.calls


class _Tour:
    """The page's requests, each checked against the document (``tour``)."""

    def __init__(self, base_url: str, document: dict, timeout: float):
        import schemathesis

        self.base_url, self.timeout = base_url, timeout
        self.schema = schemathesis.openapi.from_dict(document)
        self.session = requests.Session()
        self.findings: list[Finding] = []
        self.calls: dict[str, dict] = {}
        self.checks = checks()

    def send(self, method: str, path: str, **case):
        """The answer (schemathesis's Response) to one request, checked; None when there was none."""
        label = f"{method} {path}"
        if isinstance(case.get("body"), bytes):
            case.setdefault("media_type", "image/png")
        one = _one_test(label, self.base_url, self.session, self.timeout, self.checks, self.findings, self.calls,
                        stop_runs=False)
        return one(self.schema[path][method].Case(**case))

    def raw(self, method: str, path: str, data: bytes, content_type: str = "application/json") -> None:
        """Bytes as they are (not valid JSON, say), the answer checked like the others."""
        from schemathesis.core.failures import FailureGroup

        label = f"{method} {path}"
        response = self.session.request(method, self.base_url.rstrip("/") + path, data=data, timeout=self.timeout,
                                        headers={"Content-Type": content_type})
        seen = self.calls.setdefault(label, {})
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        try:
            self.schema[path][method].Case(media_type=content_type).validate_response(response, checks=self.checks)
        except FailureGroup as group:
            self.findings.extend(Finding(label, type(f).__name__, _first_line(f), f"{len(data)} bytes {data[:20]!r}")
                                 for f in group.exceptions)

    def inside(self, picture: bytes) -> None:
        send = self.send
        send("POST", "/api/predict", body=picture)
        send("POST", "/api/predict", body=picture, query={"model": "training"})
        send("POST", "/api/explain", body=picture)
        send("POST", "/api/explain", body=picture, query={"digit": "3", "off": "1:1,1:2"})
        taught = send("POST", "/api/teach", body=picture, query={"label": "7"})
        sid = taught.json().get("session") if taught is not None and taught.status_code == 200 else None
        if sid:
            send("POST", "/api/teach", body=picture, query={"label": "1", "eta": "0.5", "session": sid})
            send("POST", "/api/explain", body=picture, query={"session": sid})
            send("GET", "/api/explain/weights.png", query={"session": sid})
            send("POST", "/api/teach/keep", body={"session": sid})
            send("POST", "/api/teach/forget", body={"session": sid})
        atlas = send("GET", "/api/explain/weights.png")
        etag = (atlas.headers.get("etag") or [None])[0] if atlas is not None else None  # lower-case names, lists
        if etag:
            send("GET", "/api/explain/weights.png", headers={"If-None-Match": etag})

    def models(self) -> None:
        self.send("HEAD", "/api/model")
        listing = self.send("GET", "/api/models")
        usable = [m["id"] for m in listing.json()["models"] if "error" not in m] if listing is not None else []
        for model_id in usable[:1]:
            self.send("POST", "/api/models/select", body={"id": model_id, "weights": "last"})
            self.send("GET", "/api/models/download", query={"id": model_id})
            self.send("GET", "/api/models/download", query={"id": model_id, "format": "onnx"})

    def training(self, picture: bytes) -> None:
        send, url, session, timeout = self.send, self.base_url, self.session, self.timeout
        # Far more epochs than the tour waits for, so that Stop always finds the run still going (with 2
        # epochs a fast machine finished the run first, and Stop rightly answered 409).
        started = send("POST", "/api/train/start", body={"settings": {"hidden_sizes": [8], "epochs": 1000,
                                                                    "validation_size": 50, "seed": 1}})
        if started is None or started.status_code != 202:
            return
        wait_until(url, session, timeout, lambda status: status.get("saved_epoch") or not status.get("running"))
        send("GET", "/api/train/weights.png")
        send("POST", "/api/predict", body=picture, query={"model": "training"})
        send("POST", "/api/train/stop")
        wait_until(url, session, timeout, lambda status: not status.get("running"))
        saved = send("GET", "/api/train")
        kept = (saved.json().get("saved_epoch") or 1) if saved is not None and saved.status_code == 200 else 1
        send("POST", "/api/train/resume", body={"id": started.json()["run"], "epochs": kept + 2})
        stop_run(url, session, timeout)


def wait_until(base_url: str, session: requests.Session, timeout: float, condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition(session.get(base_url.rstrip("/") + "/api/train", timeout=timeout).json()):
            return
        time.sleep(0.05)


def _first_line(failure: BaseException) -> str:
    title = getattr(failure, "title", "") or type(failure).__name__
    message = getattr(failure, "message", "") or str(failure)
    return f"{title}: {message}".replace("\n", " ")[:400]


def stop_run(base_url: str, session: requests.Session, timeout: float) -> None:
    """Stop the run a generated request started, and wait until it has ended (the next start may go)."""
    session.post(base_url.rstrip("/") + "/api/train/stop", timeout=timeout)
    wait_until(base_url, session, timeout, lambda status: not status.get("running"))


def first_event(base_url: str, document: dict, timeout: float = 15.0) -> list[str]:
    """Problems with GET /api/train/events's answer: its status, content type, and its first event's data
    against the status schema the document gives (empty when it conforms)."""
    import jsonschema_rs

    operation = document["paths"]["/api/train/events"]["get"]
    with requests.get(base_url.rstrip("/") + "/api/train/events", stream=True, timeout=timeout) as response:
        documented = operation["responses"].get(str(response.status_code))
        if documented is None:
            return [f"status {response.status_code} is not documented"]
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media not in documented.get("content", {}):
            return [f"content type {media!r} is not documented for {response.status_code}"]
        if response.status_code != 200:
            return []
        for line in response.iter_lines(chunk_size=1, decode_unicode=True):
            if line.startswith("data: "):
                schema = {**document["components"]["schemas"]["TrainingStatus"],
                          "components": document["components"]}
                validator = jsonschema_rs.validator_for(schema)
                return [error.message for error in validator.iter_errors(json.loads(line[6:]))]
    return ["the stream ended before its first event"]


# -- the long run: its own server -----------------------------------------------------------------------

def start_server(workdir: Path) -> tuple[subprocess.Popen, str]:
    """`digitnet serve` on a free port, serving a small model, training on small synthetic MNIST, with
    a bad file or two in its folders (the listing must name them, not fail)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import numpy as np

    from helpers import write_mnist

    from digitnet import checkpoint
    from digitnet.network import Network

    data_dir = write_mnist(workdir / "mnist")
    model = checkpoint.save(workdir / "model.npz", Network([784, 16, 10], rng=np.random.default_rng(0)),
                            {"epochs_completed": 1, "hyperparameters": {"learning_rate": 3.0, "batch_size": 10}})
    (workdir / "runs").mkdir()
    (workdir / "runs" / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    (workdir / "folder.npz").mkdir()
    command = [sys.executable, "-m", "digitnet", "serve", "--model", str(model), "--port", "0",
               "--data-dir", str(data_dir), "--runs-dir", str(workdir / "runs"), "--workers", "1"]
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(20):
        line = process.stdout.readline()
        if "http://" in line:
            return process, "http://" + line.split("http://", 1)[1].split()[0]
        if not line:
            break
    process.kill()
    sys.exit(f"the server did not start: {process.stderr.read().strip()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="generated requests per operation (default: 1000)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: a new one each run)")
    parser.add_argument("--url", default=None, help="fuzz this server instead of starting one (its /api/openapi.json)")
    parser.add_argument("--operation", action="append", default=None,
                        help='only this operation, e.g. "POST /api/predict" (repeatable)')
    args = parser.parse_args()
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    seed = args.seed if args.seed is not None else int(time.time())
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as tmp:
        process = None
        url = args.url
        if url is None:
            process, url = start_server(Path(tmp))
        try:
            document = requests.get(url.rstrip("/") + "/api/openapi.json", timeout=15).json()
            print(f"fuzzing {url} with {args.examples} examples per operation (seed {seed})", flush=True)
            from bench_serve import canvas_png

            findings, calls = tour(url, document, canvas_png())
            print(f"the page's tour: {sum(sum(a.values()) for a in calls.values())} requests, {len(findings)} findings")
            found, calls = fuzz(url, document, args.examples, seed=seed,
                                operations=tuple(args.operation) if args.operation else None, log=sys.stdout)
            findings += found
            findings += [Finding("GET /api/train/events", "first event", problem, "")
                         for problem in first_event(url, document)]
        finally:
            if process is not None:
                process.terminate()
                process.wait(60)
    print(f"{sum(sum(answered.values()) for answered in calls.values())} requests over {len(calls)} operations; "
          f"{len(findings)} findings")
    for finding in findings[:200]:
        print(finding)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
