"""The SGD loop: learning, reproducibility, resuming, schedules, metrics."""

import numpy as np
import pytest

from digitnet import checkpoint, runs
from digitnet.config import TrainConfig
from digitnet.data import load_mnist
from digitnet.metrics import accuracy, classification_report, confusion_matrix
from digitnet.training import Trainer, TrainingDiverged


def small_config(**overrides):
    values = dict(hidden_sizes=(12,), epochs=3, batch_size=10, learning_rate=3.0, seed=0, validation_size=100)
    values.update(overrides)
    return TrainConfig(**values)


def weights_of(network):
    return [a.copy() for a in network.weights + network.biases]


def without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def resumed(path, data, epochs=None, requested=None):
    """The Trainer that `train --resume path` continues with, built as the CLI builds it (runs.prepare)."""
    requested = dict(requested or {}, **({} if epochs is None else {"epochs": epochs}))
    return runs.prepare(TrainConfig(), path, lambda: data, resume_from=path, requested=requested).trainer


def test_training_learns_the_synthetic_digits(synthetic_data_dir):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(epochs=5))
    before = accuracy(trainer.network, data.test)
    history = list(trainer.epochs())
    assert [s.epoch for s in history] == [1, 2, 3, 4, 5]
    assert accuracy(trainer.network, data.test) > max(0.9, before)
    assert history[-1].training_cost < history[0].training_cost
    assert all(s.validation_accuracy is not None for s in history)


def test_progress_callback_counts_every_training_image(synthetic_data_dir):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    seen = []
    next(Trainer(data, small_config(batch_size=7)).epochs(on_progress=seen.append))
    assert sum(seen) == len(data.training)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_identical_weights(synthetic_data_dir, dtype):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    runs_ = []
    for _ in range(2):
        trainer = Trainer(data, small_config(dtype=dtype))
        list(trainer.epochs())
        runs_.append(weights_of(trainer.network))
        assert trainer.network.weights[0].dtype == np.dtype(dtype)
    for a, b in zip(*runs_):
        np.testing.assert_array_equal(a, b)
    other = Trainer(data, small_config(dtype=dtype, seed=1))
    list(other.epochs())
    assert not np.array_equal(other.network.weights[0], runs_[0][0])


CHAPTER_3 = [
    dict(cost="log-likelihood", init="scaled", learning_rate=0.1, momentum=0.9, batch_size=7),
    dict(cost="cross-entropy", init="scaled", learning_rate=0.5, dropout=0.3, l1=0.5, l2=1.0),
    dict(cost="log-likelihood", init="scaled", learning_rate=0.05, momentum=0.5, dropout=0.2,
         augment="shift=1,elastic=20:4,affine=10:0.1", eta_epoch_factor=0.9),
    # Resumed inside the warm-up and inside the mean (the half-way checkpoint is at epoch 2).
    dict(cost="log-likelihood", init="scaled", learning_rate=0.1, momentum=0.9, warmup_epochs=3, average_from=2),
    # Resumed before the larger mini-batches start.
    dict(cost="log-likelihood", init="scaled", learning_rate=0.1, momentum=0.9, batch_size=5, late_batch_size=20,
         late_batch_from=3, augment="elastic=20:4"),
]


@pytest.mark.parametrize("overrides", [{}, dict(cost="cross-entropy", init="scaled", l2=1.0, eta_patience=1),
                                       dict(augment="shift=2"), *CHAPTER_3])
def test_resumed_run_equals_uninterrupted_run(synthetic_data_dir, tmp_path, overrides):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    whole = Trainer(data, small_config(epochs=4, **overrides))
    list(whole.epochs())

    first = Trainer(data, small_config(epochs=2, **overrides))
    list(first.epochs())
    runs.save_run(tmp_path / "half.npz", first)
    second = resumed(tmp_path / "half.npz", data, epochs=4)
    list(second.epochs())

    for a, b in zip(weights_of(whole.network), weights_of(second.network)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(weights_of(whole.best_network), weights_of(second.best_network)):
        np.testing.assert_array_equal(a, b)
    assert without_seconds(whole.state.history) == without_seconds(second.state.history)
    assert whole.state.learning_rate == second.state.learning_rate


def test_resume_refuses_changed_settings_and_finished_runs(synthetic_data_dir, tmp_path):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(epochs=2))
    list(trainer.epochs())
    saved = runs.save_run(tmp_path / "m.npz", trainer)
    with pytest.raises(runs.ResumeConflict, match="--eta was 3, you gave 0.5"):
        resumed(saved, data, epochs=4, requested={"learning_rate": 0.5})
    with pytest.raises(runs.ResumeConflict, match="already completed 2 epochs"):
        resumed(saved, data, epochs=2)
    with pytest.raises(runs.ResumeConflict, match="completed all 2 epochs of its plan.*--epochs 12"):
        resumed(saved, data)
    # Settings equal to the run's are fine, even when spelled differently.
    resumed(saved, data, epochs=3, requested={"hidden_sizes": [12], "learning_rate": 3})


