"""runs.prepare and runs.run: the run policy the CLI, the page and sweeps share."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import threading

import numpy as np
import pytest

from digitnet import checkpoint, runs, signals
from digitnet.atomic import WriteError
from digitnet.config import TrainConfig
from digitnet.data import load_mnist
from digitnet.training import Trainer

CONFIG = dict(hidden_sizes=(12,), epochs=4, batch_size=10, validation_size=100, seed=3)


@pytest.fixture
def mnist(synthetic_data_dir):
    return load_mnist(synthetic_data_dir, validation_size=100)


def fresh(mnist, **changes) -> Trainer:
    return Trainer(mnist, TrainConfig(**dict(CONFIG, **changes)))


def weights(path):
    network = checkpoint.load(path).network
    return network.weights + network.biases


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_finished_run_saves_every_epoch_and_the_test_accuracy(mnist, tmp_path):
    out = tmp_path / "m.npz"
    seen = []

    def on_epoch(stats):
        # The epoch is on disk before anyone hears of it.
        seen.append((stats.epoch, checkpoint.load(out).metadata["epochs_completed"]))

    progress = []
    result = runs.run(fresh(mnist), out, on_epoch=on_epoch, on_progress=lambda *a: progress.append(a))
    assert seen == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert result.outcome == "finished" and result.exit_code == 0
    assert result.saved_epoch == 4 and result.epochs_completed == 4 and result.resume_from == out
    meta = checkpoint.load(out).metadata
    assert meta["test_accuracy"] == result.test_accuracy and result.tested_best
    assert 0 <= result.test_accuracy <= 1
    # Progress: cumulative images per epoch, ending at the training set's size.
    n = len(mnist.training)
    assert [p for p in progress if p[1] == n] == [(e, n, n) for e in (1, 2, 3, 4)]
    assert all(0 < done <= total == n for _, done, total in progress)
    json.dumps(result.to_dict())  # a sweep or the page can send it as it is
    assert leftovers(tmp_path) == []


def test_should_stop_between_epochs_keeps_the_last_one_and_says_how_to_go_on(mnist, tmp_path):
    out = tmp_path / "m.npz"
    epochs = []
    result = runs.run(fresh(mnist), out, on_epoch=lambda s: epochs.append(s.epoch),
                      should_stop=lambda: len(epochs) == 2)
    assert result.outcome == "interrupted" and result.signal is None and result.exit_code == 130
    assert result.saved_epoch == 2 and result.test_accuracy is None
    assert result.resume_command == f"digitnet train --resume {out} --epochs 4"
    assert checkpoint.load(out).metadata["epochs_completed"] == 2


def test_a_stop_mid_epoch_resumes_to_the_same_weights_as_an_unbroken_run(mnist, tmp_path, monkeypatch):
    from digitnet import batches

    monkeypatch.setattr(batches, "CHUNK_EXAMPLES", 100)  # several progress reports per epoch
    runs.run(fresh(mnist), tmp_path / "whole.npz")
    where = []  # (epoch, images done) at each progress report

    result = runs.run(fresh(mnist), tmp_path / "half.npz", on_progress=lambda e, done, n: where.append((e, done)),
                      should_stop=lambda: bool(where) and where[-1][0] == 3)  # yes, early in the third epoch
    assert result.outcome == "interrupted" and result.saved_epoch == 2
    assert where[-1][0] == 3 and where[-1][1] < len(mnist.training)  # it really stopped mid-epoch
    plan = runs.prepare(TrainConfig(epochs=4), tmp_path / "half.npz", lambda: mnist,
                        resume_from=tmp_path / "half.npz")
    assert plan.trainer.state.epochs_completed == 2
    resumed = runs.run(plan.trainer, plan.out, resumed_from=plan.resumed_from)
    assert resumed.outcome == "finished" and resumed.saved_epoch == 4
    for a, b in zip(weights(tmp_path / "whole.npz"), weights(tmp_path / "half.npz")):
        np.testing.assert_array_equal(a, b)


def test_divergence_keeps_the_last_good_epoch(mnist, tmp_path, monkeypatch):
    from digitnet import training

    real = training.Trainer._cost_and_saturation
    monkeypatch.setattr(training.Trainer, "_cost_and_saturation",
                        lambda self, *seen: (float("nan"), False) if self.state.epochs_completed == 2
                        else real(self, *seen))
    out = tmp_path / "m.npz"
    result = runs.run(fresh(mnist), out)
    assert result.outcome == "diverged" and "diverged in epoch 3" in result.error and result.exit_code == 1
    assert result.saved_epoch == 2 and checkpoint.load(out).metadata["epochs_completed"] == 2


def test_a_full_disk_on_the_third_save_keeps_the_second_epoch_and_says_why(mnist, tmp_path, monkeypatch):
    """ENOSPC, simulated on the checkpoint write: a partial file, then the disk is full."""
    real_savez = np.savez
    saves = []

    def savez(file, *args, **kwargs):
        saves.append(1)
        if len(saves) < 3:
            return real_savez(file, *args, **kwargs)
        buffer = io.BytesIO()
        real_savez(buffer, *args, **kwargs)
        file.write(buffer.getvalue()[:5000])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez)
    out = tmp_path / "m.npz"
    result = runs.run(fresh(mnist), out)
    monkeypatch.undo()
    assert result.outcome == "write_failed" and result.exit_code == 1
    assert result.error.startswith(f"cannot write {out}: no space left on device (needs about ")
    assert " KB" in result.error or " MB" in result.error
    assert result.saved_epoch == 2 and checkpoint.load(out).metadata["epochs_completed"] == 2
    assert leftovers(tmp_path) == []


def test_a_signal_during_the_save_lets_the_epoch_finish_writing(mnist, tmp_path, monkeypatch):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    real_save = runs.save_run

    def save_then_signal(path, trainer, **kwargs):
        if trainer.state.epochs_completed == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the checkpoint is being written
        return real_save(path, trainer, **kwargs)

    monkeypatch.setattr(runs, "save_run", save_then_signal)
    out = tmp_path / "m.npz"
    with signals.stop_requests():
        result = runs.run(fresh(mnist), out)
    assert result.outcome == "interrupted" and result.signal == signal.SIGTERM and result.exit_code == 143
    assert result.saved_epoch == 2 and checkpoint.load(out).metadata["epochs_completed"] == 2
    assert leftovers(tmp_path) == []


def test_a_stop_raised_by_a_callback_is_an_interruption_with_its_signal(mnist, tmp_path):
    def on_epoch(stats):
        raise signals.Stopped(signal.SIGHUP)

    result = runs.run(fresh(mnist), tmp_path / "m.npz", on_epoch=on_epoch)
    assert result.outcome == "interrupted" and result.signal == signal.SIGHUP and result.exit_code == 129
    assert result.saved_epoch == 1


def test_stopped_before_the_first_epoch_saves_nothing(mnist, tmp_path):
    result = runs.run(fresh(mnist), tmp_path / "m.npz", should_stop=lambda: True)
    assert result.outcome == "interrupted" and result.saved_epoch == 0
    assert result.resume_from is None and result.resume_command is None
    assert list(tmp_path.iterdir()) == [tmp_path / "mnist"]


# ---------------------------------------------------------------------------
# prepare: the output is checked before the data is loaded


def never_load(size):
    raise AssertionError("the data was loaded before the output was checked")


def test_prepare_refuses_an_existing_output_without_force(tmp_path, mnist):
    out = tmp_path / "m.npz"
    out.write_bytes(b"someone's work")
    with pytest.raises(runs.RunError, match="already exists"):
        runs.prepare(TrainConfig(**CONFIG), out, never_load)
    plan = runs.prepare(TrainConfig(**CONFIG), out, lambda: mnist, force=True)
    assert plan.out == out and plan.resumed_from is None
    assert out.read_bytes() == b"someone's work"  # replaced only by the first saved epoch


@pytest.mark.parametrize("where, words", [
    ("missing/m.npz", "folder {tmp}/missing does not exist"),
    ("a-file/m.npz", "{tmp}/a-file is not a folder"),
])
def test_prepare_fails_fast_on_an_output_that_cannot_be_written(tmp_path, where, words):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(WriteError) as excinfo:
        runs.prepare(TrainConfig(**CONFIG), tmp_path / where, never_load)
    assert str(excinfo.value) == f"cannot write {tmp_path / where}: " + words.format(tmp=tmp_path)


def test_prepare_fails_fast_where_no_file_can_be_created(tmp_path):
    """/proc exists and root may "write" there by os.access, but no new file can be made."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    with pytest.raises(WriteError, match="cannot write /proc/self/m.npz: folder /proc/self does not accept"):
        runs.prepare(TrainConfig(**CONFIG), "/proc/self/m.npz", never_load)


