"""Watching a run as a class would: epoch 0, peeks within the first epochs, a slow mode, and a run that
says it is only guessing.  None of them may change a run's weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import run_cli, write_mnist
from digitnet import checkpoint, runs, training
from digitnet.config import PEEK_EPOCHS, PEEK_SAMPLE, TrainConfig
from digitnet.data import load_mnist
from digitnet.metrics import accuracy
from digitnet.training import Trainer

CONFIG = dict(hidden_sizes=(12,), epochs=3, batch_size=10, validation_size=100, seed=3)


@pytest.fixture
def mnist(synthetic_data_dir):
    return load_mnist(synthetic_data_dir, validation_size=100)


@pytest.fixture(scope="module")
def big_mnist(tmp_path_factory):
    """Enough validation images for a whole PEEK_SAMPLE: 1,700 training images, 1,200 of them held out."""
    return load_mnist(write_mnist(tmp_path_factory.mktemp("big") / "mnist", n_train=1700), validation_size=1200)


def fresh(data, **changes) -> Trainer:
    return Trainer(data, TrainConfig(**dict(CONFIG, **changes)))


def weights(network):
    return network.weights + network.biases


def test_epoch_0_is_the_untrained_network_and_consumes_nothing(mnist):
    trainer = fresh(mnist)
    untrained = Trainer(mnist, trainer.config).network  # the same seed draws the same weights
    heard = []
    history = list(trainer.epochs(on_untrained=heard.append))
    assert [s.epoch for s in heard] == [0] and [s.epoch for s in history] == [1, 2, 3]
    assert heard[0].validation_accuracy == accuracy(untrained, mnist.validation)
    assert heard[0].training_cost == pytest.approx(Trainer(mnist, trainer.config).training_cost(), rel=1e-6)  # float32 sums
    assert trainer.state.untrained == heard[0].to_dict() and heard[0].cost_source == "exact"
    plain = fresh(mnist)  # epoch after epoch without epochs(): no epoch 0 measured
    for _ in range(3):
        plain.epoch()
    assert plain.state.untrained is None
    for a, b in zip(weights(trainer.network), weights(plain.network)):
        np.testing.assert_array_equal(a, b)


def test_peeks_come_every_n_images_in_the_first_epochs_on_the_first_1000_validation_images(big_mnist):
    trainer = fresh(big_mnist, peek_every=100, epochs=PEEK_EPOCHS + 1, validation_size=1200)
    peeks, expected = [], []

    def on_peek(peek):  # called between mini-batches: the trainer's network is the one peeked at
        peeks.append(peek)
        sample = big_mnist.validation.images[:PEEK_SAMPLE]
        answers = np.argmax(trainer.network.feedforward(sample.astype(np.float32) / 255), axis=1)
        expected.append(float(np.mean(answers == big_mnist.validation.labels[:PEEK_SAMPLE])))

    list(trainer.epochs(on_peek=on_peek))
    n = len(big_mnist.training)  # 500: peeks at 100..400, not at the epoch's end (its own measurement)
    assert [(p.epoch, p.images) for p in peeks] == [(e, i) for e in range(1, PEEK_EPOCHS + 1) for i in range(100, n, 100)]
    assert all(p.sample_size == PEEK_SAMPLE and p.total == n for p in peeks)
    assert [p.sample_accuracy for p in peeks] == pytest.approx(expected)
    assert peeks[0].to_dict()["at"] == 0.2 and trainer.state.peeks == [p.to_dict() for p in peeks]


def test_peeks_and_pauses_leave_the_weights_bit_identical(mnist, monkeypatch):
    monkeypatch.setattr(training.time, "sleep", lambda seconds: None)
    plain, watched = fresh(mnist, batch_size=7), fresh(mnist, peek_every=100, pause_ms=5, batch_size=7)
    list(plain.epochs())
    list(watched.epochs(on_peek=lambda peek: None))
    assert watched.state.peeks
    for a, b in zip(weights(plain.network), weights(watched.network)):
        np.testing.assert_array_equal(a, b)
    assert [h["training_cost"] for h in plain.state.history] == [h["training_cost"] for h in watched.state.history]


def test_the_pause_comes_after_every_mini_batch_and_progress_with_it(mnist, monkeypatch):
    slept = []
    monkeypatch.setattr(training.time, "sleep", slept.append)
    progress = []
    fresh(mnist, pause_ms=40, batch_size=100, epochs=1).epoch(on_progress=progress.append)
    assert slept == [0.04] * 5 and progress == [100] * 5  # 500 images in batches of 100


def test_a_stop_request_is_heard_after_the_mini_batch_not_the_chunk(mnist, tmp_path, monkeypatch):
    slept = []
    monkeypatch.setattr(training.time, "sleep", slept.append)
    result = runs.run(fresh(mnist, pause_ms=100), tmp_path / "m.npz", should_stop=lambda: bool(slept))
    assert result.outcome == "interrupted" and len(slept) == 1  # one mini-batch of 10, then stopped


def test_ctrl_c_during_a_pause_stops_at_once(mnist, tmp_path, monkeypatch):
    def sleep(seconds):
        raise KeyboardInterrupt  # what SIGINT does to time.sleep in the main thread

    monkeypatch.setattr(training.time, "sleep", sleep)
    result = runs.run(fresh(mnist, pause_ms=10_000), tmp_path / "m.npz")
    assert result.outcome == "interrupted" and result.saved_epoch == 0 and result.exit_code == 130


GUESSING = {  # runs on the synthetic digits that never learn, and why
    "saturated": dict(hidden_sizes=(100,), learning_rate=30.0),
    "too slow": dict(learning_rate=1e-4),
}


@pytest.mark.parametrize("kind", sorted(GUESSING))
def test_a_run_that_guesses_says_so_with_the_textbooks_remedy(mnist, tmp_path, kind):
    result = runs.run(fresh(mnist, **GUESSING[kind]), tmp_path / "m.npz")
    assert result.outcome == "finished" and result.test_accuracy < 0.2
    assert result.guessing.startswith("The network is guessing: after 3 epochs its validation accuracy is ")
    assert "--cost cross-entropy" in result.guessing and "--init scaled" in result.guessing
    if kind == "saturated":
        assert "a smaller --eta (it was 30)" in result.guessing and "saturated" in result.guessing
    else:  # the cost falls, without saturated outputs: eta is too small, not too large
        assert "a larger --eta (it was 0.0001)" in result.guessing
    assert json.loads(json.dumps(result.to_dict()))["guessing"] == result.guessing


def test_a_run_that_learns_says_nothing_of_guessing(mnist, tmp_path):
    result = runs.run(fresh(mnist), tmp_path / "m.npz")
    assert result.test_accuracy > 0.5 and result.guessing == ""


def test_train_prints_epoch_0_the_peeks_and_the_guessing_verdict_after_the_result(synthetic_data_dir, tmp_path):
    common = ["--hidden", "12", "--epochs", "2", "--validation-size", "100", "--data-dir", synthetic_data_dir]
    good = run_cli("train", *common, "--peek-every", "200", "--out", tmp_path / "good.npz").output
    assert "epoch   0/2  cost " in good and "untrained" in good and "guessing" not in good
    assert good.count("on a 100-image sample") == 2 * 2  # at 200 and 400 of 500 images, in epochs 1 and 2
    guessing = run_cli("train", *common, "--eta", "1e-4", "--out", tmp_path / "bad.npz").output.splitlines()
    assert guessing[-2].startswith("test accuracy ") and guessing[-1].startswith("The network is guessing")


def test_progress_json_tells_epoch_0_the_peeks_and_the_verdict(synthetic_data_dir, tmp_path):
    result = run_cli("train", "--hidden", "8", "--epochs", "1", "--validation-size", "100", "--peek-every", "250",
                     "--data-dir", synthetic_data_dir, "--out", tmp_path / "m.npz", "--progress", "json")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events if e["event"] != "progress"]
    assert kinds == ["start", "untrained", "peek", "epoch", "end"]
    untrained = next(e for e in events if e["event"] == "untrained")
    assert untrained["epoch"] == 0 and 0 <= untrained["validation_accuracy"] <= 1 and untrained["training_cost"] > 0
    peek = next(e for e in events if e["event"] == "peek")
    assert (peek["images"], peek["total"], peek["at"], peek["sample_size"]) == (250, 500, 0.5, 100)
    assert events[-1]["guessing"] == ""
    saved = checkpoint.load(tmp_path / "m.npz").metadata["state"]
    assert saved["untrained"]["epoch"] == 0 and len(saved["peeks"]) == 1  # a resumed run's curve keeps them


def test_resume_may_change_peek_every_and_pause_ms_and_keeps_epoch_0(mnist, tmp_path):
    out = tmp_path / "m.npz"
    runs.run(fresh(mnist, epochs=2), out)
    plan = runs.prepare(TrainConfig(), out, lambda: mnist, resume_from=out,
                        requested={"epochs": 3, "peek_every": 100, "pause_ms": 0})
    assert plan.trainer.config.peek_every == 100 and plan.trainer.state.untrained is not None
    heard = []
    runs.run(plan.trainer, plan.out, resumed_from=plan.resumed_from, on_untrained=heard.append)
    assert heard == []  # epoch 0 belongs to the run's start, measured once
