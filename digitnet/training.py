"""Mini-batch stochastic gradient descent, epoch by epoch, and the metrics it reports.

``Trainer.epochs()`` yields one ``EpochStats`` per epoch, so the caller (the CLI,
a script, a test) decides what to print and when to save: this module does no
I/O.  Everything a run needs to continue exactly where it stopped (weights, RNG
state, learning rate, the best epoch so far) is in ``Trainer.state`` and the
networks, which the checkpoint stores.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Iterator

import numpy as np

from digitnet.data import MNIST, Split, to_float
from digitnet.network import COSTS, INITIALISERS, Network
from digitnet.settings import setting, settings_of

NUM_CLASSES = 10
# Examples converted from uint8 to float at a time: big enough to amortise the
# conversion, small enough to stay in cache and to move the progress bar smoothly.
CHUNK_EXAMPLES = 2000
# Examples per forward pass when measuring the cost on the whole training set.
EVAL_CHUNK = 5000


class TrainingDiverged(Exception):
    """The weights blew up (the learning rate is too large for this network)."""

    def __init__(self, epoch: int, reason: str):
        super().__init__(f"training diverged in epoch {epoch}: {reason}")
        self.epoch = epoch
        self.reason = reason


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"100,30"`` -> ``(100, 30)``; every part must be a positive whole number (``"10,,5"`` is refused)."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"{text!r} has an empty part: write sizes like 100,30")
        try:
            size = int(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a whole number") from None
        if size < 1:
            raise ValueError(f"hidden layer sizes must be at least 1, got {size}")
        sizes.append(size)
    return tuple(sizes)


@dataclass
class TrainConfig:
    """The hyperparameters of a run; the defaults are the textbook's first network.

    Each field is a ``settings.setting``: its option name, help, range and resume
    rule live here and nowhere else (the CLI, the resume check and ``problems()``
    are derived from them).  Field names are what checkpoints store; users only
    ever see the option names.
    """

    hidden_sizes: tuple[int, ...] = setting(
        (30,), "--hidden", "Hidden layer size; repeat or comma-separate for several layers.",
        min=1, metavar="N[,N...]", parse=parse_sizes)
    epochs: int = setting(
        30, "--epochs", "Epochs to train (with --resume: the total to reach; left out: the run's own plan).",
        min=1, resume_may_change=True)
    batch_size: int = setting(10, "--batch-size", "Mini-batch size m.", min=1)
    learning_rate: float = setting(3.0, "--eta", "Learning rate eta.", min=0, min_open=True)
    seed: int = setting(0, "--seed", "Seed for the initial weights and the shuffling.", min=0)
    cost: str = setting("quadratic", "--cost", "Cost function (changes BP1 only).", choices=tuple(COSTS))
    init: str = setting("normal", "--init", "Weights N(0,1) (textbook ch. 1) or N(0,1/n_in) (ch. 3).",
                        choices=tuple(INITIALISERS))
    l2: float = setting(0.0, "--l2", "L2 regularisation lambda (weight decay 1 - eta*lambda/n).", min=0)
    dtype: str = setting("float32", "--dtype", "Floating-point precision of the network.",
                         choices=("float32", "float64"))
    validation_size: int = setting(
        10000, "--validation-size", "Images held out from the end of the training file for validation.", min=0)
    patience: int = setting(
        0, "--patience", "Early stopping: stop after N epochs without a better validation accuracy (0: off).",
        min=0, metavar="N")
    eta_patience: int = setting(
        0, "--patience-eta",
        "Reduce-on-plateau: multiply eta by --eta-decay after N epochs without improvement (0: off).",
        min=0, metavar="N")
    eta_decay: float = setting(0.5, "--eta-decay", "Factor for --patience-eta.", min=0, max=1,
                               min_open=True, max_open=True)
    eta_min_factor: float = setting(128.0, "--eta-min-factor",
                                    "With --patience-eta: stop once eta has fallen by this factor.", min=1)
    augment: int = setting(0, "--augment",
                           "Shift each training image by up to PIXELS in x and y, anew every epoch (0: off).",
                           min=0, max=4, metavar="PIXELS")

    def problems(self, training_file_size: int | None = None) -> list[str]:
        """What is wrong with these settings, as messages naming the options (empty when fine).

        Every check of a training setting lives here, so the CLI, a page and a
        sweep refuse the same things with the same words.  ``training_file_size``
        (images in the training file) adds the checks that need the data.
        """
        specs = settings_of(TrainConfig)
        out = [p for name, spec in specs.items() if (p := spec.problem(getattr(self, name))) is not None]
        if (self.patience or self.eta_patience) and self.validation_size == 0:
            out.append("--patience and --patience-eta need a validation split (--validation-size above 0)")
        if training_file_size is not None and not out:
            if self.validation_size >= training_file_size:
                out.append(f"--validation-size {self.validation_size} leaves no training images "
                           f"(the training file has {training_file_size:,}); it must be below {training_file_size}")
            elif self.batch_size > training_file_size - self.validation_size:
                out.append(f"--batch-size {self.batch_size} is larger than the "
                           f"{training_file_size - self.validation_size} training images")
        return out

    def sizes(self) -> list[int]:
        return [28 * 28, *self.hidden_sizes, NUM_CLASSES]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        if "hidden_sizes" in values:
            values["hidden_sizes"] = tuple(values["hidden_sizes"])
        for name, spec in settings_of(cls).items():  # older checkpoints wrote 128.0 as 128
            if spec.kind is float and isinstance(values.get(name), int):
                values[name] = float(values[name])
        return cls(**values)


@dataclass
class EpochStats:
    epoch: int
    training_cost: float
    validation_accuracy: float | None
    seconds: float
    learning_rate: float

    def to_dict(self) -> dict:
        return asdict(self)


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainState":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------------------
# Metrics


def predictions(network: Network, split: Split, chunk: int = 10000) -> np.ndarray:
    """The predicted digit for every image of the split."""
    out = np.empty(len(split), dtype=np.int64)
    for start in range(0, len(split), chunk):
        x = to_float(split.images[start:start + chunk], network.dtype)
        out[start:start + chunk] = np.argmax(network.feedforward(x), axis=1)
    return out


def accuracy(network: Network, split: Split) -> float:
    """Fraction of the split classified correctly."""
    if len(split) == 0:
        return float("nan")
    return float(np.mean(predictions(network, split) == split.labels))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """10x10 counts; rows are the true digit, columns the predicted one."""
    flat = labels.astype(np.int64) * NUM_CLASSES + predicted.astype(np.int64)
    return np.bincount(flat, minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES)


def classification_report(matrix: np.ndarray) -> dict:
    """Accuracy, and precision and recall per digit, from a confusion matrix."""
    correct = int(np.trace(matrix))
    total = int(matrix.sum())
    per_class = []
    for digit in range(NUM_CLASSES):
        true_positive = int(matrix[digit, digit])
        predicted = int(matrix[:, digit].sum())
        actual = int(matrix[digit, :].sum())
        per_class.append({
            "digit": digit,
            "precision": true_positive / predicted if predicted else None,
            "recall": true_positive / actual if actual else None,
            "support": actual,
        })
    return {
        "accuracy": correct / total if total else None,
        "correct": correct,
        "total": total,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def evaluate(network: Network, split: Split) -> dict:
    """``classification_report`` for the network on a split."""
    return classification_report(confusion_matrix(split.labels, predictions(network, split)))


# ---------------------------------------------------------------------------
# The SGD loop


def shift_images(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Move each 28x28 image (a row of ``images``, in place) by a random whole-pixel
    offset of at most ``max_shift`` in each direction, filling with background.

    Expanding the training data with small translations (textbook ch. 6, after
    Simard et al. 2003) teaches the network that a digit moved by a pixel is
    the same digit.  Images sharing an offset are moved with one slice copy.
    """
    k = len(images)
    side = 28
    square = images.reshape(k, side, side)
    padded = np.zeros((k, side + 2 * max_shift, side + 2 * max_shift), dtype=images.dtype)
    padded[:, max_shift:max_shift + side, max_shift:max_shift + side] = square
    offsets = rng.integers(-max_shift, max_shift + 1, size=(k, 2))
    width = 2 * max_shift + 1
    groups = (offsets[:, 0] + max_shift) * width + (offsets[:, 1] + max_shift)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        row, col = divmod(int(group), width)
        dy, dx = row - max_shift, col - max_shift
        # An image moved down by dy is read from dy rows higher in the padded copy.
        top, left = max_shift - dy, max_shift - dx
        square[members] = padded[members, top:top + side, left:left + side]
    return images


