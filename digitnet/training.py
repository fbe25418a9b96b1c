"""Mini-batch stochastic gradient descent, epoch by epoch.

``Trainer.epochs()`` yields one ``EpochStats`` per epoch, so the caller (the CLI,
a script, a test) decides what to print and when to save: this module does no
I/O.  Before the first epoch it measures the untrained network (epoch 0 of the
curve), and with ``--peek-every`` it looks at a fixed validation sample within
the first epochs (``Peek``); neither touches the weights or the random numbers.  Everything a run needs to continue exactly where it stopped (weights, RNG
state, learning rate, the best epoch so far) is in ``Trainer.state`` and the
networks, which the checkpoint stores.  The loop is here; the chunks it reads
come from ``batches`` (a second thread makes the distortions), what changes
between epochs is ``schedules``, and the settings are ``config.TrainConfig``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Iterator

import numpy as np

from digitnet import augment_spec, batches, schedules
from digitnet.config import PEEK_EPOCHS, PEEK_SAMPLE, TrainConfig
from digitnet.data import MNIST, to_float
from digitnet.network import Network
from digitnet.optim import SGD

# Examples per forward pass when measuring the cost on the whole training set.
EVAL_CHUNK = 5000


class TrainingDiverged(Exception):
    """The weights blew up (the learning rate is too large for this network)."""

    def __init__(self, epoch: int, reason: str):
        super().__init__(f"training diverged in epoch {epoch}: {reason}")
        self.epoch = epoch
        self.reason = reason


@dataclass
class EpochStats:
    epoch: int
    training_cost: float         # see ``cost_source``
    validation_accuracy: float | None
    seconds: float
    learning_rate: float
    cost_source: str = "sgd"     # "sgd": mean over the epoch's mini-batches as SGD saw them; "exact": end-of-epoch pass

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Peek:
    """The accuracy on the validation split's first ``sample_size`` images, ``images`` into an epoch (--peek-every)."""

    epoch: int                   # the epoch in progress
    images: int                  # training images it has seen so far
    total: int                   # training images in an epoch
    sample_accuracy: float
    sample_size: int

    @property
    def at(self) -> float:
        """Where it sits on the curve, in epochs: 0.1 is a tenth of the way through epoch 1."""
        return self.epoch - 1 + self.images / self.total

    def to_dict(self) -> dict:
        return dict(asdict(self), at=round(self.at, 6))


@dataclass
class TrainState:
    """Where a run stands after its last complete epoch: enough to resume it exactly."""

    epochs_completed: int = 0
    learning_rate: float = 3.0
    best_accuracy: float | None = None
    best_epoch: int = 0
    epochs_since_best: int = 0
    epochs_since_eta_change: int = 0
    stopped: str = ""            # why the run ended early ("" while it may go on)
    rng_state: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    untrained: dict | None = None  # epoch 0: the untrained network's EpochStats, as a dict
    peeks: list = field(default_factory=list)  # Peek.to_dict() of every --peek-every measurement
    averaged_epochs: int = 0     # --average-from: epochs in the mean kept as the best network

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainState":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------------------
# The SGD loop


# (widest hidden layer at least, batch size at least) where a second BLAS thread was measured to win
# (`python scripts/bench_train.py --blas-only`, docs/speed.md).  None so far: on 2 cores, 784-800-10 and
# 784-1600-10 at batch 100 and 200 took 2.3-2.9x as long per SGD pass with two threads as with one
# while the distortions (elastic=34:4) ran on the other core, and 1.4-6.4x without distortions
# (2026-12-02, load average 2.4-3.7: other jobs were running; a quiet machine was not to be had).
# Re-measured quietly (bench_train.py --blas-only, 2026-12-02 05:47 UTC, nothing else running, load
# average 1.2 over 5 min; elastic=34:4 on the other core, median of 2 passes): 784-800-10 is quicker
# on one thread (batch 100: 2.13 s against 2.59 s; 200: 1.82 against 2.06), 784-1600-10 on two
# (batch 100: 4.16 against 3.67; 200: 3.49 against 3.12).  On a busy machine two threads lose.
TWO_BLAS_THREADS: tuple[tuple[int, int], ...] = ((1600, 100),)


def blas_threads(sizes, batch_size: int) -> int:
    """BLAS threads for training a network of ``sizes`` at ``batch_size``: 2 where TWO_BLAS_THREADS says
    a second thread won, else 1."""
    widest = max(sizes[1:-1], default=0)
    return 2 if any(widest >= w and batch_size >= b for w, b in TWO_BLAS_THREADS) else 1


