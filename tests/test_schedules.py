"""Between epochs: the best epoch, --eta-epoch-factor, reduce-on-plateau and early stopping."""

from digitnet import schedules
from digitnet.config import TrainConfig
from digitnet.data import load_mnist
from digitnet.metrics import accuracy
from digitnet.training import EpochStats, Trainer, TrainState


def small_config(**overrides):
    values = dict(hidden_sizes=(12,), epochs=3, batch_size=10, learning_rate=3.0, seed=0, validation_size=100)
    values.update(overrides)
    return TrainConfig(**values)


def after(state, config, epoch, validation):
    return schedules.after_epoch(state, config, EpochStats(epoch, 0.5, validation, 1.0, state.learning_rate))


def test_a_better_validation_accuracy_is_the_new_best_and_resets_the_counters():
    config, state = small_config(eta_patience=5), TrainState(learning_rate=3.0)
    assert after(state, config, 1, 0.5) is True
    assert after(state, config, 2, 0.4) is False and state.epochs_since_best == 1
    assert after(state, config, 3, 0.6) is True
    assert (state.best_epoch, state.best_accuracy, state.epochs_since_best, state.epochs_since_eta_change) == (
        3, 0.6, 0, 0)
    assert state.epochs_completed == 3 and [h["epoch"] for h in state.history] == [1, 2, 3]


def test_without_validation_only_the_epoch_factor_applies():
    config, state = small_config(eta_epoch_factor=0.5, patience=1, validation_size=0), TrainState(learning_rate=2.0)
    assert after(state, config, 1, None) is False and after(state, config, 2, None) is False
    assert state.learning_rate == 0.5 and not state.stopped and state.best_epoch == 0


def test_patience_stops_and_plateau_decays_eta_down_to_its_floor():
    config, state = small_config(patience=2), TrainState(learning_rate=3.0)
    after(state, config, 1, 0.5)
    after(state, config, 2, 0.5)
    assert not state.stopped
    after(state, config, 3, 0.5)
    assert state.stopped == "early stopping: no better validation accuracy for 2 epochs"

    config, state = small_config(eta_patience=1, eta_decay=0.5, eta_min_factor=4), TrainState(learning_rate=3.0)
    after(state, config, 1, 0.5)
    after(state, config, 2, 0.5)
    assert state.learning_rate == 1.5 and not state.stopped
    after(state, config, 3, 0.5)
    assert state.learning_rate == 0.75 and state.stopped == "eta fell to 0.75, 1/4 of its starting value"


def test_early_stopping_and_best_epoch(synthetic_data_dir):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(epochs=50, patience=2))
    history = list(trainer.epochs())
    assert len(history) < 50 and "early stopping" in trainer.state.stopped
    best = max(history, key=lambda s: s.validation_accuracy)
    assert trainer.state.best_epoch == best.epoch
    assert history[-1].epoch - trainer.state.best_epoch == 2
    assert accuracy(trainer.best_network, data.validation) == best.validation_accuracy


def test_reduce_on_plateau_halves_eta_then_stops(synthetic_data_dir):
    data = load_mnist(synthetic_data_dir, validation_size=100)
    trainer = Trainer(data, small_config(epochs=200, eta_patience=1, eta_min_factor=4))
    history = list(trainer.epochs())
    rates = sorted({s.learning_rate for s in history}, reverse=True)
    assert rates == [3.0, 1.5]  # the run stops as soon as eta reaches 3.0 / 4
    assert "eta fell" in trainer.state.stopped
    assert trainer.state.learning_rate == 0.75



def test_from_average_from_on_every_epoch_is_the_kept_one():
    config, state = small_config(average_from=3, epochs=5), TrainState(learning_rate=3.0)
    assert after(state, config, 1, 0.6) is True        # before the mean: best-epoch selection as usual
    assert after(state, config, 2, 0.5) is False and state.best_epoch == 1
    assert after(state, config, 3, 0.4) is False       # the trainer keeps the mean itself
    assert (state.best_epoch, state.best_accuracy, state.epochs_since_best) == (3, 0.4, 0)
