"""Stop and shutdown work however `digitnet serve` was started, also with SIGINT ignored.

A script's `digitnet serve &`, `nohup digitnet serve &` and a notebook's `!digitnet serve &` start the
server with SIGINT ignored, and every child it starts inherits that: a Stop sent as SIGINT did nothing
(the page sat on "Stopping" while the run trained to its end).  These tests start the real command
with SIGINT ignored and check the training child, the prediction workers and the server itself.
"""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from helpers import write_mnist
from digitnet import checkpoint
from digitnet.network import Network

SERVING = re.compile(r"on (?P<url>http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)$")
# A run far longer than the test (10 mini-batches of 50 an epoch, 10 ms apart: 40 s): Stop must end it.
LONG = {"hidden_sizes": [12], "epochs": 400, "validation_size": 100, "seed": 4, "batch_size": 50, "pause_ms": 10}


def ignoring_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mnist(tmp_path_factory.mktemp("data") / "mnist")


def start_server(tmp_path: Path, data_dir: Path, *args) -> tuple[subprocess.Popen, str]:
    """`digitnet serve` as a background job starts it: SIGINT ignored (and its own session)."""
    process = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", "--port", "0", "--runs-dir",
                                str(tmp_path / "runs"), "--data-dir", str(data_dir), *map(str, args)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ignoring_sigint, start_new_session=True)
    line = process.stdout.readline().rstrip("\n")
    match = SERVING.search(line)
    if match is None:
        process.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {process.stderr.read()}")
    return process, match["url"]


def wait_for(url: str, condition, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = requests.get(url + "api/train", timeout=10).json()
        if condition(status):
            return status
        time.sleep(0.05)
    brief = {key: status.get(key) for key in ("state", "running", "message", "epochs_completed", "pid")}
    raise AssertionError(f"timed out after {seconds} s; last status {brief}")


def ended(status: dict) -> bool:
    return not status["running"] and status["state"] not in ("idle", "starting")


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its parent does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sigint_is_ignored(pid: int) -> bool:
    """Whether ``pid`` ignores SIGINT (the SigIgn mask of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    raise AssertionError("no SigIgn line")



def status_once_ended(training, seconds=30) -> dict:
    """The run's status once it is no longer running (or after ``seconds``)."""
    status = training.status()
    deadline = time.monotonic() + seconds
    while status["running"] and time.monotonic() < deadline:
        status = training.wait_for_change(status["version"], 5) or status
    return status

def test_stop_stops_a_run_of_a_server_started_with_sigint_ignored(tmp_path, data_dir):
    process, url = start_server(tmp_path, data_dir)
    try:
        started = requests.post(url + "api/train/start", json={"settings": LONG}, timeout=10)
        assert started.status_code == 202, started.text
        running = wait_for(url, lambda s: s["epochs_completed"] >= 1)
        assert sigint_is_ignored(running["pid"])  # the situation of the issue: Ctrl-C cannot reach it
        asked = time.monotonic()
        assert requests.post(url + "api/train/stop", json={}, timeout=10).status_code == 200
        stopped = wait_for(url, ended, seconds=30)
        took = time.monotonic() - asked
        assert stopped["state"] == "interrupted" and stopped["resumable"], stopped
        kept = stopped["saved_epoch"]
        assert 1 <= kept < 400 and f"epoch {kept} is saved" in stopped["message"], (stopped, took)
        saved = checkpoint.load(tmp_path / stopped["run"])
        assert saved.metadata["epochs_completed"] == kept

        # The checkpoint resumes; the server's own stop (SIGTERM) then stops the resumed run too.
        resumed = requests.post(url + "api/train/resume", json={"id": stopped["run"]}, timeout=10)
        assert resumed.status_code == 202, resumed.text
        wait_for(url, lambda s: s["state"] == "running" and s["epochs_completed"] > kept)
        child = requests.get(url + "api/train", timeout=10).json()["pid"]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "the training run was stopped: stopped; epoch" in err, err
    assert not alive(child)
    assert checkpoint.load(tmp_path / stopped["run"]).metadata["epochs_completed"] > kept


def test_a_server_started_with_sigint_ignored_stops_on_sigterm_with_its_prediction_workers(tmp_path, data_dir):
    model = checkpoint.save(tmp_path / "model.npz", Network([784, 10, 10], rng=np.random.default_rng(0)), {})
    process, url = start_server(tmp_path, data_dir, "--model", model, "--workers", 2)
    try:
        deadline = time.monotonic() + 60
        while len(children(process.pid)) < 2 and time.monotonic() < deadline:  # the workers start after
            time.sleep(0.1)
        workers = children(process.pid)
        assert len(workers) >= 2, workers
        answer = requests.post(url + "api/predict", data=json.dumps({}).encode(), timeout=10)
        assert answer.status_code in (200, 400, 415, 422)  # answered, whatever the picture
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM and err.strip().endswith("stopped"), err
    time.sleep(0.5)  # orphans are reaped by init
    assert not [pid for pid in workers if alive(pid)]


def test_a_run_that_ignores_the_stop_signal_too_is_killed_after_the_grace_keeping_its_epochs(tmp_path, data_dir):
    from digitnet.serve.training import TrainingRuns, config_from_json

    training = TrainingRuns(tmp_path / "runs", data_dir, log=io.StringIO())
    training.stop_grace = 1.0
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child: SIGTERM ignored too
    try:
        training.start(config_from_json({"settings": LONG}))
    finally:
        signal.signal(signal.SIGTERM, previous)
    try:
        status = training.status()
        while status["epochs_completed"] < 1:
            status = training.wait_for_change(status["version"], 30) or status
        training.stop()
        status = status_once_ended(training)
    finally:
        training.shutdown()
    assert status["state"] == "killed" and status["resumable"], status
    assert "Resume continues it" in status["message"]
    kept = checkpoint.load(tmp_path / status["run"]).metadata["epochs_completed"]
    assert 1 <= kept < 400


def test_stop_at_once_after_start_says_stopped_not_killed(tmp_path, data_dir):
    from digitnet.serve.training import TrainingRuns, config_from_json

    training = TrainingRuns(tmp_path / "runs", data_dir, log=io.StringIO())
    try:
        training.start(config_from_json({"settings": LONG}))
        training.stop()  # the child is still importing: Python's default for SIGTERM ends it
        status = status_once_ended(training)
    finally:
        training.shutdown()
    assert status["state"] == "interrupted" and not status["resumable"], status
    assert status["message"] == "stopped before the first epoch finished: nothing was saved"


def test_a_resumed_run_stopped_at_once_stays_resumable(tmp_path, data_dir):
    # Stop right after Resume reaches the child before `digitnet train` has set its handlers: SIGTERM's
    # default ends it at once, and the page must still say the file keeps its epochs.
    from digitnet.serve.training import TrainingRuns, config_from_json

    training = TrainingRuns(tmp_path / "runs", data_dir, log=io.StringIO())

    def until(condition):
        status = training.status()
        deadline = time.monotonic() + 60
        while not condition(status) and time.monotonic() < deadline:
            status = training.wait_for_change(status["version"], 5) or status
        return status

    try:
        training.start(config_from_json({"settings": LONG}))
        until(lambda s: s["epochs_completed"] >= 1)
        training.stop()
        first = until(lambda s: not s["running"])
        assert first["state"] == "interrupted" and first["resumable"], first
        training.resume(tmp_path / first["run"])
        training.stop()
        second = until(lambda s: not s["running"])
    finally:
        training.shutdown()
    assert second["state"] == "interrupted" and second["resumable"], second
    assert f"epoch {first['saved_epoch']} is saved" in second["message"]