def single_threaded_blas():
    """Run BLAS on one thread: a mini-batch's matrices are too small to split, and
    OpenBLAS's spinning worker threads were measured to make epochs slower, up to
    8x (784-300-10, batch 10: 13.6 s per epoch with two threads, 1.7 s with one;
    even the 50,000-image cost pass was 1.3x faster on one thread)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _copy(network: Network) -> Network:
    return Network(network.sizes, [w.copy() for w in network.weights],
                   [b.copy() for b in network.biases], cost=network.cost.name, dtype=network.dtype)


class Trainer:
    """Mini-batch SGD over ``data.training``, with validation after every epoch.

    Fresh run: ``Trainer(data, config)`` draws the initial weights from a
    ``numpy.random.Generator`` seeded with ``config.seed``; the same generator
    then shuffles the training data every epoch, so a seed fixes the run.
    Resumed run: pass the network, best network and state from a checkpoint.
    """

    def __init__(self, data: MNIST, config: TrainConfig, network: Network | None = None,
                 state: TrainState | None = None, best_network: Network | None = None):
        self.data = data
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        if network is None:
            network = Network(config.sizes(), cost=config.cost, init=config.init,
                              rng=self.rng, dtype=config.dtype)
            state = TrainState(learning_rate=config.learning_rate)
        else:
            self.rng.bit_generator.state = state.rng_state
        self.network = network
        self.best_network = best_network
        self.state = state
        self.state.rng_state = self.rng.bit_generator.state
        dtype = np.dtype(config.dtype)
        # One-hot targets: row k is the desired output for digit k.
        self._targets = np.eye(NUM_CLASSES, dtype=dtype)
        self._validation_x = (to_float(data.validation.images, dtype) if len(data.validation) else None)
        self._eval_x = None

    @property
    def finished(self) -> bool:
        return bool(self.state.stopped) or self.state.epochs_completed >= self.config.epochs

    def epochs(self, on_progress: Callable[[int], None] | None = None) -> Iterator[EpochStats]:
        """Train epoch after epoch until ``config.epochs`` are done or a stopping rule fires."""
        while not self.finished:
            with single_threaded_blas():
                stats = self._epoch(on_progress)
            yield stats

    def _epoch(self, on_progress) -> EpochStats:
        """One epoch: SGD over the training set, then its cost and the validation accuracy."""
        started = time.perf_counter()
        epoch = self.state.epochs_completed + 1
        learning_rate = self.state.learning_rate
        try:
            # Overflow means the weights have blown up: with the tanh-form sigmoid the cost
            # would stay finite (saturated), so this is where divergence shows first.
            with np.errstate(over="raise", invalid="raise"):
                self._sgd_epoch(learning_rate, on_progress)
        except FloatingPointError:
            raise TrainingDiverged(epoch, "the cost became inf (the weights overflowed)") from None
        cost, saturated = self._cost_and_saturation()
        if not np.isfinite(cost) or not all(np.all(np.isfinite(w)) for w in self.network.weights):
            raise TrainingDiverged(epoch, f"the cost became {cost}")
        if saturated:
            # The sigmoid keeps the cost finite, but a network whose every output is exactly
            # 0 or 1 has sigma' = 0 everywhere: no gradient flows, it can never recover.
            raise TrainingDiverged(epoch, "every output neuron is saturated at exactly 0 or 1 "
                                          "(the weights blew up), so no gradient can flow")
        validation = self.validation_accuracy()
        stats = EpochStats(epoch, cost, validation, time.perf_counter() - started, learning_rate)
        self._after_epoch(stats)
        return stats

    def _sgd_epoch(self, learning_rate: float, on_progress) -> None:
        """One pass over the shuffled training data in mini-batches of ``batch_size``."""
        images, labels = self.data.training.images, self.data.training.labels
        n = len(labels)
        m = self.config.batch_size
        weight_decay = 1.0 - learning_rate * self.config.l2 / n  # L2: w <- (1 - eta*lambda/n) w - ...
        order = self.rng.permutation(n)
        chunk = m * max(1, CHUNK_EXAMPLES // m)
        pixels = np.empty((min(chunk, n), images.shape[1]), dtype=np.uint8)
        x = np.empty(pixels.shape, dtype=self.network.dtype)
        y = np.empty((len(pixels), NUM_CLASSES), dtype=self.network.dtype)
        for start in range(0, n, chunk):
            index = order[start:start + chunk]
            k = len(index)
            np.take(images, index, axis=0, out=pixels[:k])
            if self.config.augment:
                shift_images(pixels[:k], self.config.augment, self.rng)
            to_float(pixels[:k], self.network.dtype, out=x[:k])
            np.take(self._targets, labels[index], axis=0, out=y[:k])
            for b in range(0, k, m):
                self.network.update_mini_batch(x[b:b + m], y[b:b + m], learning_rate, weight_decay)
            if on_progress is not None:
                on_progress(k)
        self.state.rng_state = self.rng.bit_generator.state

    def training_cost(self) -> float:
        """The cost C on the training set, mean over examples, plus the L2 term (lambda/2n) sum w^2."""
        return self._cost_and_saturation()[0]

    def _cost_and_saturation(self) -> tuple[float, bool]:
        """``training_cost()``, and whether every output on every training image is exactly 0 or 1."""
        split = self.data.training
        n = len(split)
        if self._eval_x is None:  # reused every epoch: fresh 30 MB arrays cost page faults each time
            self._eval_x = np.empty((min(n, EVAL_CHUNK), split.images.shape[1]), dtype=self.network.dtype)
        total = 0.0
        saturated = True
        for start in range(0, n, EVAL_CHUNK):
            stop = min(start + EVAL_CHUNK, n)
            x = to_float(split.images[start:stop], self.network.dtype, out=self._eval_x[:stop - start])
            y = self._targets[split.labels[start:stop]]
            outputs = self.network.feedforward(x)
            total += self.network.cost.value(outputs, y)
            saturated = saturated and bool(np.all((outputs == 0) | (outputs == 1)))
        cost = total / n
        if self.config.l2:
            cost += 0.5 * self.config.l2 / n * sum(float(np.sum(np.square(w, dtype=np.float64)))
                                                   for w in self.network.weights)
        return cost, saturated

    def validation_accuracy(self) -> float | None:
        if self._validation_x is None:
            return None
        outputs = self.network.feedforward(self._validation_x)
        return float(np.mean(np.argmax(outputs, axis=1) == self.data.validation.labels))

    def _after_epoch(self, stats: EpochStats) -> None:
        """Book-keeping: history, best epoch, reduce-on-plateau and early stopping."""
        state, config = self.state, self.config
        state.epochs_completed = stats.epoch
        state.history.append(stats.to_dict())
        accuracy_now = stats.validation_accuracy
        if accuracy_now is None:
            return
        if state.best_accuracy is None or accuracy_now > state.best_accuracy:
            state.best_accuracy = accuracy_now
            state.best_epoch = stats.epoch
            state.epochs_since_best = 0
            state.epochs_since_eta_change = 0
            self.best_network = _copy(self.network)
            return
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