def test_divergence_is_reported(synthetic_data_dir):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(learning_rate=1e38, epochs=3, cost="cross-entropy"))
    with pytest.raises(TrainingDiverged):
        list(trainer.epochs())


def test_confusion_matrix_and_report():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 2, 0])
    matrix = confusion_matrix(labels, predicted)
    assert matrix.shape == (10, 10) and matrix.sum() == 6
    assert matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix[2, 0] == 1 and matrix[2, 2] == 2
    report = classification_report(matrix)
    assert report["accuracy"] == pytest.approx(4 / 6) and report["correct"] == 4 and report["total"] == 6
    assert report["per_class"][0] == {"digit": 0, "precision": 0.5, "recall": 0.5, "support": 2}
    assert report["per_class"][2]["recall"] == pytest.approx(2 / 3)
    assert report["per_class"][5]["precision"] is None


def test_default_network_learns_real_mnist_in_one_epoch(real_mnist_dir):
    data = load_mnist(real_mnist_dir)
    trainer = Trainer(data, TrainConfig(epochs=1))
    (stats,) = list(trainer.epochs())
    assert stats.validation_accuracy > 0.88
    assert accuracy(trainer.network, data.test) > 0.88


def test_default_run_reaches_the_textbook_accuracy(real_mnist_dir):
    """The core issue's bar: the textbook's first network, all defaults, >= 95.0% on the test set."""
    data = load_mnist(real_mnist_dir)
    trainer = Trainer(data, TrainConfig())
    list(trainer.epochs())
    assert trainer.state.epochs_completed == 30
    assert accuracy(trainer.best_network, data.test) >= 0.95
    assert accuracy(trainer.network, data.test) >= 0.95


# ---------------------------------------------------------------------------
# Chapter 3, distortions on the second core, monitoring from SGD's own forward passes


@pytest.mark.parametrize("overrides", CHAPTER_3)
def test_chapter_3_options_learn_and_repeat_with_the_same_seed(synthetic_data_dir, overrides):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    results = []
    for _ in range(2):
        trainer = Trainer(data, small_config(epochs=4, **overrides))
        history = list(trainer.epochs())
        results.append(weights_of(trainer.network))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert history[-1].training_cost < history[0].training_cost
    assert accuracy(trainer.network, data.test) > 0.8


def test_cost_from_sgd_forward_passes_is_close_to_the_exact_pass(synthetic_data_dir):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    cheap = Trainer(data, small_config(epochs=3, l2=1.0))
    exact = Trainer(data, small_config(epochs=3, l2=1.0, exact_cost=True))
    cheap_history, exact_history = list(cheap.epochs()), list(exact.epochs())
    for a, b in zip(weights_of(cheap.network), weights_of(exact.network)):
        np.testing.assert_array_equal(a, b)  # monitoring never changes the training
    assert {s.cost_source for s in cheap_history} == {"sgd"}
    assert {s.cost_source for s in exact_history} == {"exact"}
    assert exact_history[-1].training_cost == pytest.approx(exact.training_cost())
    # SGD saw each example before its batch's update, so its mean is a little higher late in training,
    # but of the same size.
    for c, e in zip(cheap_history[1:], exact_history[1:]):
        assert 0.5 * e.training_cost < c.training_cost < 2 * e.training_cost


def test_resume_with_momentum_needs_the_velocities(synthetic_data_dir, tmp_path):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(epochs=1, momentum=0.9, learning_rate=0.5))
    list(trainer.epochs())
    path = runs.save_run(tmp_path / "m.npz", trainer)
    saved = checkpoint.load(path)
    assert saved.velocities is not None
    checkpoint.save(tmp_path / "bare.npz", saved.network, saved.metadata)
    with pytest.raises(runs.ResumeError, match="velocities"):
        resumed(tmp_path / "bare.npz", data, epochs=2)


def test_resume_treats_augment_spellings_alike_and_refuses_a_change(synthetic_data_dir, tmp_path):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(epochs=1, augment="shift=1"))
    list(trainer.epochs())
    saved = runs.save_run(tmp_path / "m.npz", trainer)
    resumed(saved, data, epochs=2, requested={"augment": "1"})
    with pytest.raises(runs.ResumeError, match="augment"):
        resumed(saved, data, epochs=2, requested={"augment": "elastic=34:4"})


def test_weight_averaging_keeps_the_mean_of_the_epochs_weights(synthetic_data_dir):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    config = small_config(epochs=4, average_from=2, cost="log-likelihood", init="scaled", learning_rate=0.5)
    trainer = Trainer(data, config)
    ends = []
    for stats in trainer.epochs():
        ends.append(weights_of(trainer.network))
        if stats.epoch >= 2:  # the epoch's accuracy is the mean's, and the mean is the kept network
            assert stats.validation_accuracy == trainer.validation_accuracy(trainer.best_network)
            assert (trainer.state.best_epoch, trainer.state.averaged_epochs) == (stats.epoch, stats.epoch - 1)
    for kept, *epochs in zip(weights_of(trainer.best_network), *ends[1:]):
        np.testing.assert_allclose(kept, np.mean(epochs, axis=0), rtol=1e-5, atol=1e-6)
    # The weights trained are those of the same run without averaging: the mean only watches.
    plain = Trainer(data, small_config(epochs=4, cost="log-likelihood", init="scaled", learning_rate=0.5))
    list(plain.epochs())
    for a, b in zip(weights_of(plain.network), weights_of(trainer.network)):
        np.testing.assert_array_equal(a, b)


