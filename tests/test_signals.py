"""SIGTERM and SIGHUP handled like Ctrl-C: real `digitnet` processes, really signalled.

`kill PID`, `docker stop` and a scheduler's time limit send SIGTERM; closing the
terminal sends SIGHUP.  Every command that writes then keeps what is complete,
removes its temporary files, says how to go on and exits with 128 + the signal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import run_cli
from digitnet import checkpoint, signals

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")

# Guards against a hung test, not measurements: every wait below normally ends in well under a second.
PATIENCE = 60.0


def _default_signals():
    """A shell without job control starts background jobs with SIGINT ignored, nohup SIGHUP:
    the process under test gets the defaults a user's terminal would give it."""
    for signum in signals.STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def digitnet(*args, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "DIGITNET_DATA_DIR"}
    env.update(NO_PROXY="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "digitnet", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_signals)


def wait_for(condition, process: subprocess.Popen):
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"digitnet ended early ({process.returncode}): {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for digitnet")
        time.sleep(0.02)


def temp_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".") or p.name.endswith(".part")]


# ---------------------------------------------------------------------------
# train


@pytest.mark.parametrize("signum, name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP"),
                                          (signal.SIGINT, "Ctrl-C")])
def test_a_signalled_train_keeps_its_last_epoch_and_says_how_to_resume(synthetic_data_dir, tmp_path,
                                                                      signum, name):
    out = tmp_path / "runs" / "m.npz"
    out.parent.mkdir()
    process = digitnet("train", "--hidden", "10", "--epochs", "100000", "--validation-size", "100",
                       "--data-dir", synthetic_data_dir, "--out", out, cwd=tmp_path)
    wait_for(out.exists, process)  # the first epoch is saved: the run is in full swing
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 128 + signum, (stdout, stderr)
    assert "Traceback" not in stderr
    match = re.search(rf"interrupted \({name}\): the last complete epoch \((\d+)\) is saved in (\S+); "
                      r"continue with `digitnet train --resume (\S+) --epochs 100000`", stderr)
    assert match, stderr
    assert match.group(2) == match.group(3) == str(out)
    meta = checkpoint.load(out).metadata  # a whole checkpoint, holding the epoch the message names
    assert meta["epochs_completed"] == int(match.group(1)) >= 1
    assert len(meta["history"]) == meta["epochs_completed"]
    assert temp_files(out.parent) == []


def test_the_printed_resume_command_continues_the_run(synthetic_data_dir, tmp_path):
    out = tmp_path / "m.npz"
    process = digitnet("train", "--hidden", "10", "--epochs", "100000", "--validation-size", "100",
                       "--data-dir", synthetic_data_dir, "--out", out, cwd=tmp_path)
    wait_for(out.exists, process)
    process.terminate()
    _, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 143
    done = checkpoint.load(out).metadata["epochs_completed"]
    result = run_cli("train", "--resume", out, "--epochs", done + 1, "--data-dir", synthetic_data_dir)
    assert f"resuming after epoch {done}" in result.output
    assert checkpoint.load(out).metadata["epochs_completed"] == done + 1


def test_sigterm_during_the_first_epoch_saves_nothing(synthetic_data_dir, tmp_path, monkeypatch):
    """In-process (the first epoch of a real run is too short to hit from outside): the signal
    arrives while the first epoch's mini-batches run."""
    from digitnet import training

    real = training.Trainer._sgd_epoch

    def sgd_epoch(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(training.Trainer, "_sgd_epoch", sgd_epoch)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "m.npz"
    result = run_cli("train", "--hidden", "10", "--epochs", "2", "--validation-size", "100",
                     "--data-dir", synthetic_data_dir, "--out", out, expect=143)
    assert "interrupted (SIGTERM) before the first epoch finished: nothing was saved" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]
    assert signal.getsignal(signal.SIGTERM) == before  # the command put the handler back


# ---------------------------------------------------------------------------
# download