def single_threaded_blas(threads: int = 1):
    """Run BLAS on one thread (or ``threads``): a mini-batch's matrices are too small to split, and
    OpenBLAS's spinning worker threads were measured to make epochs slower, up to
    8x (784-300-10, batch 10: 13.6 s per epoch with two threads, 1.7 s with one;
    even the 50,000-image cost pass was 1.3x faster on one thread).  ``blas_threads`` chooses."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def _copy(network: Network) -> Network:
    return Network(network.sizes, [w.copy() for w in network.weights],
                   [b.copy() for b in network.biases], cost=network.cost.name, dtype=network.dtype)


class Trainer:
    """Mini-batch SGD over ``data.training``, with validation after every epoch.

    Fresh run: ``Trainer(data, config)`` draws the initial weights from a
    ``numpy.random.Generator`` seeded with ``config.seed``; the same generator
    then shuffles the training data and draws the distortions every epoch, so a
    seed fixes the run.  Resumed run: pass the network, best network, state and
    momentum velocities from a checkpoint.

    Other data than MNIST (the scikit-learn estimator's): ``sizes`` gives a fresh
    network's layers instead of ``config.sizes()`` (784, hidden, 10), e.g.
    ``[64, 30, 3]``; the splits' labels are then 0..k-1 for k outputs and their
    rows are uint8 pixels (scaled by 1/255) or numbers used as they are (``data.to_float``).
    """

    def __init__(self, data: MNIST, config: TrainConfig, network: Network | None = None,
                 state: TrainState | None = None, best_network: Network | None = None,
                 velocities: tuple[list, list] | None = None, sizes: list[int] | None = None):
        self.data = data
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        if network is None:
            network = Network(sizes or config.sizes(), cost=config.cost, init=config.init,
                              rng=self.rng, dtype=config.dtype)
            state = TrainState(learning_rate=config.learning_rate)
        else:
            self.rng.bit_generator.state = state.rng_state
        self.network = network
        self.best_network = best_network
        self.state = state
        self.state.rng_state = self.rng.bit_generator.state
        self.augmentation = augment_spec.parse(config.augment)
        self.optimizer = SGD(network, max(1, len(data.training)), l2=config.l2, l1=config.l1,
                             momentum=config.momentum, velocities=velocities)
        dtype = np.dtype(config.dtype)
        # One-hot targets: row k is the desired output for digit (class) k.
        self._targets = np.eye(network.sizes[-1], dtype=dtype)
        self._validation_x = (to_float(data.validation.images, dtype) if len(data.validation) else None)
        self._eval_x = None
        self._outputs = None
        self._blas = blas_threads(network.sizes, config.batch_size)

    @property
    def finished(self) -> bool:
        return bool(self.state.stopped) or self.state.epochs_completed >= self.config.epochs

    def epochs(self, on_progress: Callable[[int], None] | None = None,
               on_peek: Callable[[Peek], None] | None = None,
               on_untrained: Callable[[EpochStats], None] | None = None) -> Iterator[EpochStats]:
        """Train epoch after epoch until ``config.epochs`` are done or a stopping rule fires.

        A fresh run first measures the untrained network (``measure_untrained``,
        told to ``on_untrained``); ``on_peek`` hears each ``Peek`` of --peek-every.
        """
        if self.state.epochs_completed == 0 and self.state.untrained is None and not self.finished:
            untrained = self.measure_untrained()
            if on_untrained is not None:
                on_untrained(untrained)
        while not self.finished:
            yield self.epoch(on_progress, on_peek)

    def epoch(self, on_progress: Callable[[int], None] | None = None,
              on_peek: Callable[[Peek], None] | None = None) -> EpochStats:
        """Train one epoch (see ``epochs``) and return its statistics."""
        m = schedules.batch_size(self.config, self.state.epochs_completed + 1)  # --late-batch-size may change it
        with single_threaded_blas(blas_threads(self.network.sizes, m)):
            return self._epoch(on_progress, on_peek)

    def measure_untrained(self) -> EpochStats:
        """Epoch 0 of the curve: the training cost (an exact pass) and the validation accuracy of the
        weights as drawn, kept in ``state.untrained``.  Reads the weights only: no update, no random
        number, so the run's weights are the same as without it."""
        started = time.perf_counter()
        with single_threaded_blas(self._blas), np.errstate(all="ignore"):  # a wild initial network is still measured
            cost, _ = self._cost_and_saturation()
            validation = self.validation_accuracy()
        if not self.config.exact_cost:
            self._eval_x = None  # only --exact-cost needs the pass's buffer again
        stats = EpochStats(0, cost if np.isfinite(cost) else None, validation, time.perf_counter() - started,
                           self.state.learning_rate, "exact")
        self.state.untrained = stats.to_dict()
        return stats

    def _peek(self, epoch: int, images: int, total: int) -> Peek:
        """A ``Peek`` now: the accuracy on the first PEEK_SAMPLE validation images (the same ones every
        time, no RNG), recorded in ``state.peeks``; never raises for an overflow (it only looks)."""
        sample = self._validation_x[:PEEK_SAMPLE]
        with np.errstate(all="ignore"):
            answers = np.argmax(self.network.feedforward(sample), axis=1)
        accuracy_now = float(np.mean(answers == self.data.validation.labels[:len(sample)]))
        peek = Peek(epoch, images, total, accuracy_now, len(sample))
        self.state.peeks.append(peek.to_dict())
        return peek

    def _epoch(self, on_progress, on_peek=None) -> EpochStats:
        """One epoch: SGD over the training set, then its cost and the validation accuracy."""
        started = time.perf_counter()
        epoch = self.state.epochs_completed + 1
        learning_rate = self.state.learning_rate * schedules.batch_eta_factor(self.config, epoch)
        try:
            # Overflow means the weights have blown up: with the tanh-form sigmoid the cost
            # would stay finite (saturated), so this is where divergence shows first.
            with np.errstate(over="raise", invalid="raise"):
                outputs, labels = self._sgd_epoch(learning_rate, on_progress, on_peek)
        except FloatingPointError:
            raise TrainingDiverged(epoch, "the cost became inf (the weights overflowed)") from None
        cost, saturated = self._cost_and_saturation(None if self.config.exact_cost else (outputs, labels))
        if not np.isfinite(cost) or not all(np.all(np.isfinite(w)) for w in self.network.weights):
            raise TrainingDiverged(epoch, f"the cost became {cost}")
        if saturated:
            # The sigmoid keeps the cost finite, but a network whose every output is exactly
            # 0 or 1 has sigma' = 0 everywhere: no gradient flows, it can never recover.
            raise TrainingDiverged(epoch, "every output neuron is saturated at exactly 0 or 1 "
                                          "(the weights blew up), so no gradient can flow")
        if schedules.averaging(self.config, epoch):
            self._average()
            validation = self.validation_accuracy(self.best_network)
        else:
            validation = self.validation_accuracy()
        stats = EpochStats(epoch, cost, validation, time.perf_counter() - started, learning_rate,
                           "exact" if self.config.exact_cost else "sgd")
        self._after_epoch(stats)
        return stats

    def sgd_epoch(self, learning_rate: float, on_progress=None, *,
                  one_blas_thread: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """One pass of SGD without the epoch's book-keeping (for benchmarks); see ``_sgd_epoch``.

        ``one_blas_thread=False`` leaves BLAS's threads as the caller set them,
        to measure what ``single_threaded_blas`` saves.
        """
        with single_threaded_blas(self._blas) if one_blas_thread else contextlib.nullcontext():
            return self._sgd_epoch(learning_rate, on_progress)

    def _sgd_epoch(self, learning_rate: float, on_progress=None, on_peek=None) -> tuple[np.ndarray, np.ndarray]:
        """One pass over the shuffled (and distorted) training data in mini-batches of m (``schedules.batch_size``).

        Returns the output activations of every example as SGD's forward passes
        computed them (before each mini-batch's update) and the matching labels:
        the epoch's training cost is measured from these at no extra cost.
        ``on_progress(images)`` hears of every chunk done, or of every mini-batch
        with --pause-ms (whose sleep a signal interrupts: Ctrl-C stops a slow run at once).
        """
        n = len(self.data.training)
        epoch = self.state.epochs_completed + 1
        m = schedules.batch_size(self.config, epoch)
        order = self.rng.permutation(n)
        dropout = self.config.dropout
        # Dropout masks come from their own generator, seeded from the run's, so that the
        # run's generator serves the distortions alone and can be handed to the producer.
        masks_rng = np.random.default_rng(self.rng.integers(2 ** 63)) if dropout else None
        chunk_size = m * max(1, batches.CHUNK_EXAMPLES // m)
        network, optimizer, targets = self.network, self.optimizer, self._targets
        if self._outputs is None or len(self._outputs) != n:
            self._outputs = np.empty((n, len(targets)), dtype=self.network.dtype)
            self._output_labels = np.empty(n, dtype=self.data.training.labels.dtype)
        outputs, output_labels = self._outputs, self._output_labels
        background = not self.config.augment_inline and bool(self.augmentation)
        y = np.empty((chunk_size, len(targets)), dtype=self.network.dtype)
        position = 0
        pause = self.config.pause_ms / 1000
        peek_every = (self.config.peek_every if on_peek is not None and epoch <= PEEK_EPOCHS
                      and self._validation_x is not None else 0)
        next_peek = peek_every
        watching = bool(pause or peek_every)  # the default loop checks this one flag per mini-batch
        warming = bool(self.config.warmup_epochs) and epoch <= self.config.warmup_epochs
        for chunk in batches.chunk_stream(self.data.training, order, chunk_size, self.augmentation, self.rng,
                                          network.dtype, background):
            k = chunk.count
            np.take(targets, chunk.labels[:k], axis=0, out=y[:k])
            output_labels[position:position + k] = chunk.labels[:k]
            for b in range(0, k, m):
                x_batch = chunk.x[b:b + m]
                batch = len(x_batch)
                nabla_b, nabla_w = network.backprop(x_batch, y[b:b + batch], dropout, masks_rng)
                outputs[position + b:position + b + batch] = network.last_outputs(batch)
                optimizer.step(nabla_b, nabla_w, learning_rate if not warming else learning_rate
                               * schedules.warmup_factor(self.config, epoch, position + b + batch, n), batch)
                if watching:
                    done = position + b + batch
                    if peek_every and next_peek <= done < n:
                        next_peek += peek_every * ((done - next_peek) // peek_every + 1)
                        on_peek(self._peek(epoch, done, n))
                    if pause:
                        if on_progress is not None:
                            on_progress(batch)
                        time.sleep(pause)
            position += k
            if on_progress is not None and not pause:
                on_progress(k)
        self.state.rng_state = self.rng.bit_generator.state
        return outputs, output_labels

    def _regularisation(self) -> float:
        """The L2 and L1 terms of the cost: (lambda/2n) sum w^2 + (lambda_1/n) sum |w|."""
        n = len(self.data.training)
        term = 0.0
        if self.config.l2:
            term += 0.5 * self.config.l2 / n * sum(float(np.sum(np.square(w, dtype=np.float64)))
                                                   for w in self.network.weights)
        if self.config.l1:
            term += self.config.l1 / n * sum(float(np.sum(np.abs(w), dtype=np.float64))
                                             for w in self.network.weights)
        return term

    def training_cost(self) -> float:
        """The cost C on the training set, mean over examples, plus the regularisation terms."""
        return self._cost_and_saturation()[0]

    def _cost_and_saturation(self, seen: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, bool]:
        """The training cost and whether every output is exactly 0 or 1 (sigmoid outputs only).

        With ``seen`` = (outputs, labels) from ``_sgd_epoch``: the mean over the epoch's
        examples of the cost SGD's own forward passes measured (each before its
        mini-batch's update; with dropout, of the thinned network), as most
        frameworks report it: free.  Without: an exact pass over the training set
        with the final weights.  Both add the regularisation terms of the final weights.
        """
        if seen is not None:
            outputs, labels = seen
            total = self.network.cost.value(outputs, self._targets[labels])
            saturated = self.network.cost.output == "sigmoid" and bool(np.all((outputs == 0) | (outputs == 1)))
            return total / len(outputs) + self._regularisation(), saturated
        split = self.data.training
        n = len(split)
        if self._eval_x is None:  # reused every epoch: fresh 30 MB arrays cost page faults each time
            self._eval_x = np.empty((min(n, EVAL_CHUNK), split.images.shape[1]), dtype=self.network.dtype)
        total = 0.0
        saturated = self.network.cost.output == "sigmoid"
        for start in range(0, n, EVAL_CHUNK):
            stop = min(start + EVAL_CHUNK, n)
            x = to_float(split.images[start:stop], self.network.dtype, out=self._eval_x[:stop - start])
            y = self._targets[split.labels[start:stop]]
            outputs = self.network.feedforward(x)
            total += self.network.cost.value(outputs, y)
            saturated = saturated and bool(np.all((outputs == 0) | (outputs == 1)))
        return total / n + self._regularisation(), saturated

    def _average(self) -> None:
        """--average-from: fold this epoch's weights into the running mean kept as ``best_network``,
        mean_k = mean_{k-1} + (w - mean_{k-1}) / k (Polyak averaging, once per epoch as in stochastic
        weight averaging).  A mean that is missing (partial_fit dropped it) starts again from these weights."""
        k = self.state.averaged_epochs + 1 if self.best_network is not None else 1
        if k == 1:
            self.best_network = _copy(self.network)
        else:
            mean = self.best_network
            for kept, now in zip(mean.weights + mean.biases, self.network.weights + self.network.biases):
                change = np.subtract(now, kept)
                change *= kept.dtype.type(1 / k)
                kept += change
        self.state.averaged_epochs = k

    def validation_accuracy(self, network: Network | None = None) -> float | None:
        """The accuracy on the validation split of ``network`` (the one being trained if None)."""
        if self._validation_x is None:
            return None
        outputs = (network or self.network).feedforward(self._validation_x)
        return float(np.mean(np.argmax(outputs, axis=1) == self.data.validation.labels))

    def _after_epoch(self, stats: EpochStats) -> None:
        """Book-keeping: history, best epoch, the schedules and early stopping (``schedules``)."""
        if schedules.after_epoch(self.state, self.config, stats):
            self.best_network = _copy(self.network)