def test_prepare_a_batch_larger_than_the_data_is_a_settings_error(tmp_path, mnist):
    with pytest.raises(runs.SettingsError, match="larger than the 500 training images"):
        runs.prepare(TrainConfig(**dict(CONFIG, batch_size=501)), tmp_path / "m.npz", lambda: mnist)


def test_a_full_disk_is_found_before_the_first_epoch(mnist, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    trained = []
    result = runs.run(fresh(mnist), tmp_path / "m.npz", on_progress=lambda *a: trained.append(a))
    assert result.outcome == "write_failed" and trained == []
    assert "no space left on device (needs about" in result.error and "1.0 KB free" in result.error


# ---------------------------------------------------------------------------
# The same, as `digitnet train` says it


def test_cli_full_disk_names_the_file_the_size_and_what_is_kept(synthetic_data_dir, tmp_path, monkeypatch):
    from helpers import run_cli

    real_savez = np.savez
    saves = []

    def savez(file, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_savez(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", savez)
    out = tmp_path / "m.npz"
    result = run_cli("train", "--hidden", "10", "--epochs", "3", "--validation-size", "100",
                     "--data-dir", synthetic_data_dir, "--out", out, expect=1)
    assert f"Error: cannot write {out}: no space left on device (needs about " in result.output
    assert f"the last complete epoch (1) is kept in {out}" in result.output
    monkeypatch.undo()
    assert checkpoint.load(out).metadata["epochs_completed"] == 1
    assert leftovers(tmp_path) == []


def test_cli_read_only_folder_fails_before_any_work(tmp_path, read_only_folder):
    from helpers import run_cli

    folder = read_only_folder
    empty = tmp_path / "no-data"  # were the data needed first, this would try to download it
    result = run_cli("train", "--out", folder / "m.npz", "--data-dir", empty, expect=1)
    assert f"Error: cannot write {folder / 'm.npz'}: " in result.output
    assert ("read-only" in result.output) or ("permission denied" in result.output)
    assert not empty.exists() and list(folder.iterdir()) == []


def test_cli_out_under_proc_fails_before_any_work(tmp_path):
    from helpers import run_cli

    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    result = run_cli("train", "--out", "/proc/self/m.npz", "--data-dir", tmp_path / "no-data", expect=1)
    assert "Error: cannot write /proc/self/m.npz: folder /proc/self does not accept new files" in result.output


def test_a_signal_during_the_final_test_lets_the_run_finish(mnist, tmp_path, monkeypatch):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    real = runs.accuracy
    calls = []

    def accuracy(network, split):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(network, split)

    monkeypatch.setattr(runs, "accuracy", accuracy)
    out = tmp_path / "m.npz"
    with signals.stop_requests():
        result = runs.run(fresh(mnist, epochs=2), out)
    assert result.outcome == "finished" and result.signal == signal.SIGTERM
    assert checkpoint.load(out).metadata["test_accuracy"] == result.test_accuracy is not None


def test_no_augmentation_is_the_same_setting_however_it_is_spelled():
    assert runs.conflicts(TrainConfig(), {"augment": "0"}) == []
    assert runs.conflicts(TrainConfig(), {"augment": "2"}) == ["--augment was 0, you gave shift=2"]


def test_failure_message_says_what_went_wrong_what_is_kept_and_what_to_try():
    """One sentence for the CLI and the page: a divergence names --eta, a failed write the epoch kept."""
    assert runs.failure_message("diverged", "training diverged in epoch 2: nan", 1, "m.npz", 3.0) == (
        "training diverged in epoch 2: nan; the last good epoch is kept in m.npz. Try a smaller --eta (it was 3).")
    assert runs.failure_message("diverged", "boom", 0, None, 0.5).endswith("; nothing was saved. Try a smaller "
                                                                           "--eta (it was 0.5).")
    assert runs.failure_message("write_failed", "disk full", 4, "m.npz") == (
        "disk full; the last complete epoch (4) is kept in m.npz")
    assert runs.failure_message("write_failed", "disk full", 0, None) == "disk full; nothing was saved"
