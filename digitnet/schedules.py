"""What happens between epochs: the best epoch so far, the learning-rate schedules and early stopping.

After every epoch ``after_epoch`` updates the run's ``TrainState`` from the
epoch's statistics, in this order:

    --eta-epoch-factor   eta <- eta * factor, every epoch (--late-batch-size scales the eta an epoch
                         trains with, batch_eta_factor, never the schedule's own)
    --average-from E     from epoch E on the kept weights are the running mean of the epochs' weights
                         (the trainer keeps it), so each such epoch is recorded as the best: the
                         mean to date is what the run hands out (the patience rules are refused with it)
    best epoch           a better validation accuracy resets both patience counters
    --patience           N epochs without a better one: stop
    --patience-eta       N epochs without one: eta <- eta * --eta-decay (reduce on plateau),
                         and stop once eta has fallen by --eta-min-factor

Pure book-keeping on numbers: the trainer keeps the weights of the best epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the trainer's types; this module needs none of their code
    from digitnet.config import TrainConfig
    from digitnet.training import EpochStats, TrainState


def averaging(config: TrainConfig, epoch: int) -> bool:
    """Whether ``epoch``'s weights join the running mean of --average-from."""
    return bool(config.average_from) and epoch >= config.average_from


def batch_size(config: TrainConfig, epoch: int) -> int:
    """The mini-batch size m of ``epoch``: --late-batch-size from --late-batch-from on, else --batch-size."""
    if config.late_batch_size and epoch >= config.late_batch_from:
        return config.late_batch_size
    return config.batch_size


def batch_eta_factor(config: TrainConfig, epoch: int) -> float:
    """eta's factor in ``epoch`` for its mini-batch size: m / --batch-size (the linear scaling rule; 1
    before --late-batch-from).  Nielsen's step w <- w - (eta/m) sum_x nabla C_x moves the weights by
    eta times the mean gradient; a batch k times as large with k times eta keeps the step's noise
    (which goes with eta/m) and an epoch's progress about the same, in 1/k as many steps."""
    return batch_size(config, epoch) / config.batch_size


def warmup_factor(config: TrainConfig, epoch: int, images_done: int, epoch_images: int) -> float:
    """--warmup-epochs N: eta's factor after ``images_done`` images of ``epoch``, linear from 0 to 1 over
    the first N epochs' images, min(1, ((epoch - 1) n + images) / (N n)); 1 once warm-up is over."""
    warmup = config.warmup_epochs
    if not warmup or epoch > warmup:
        return 1.0
    return min(1.0, ((epoch - 1) * epoch_images + images_done) / (warmup * epoch_images))


def after_epoch(state: TrainState, config: TrainConfig, stats: EpochStats) -> bool:
    """Record ``stats`` in ``state`` and apply the schedules; True when this epoch is the best so far."""
    state.epochs_completed = stats.epoch
    state.history.append(stats.to_dict())
    if config.eta_epoch_factor != 1:
        state.learning_rate *= config.eta_epoch_factor
    accuracy_now = stats.validation_accuracy
    if averaging(config, stats.epoch):
        if accuracy_now is not None:  # the mean's accuracy: the weights kept
            state.best_accuracy, state.best_epoch = accuracy_now, stats.epoch
            state.epochs_since_best = state.epochs_since_eta_change = 0
        return False
    if accuracy_now is None:
        return False
    if state.best_accuracy is None or accuracy_now > state.best_accuracy:
        state.best_accuracy = accuracy_now
        state.best_epoch = stats.epoch
        state.epochs_since_best = 0
        state.epochs_since_eta_change = 0
        return True
    state.epochs_since_best += 1
    state.epochs_since_eta_change += 1
    if config.patience and state.epochs_since_best >= config.patience:
        state.stopped = (f"early stopping: no better validation accuracy for {config.patience} epochs")
    elif config.eta_patience and state.epochs_since_eta_change >= config.eta_patience:
        state.learning_rate *= config.eta_decay
        state.epochs_since_eta_change = 0
        if state.learning_rate < config.learning_rate / config.eta_min_factor * (1 + 1e-9):
            state.stopped = (f"eta fell to {state.learning_rate:g}, 1/{config.eta_min_factor:g} "
                             "of its starting value")
    return False