@pytest.fixture
def stalling_mirror():
    """A mirror (test_download's server) that serves the first file, then sends half of the second
    and waits: the download is caught mid-file."""
    from test_download import CONTENT, FILES, Server, send, send_half

    server = Server()
    half_sent = threading.Event()

    def handle(request, mirror, name):
        body = CONTENT[name]
        if name == FILES[0]:
            return send(request, body)
        send_half(request, body)
        half_sent.set()
        server.stop.wait(PATIENCE)

    server.handle = handle
    server.half_sent = half_sent
    yield server
    server.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signalled_download_keeps_whole_files_only(stalling_mirror, tmp_path, signum):
    from test_download import CHECKSUMS, CONTENT, FILES, write_sums

    sums = write_sums(tmp_path / "SHA256SUMS", CHECKSUMS)
    target = tmp_path / "data"
    process = digitnet("download", "--mirror", stalling_mirror.url("m1"), "--checksums", sums,
                       "--data-dir", target, "--timeout", "30", "-q", cwd=tmp_path)
    wait_for(stalling_mirror.half_sent.is_set, process)
    wait_for(lambda: any(name.endswith(".part") for name in os.listdir(target)), process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=PATIENCE)
    assert process.returncode == 128 + signum, (stdout, stderr)
    assert "Traceback" not in stderr
    name = signal.Signals(signum).name
    assert f"interrupted ({name}): the files completed so far are kept in {target}" in stderr
    assert "no partial file is left; fetch the rest with `digitnet download --mirror" in stderr
    assert sorted(os.listdir(target)) == [FILES[0]]  # the first file whole, no trace of the second
    assert (target / FILES[0]).read_bytes() == CONTENT[FILES[0]]


# ---------------------------------------------------------------------------
# The signals module


def test_stop_requests_raises_stopped_and_restores_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(signals.Stopped) as excinfo:
        with signals.stop_requests():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode; never reached
    assert excinfo.value.signum == signal.SIGTERM and excinfo.value.exit_code == 143
    assert isinstance(excinfo.value, KeyboardInterrupt)  # Ctrl-C's clean-up runs for it too
    assert signal.getsignal(signal.SIGTERM) == before


def test_an_ignored_signal_stays_ignored(monkeypatch):
    """nohup ignores SIGHUP on purpose: the command must not start dying of it."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals.stop_requests():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)  # ignored: nothing happens
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_deferred_holds_the_signal_until_the_block_is_done():
    finished = []
    with pytest.raises(signals.Stopped):
        with signals.stop_requests():
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
                finished.append("write")
            finished.append("after")
    assert finished == ["write"]


def test_describe():
    assert signals.describe(signal.SIGINT) == "Ctrl-C" and signals.describe(signal.SIGTERM) == "SIGTERM"
    assert signals.signal_number(KeyboardInterrupt()) == signal.SIGINT


def test_sigterm_during_a_report_leaves_whole_pictures_only(synthetic_data_dir, tmp_path, monkeypatch):
    from digitnet import report

    model = tmp_path / "m.npz"
    run_cli("train", "--hidden", "5", "--epochs", "1", "--validation-size", "100", "--quiet",
            "--data-dir", synthetic_data_dir, "--out", model)
    real = report.Figure.savefig
    calls = []

    def savefig(self, f, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second picture: half written when the signal comes
            f.write(b"\x89PNG half")
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, f, **kwargs)

    monkeypatch.setattr(report.Figure, "savefig", savefig)
    out = tmp_path / "r"
    result = run_cli("report", model, "--data-dir", synthetic_data_dir, "--out", out, expect=143)
    assert "interrupted (SIGTERM)" in result.output and len(calls) == 2
    pictures = list(out.iterdir())  # the first picture, whole; nothing of the second
    assert len(pictures) == 1 and pictures[0].suffix == ".png"
    assert pictures[0].read_bytes().startswith(b"\x89PNG\r\n")