def test_warmup_ramps_eta_over_the_first_epochs_only(synthetic_data_dir):
    from digitnet import schedules

    config = small_config(warmup_epochs=2)
    assert [schedules.warmup_factor(config, e, i, 100) for e, i in ((1, 10), (1, 100), (2, 50), (3, 10))] == [
        0.05, 0.5, 0.75, 1.0]
    data = load_mnist(synthetic_data_dir, validation_size=100)
    warm, cold = Trainer(data, small_config(epochs=3, warmup_epochs=2)), Trainer(data, small_config(epochs=3))
    first_warm, first_cold = weights_of(warm.network), weights_of(cold.network)
    next(warm.epochs()), next(cold.epochs())
    moved = [float(np.abs(a - b).sum()) for a, b in ((warm.network.weights[0], first_warm[0]),
                                                      (cold.network.weights[0], first_cold[0]))]
    assert 0 < moved[0] < moved[1]  # smaller steps while warming up


@pytest.mark.parametrize("overrides, message", [
    (dict(average_from=5, epochs=4), "--average-from 5 is after the last epoch (--epochs 4)"),
    (dict(average_from=2, patience=3), "cannot be combined with --patience or --patience-eta"),
    (dict(average_from=2, eta_patience=3), "cannot be combined with --patience or --patience-eta"),
])
def test_averaging_refuses_what_it_cannot_honour(overrides, message):
    assert any(message in p for p in small_config(**overrides).problems())


@pytest.mark.parametrize("overrides, message", [
    (dict(late_batch_size=100), "--late-batch-size and --late-batch-from go together"),
    (dict(late_batch_from=2), "--late-batch-size and --late-batch-from go together"),
    (dict(late_batch_size=100, late_batch_from=5, epochs=4), "--late-batch-from 5 is after the last epoch (--epochs 4)"),
])
def test_late_batches_refuse_what_they_cannot_honour(overrides, message):
    assert any(message in p for p in small_config(**overrides).problems())


def test_late_batches_refuse_more_than_the_training_images():
    config = small_config(late_batch_size=5000, late_batch_from=2)
    assert config.problems(training_file_size=1000) == ["--late-batch-size 5000 is larger than the 900 training images"]


def test_late_batches_train_as_that_batch_size_with_eta_scaled(synthetic_data_dir):
    """From --late-batch-from on, an epoch is exactly an epoch of --batch-size N with eta times
    N / --batch-size: the same weights, bit for bit, as a run set up so from the start."""
    from digitnet import schedules

    data = load_mnist(synthetic_data_dir, validation_size=100)
    config = small_config(epochs=2, batch_size=5, learning_rate=0.5, late_batch_size=20, late_batch_from=2)
    assert [schedules.batch_size(config, e) for e in (1, 2, 3)] == [5, 20, 20]
    assert [schedules.batch_eta_factor(config, e) for e in (1, 2)] == [1.0, 4.0]
    late = Trainer(data, config)
    steps = []
    step = late.optimizer.step
    late.optimizer.step = lambda nb, nw, eta, m: (steps.append((late.state.epochs_completed + 1, m, eta)),
                                                 step(nb, nw, eta, m))
    late_epochs = list(late.epochs())
    assert {(e, m, eta) for e, m, eta in steps} == {(1, 5, 0.5), (2, 20, 2.0)}
    assert [s.learning_rate for s in late_epochs] == [0.5, 2.0]  # what each epoch trained with
    assert late.state.learning_rate == 0.5  # the schedule's own eta is not scaled

    # Epoch 1 at batch 5, then one epoch of a run that trains at batch 20 and eta 2 throughout.
    first = Trainer(data, small_config(epochs=1, batch_size=5, learning_rate=0.5))
    list(first.epochs())
    wide = Trainer(data, small_config(epochs=2, batch_size=20, learning_rate=2.0), network=first.network,
                   state=first.state)
    wide.state.learning_rate = 2.0
    list(wide.epochs())
    for a, b in zip(weights_of(late.network), weights_of(wide.network)):
        np.testing.assert_array_equal(a, b)


def test_blas_threads_follow_the_measured_table(monkeypatch):
    from digitnet import training

    assert training.blas_threads([784, 800, 10], 100) == 1
    assert training.blas_threads([784, 1600, 10], 100) == 2 == training.blas_threads([784, 1600, 10], 200)
    assert training.blas_threads([784, 1600, 10], 10) == 1
    monkeypatch.setattr(training, "TWO_BLAS_THREADS", ((800, 100),))
    assert [training.blas_threads([784, h, 10], m) for h, m in ((800, 100), (1600, 200), (300, 100), (800, 10))] == [
        2, 2, 1, 1]
