"""Mini-batch stochastic gradient descent, epoch by epoch, and the metrics it reports.

``Trainer.epochs()`` yields one ``EpochStats`` per epoch, so the caller (the CLI,
a script, a test) decides what to print and when to save: this module does no
I/O.  Everything a run needs to continue exactly where it stopped (weights, RNG
state, learning rate, the best epoch so far) is in ``Trainer.state`` and the
networks, which the checkpoint stores.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Iterator

import numpy as np

from digitnet import augment as augmenting
from digitnet.data import MNIST, Split, to_float
from digitnet.network import COSTS, INITIALISERS, Network
from digitnet.optim import SGD
from digitnet.settings import setting, settings_of

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


def _parse_augment(text: str) -> str:
    """``--augment`` text -> its canonical spelling (``"2"`` -> ``"shift=2"``); ``ValueError`` with the message."""
    return str(augmenting.parse(text))


def _show_augment(value) -> str:
    return str(augmenting.parse(value)) or "0"


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
    eta_epoch_factor: float = setting(1.0, "--eta-epoch-factor",
                                      "Multiply eta by this after every epoch, e.g. 0.97 (1: off).",
                                      min=0, max=1, min_open=True)
    augment: str = setting(
        "", "--augment",
        "Distort the training images anew every epoch: comma-separated shift=PIXELS, elastic=ALPHA:SIGMA, "
        "affine=DEGREES:SCALE, e.g. shift=2 or elastic=34:4,affine=15:0.15; a bare N means shift=N "
        "(empty or 0: off). See `digitnet augment`.",
        metavar="SPEC", parse=_parse_augment, show=_show_augment)
    dropout: float = setting(0.0, "--dropout",
                             "Drop each hidden unit with probability P during training (inverted dropout; 0: off).",
                             min=0, max=1, max_open=True, metavar="P")
    l1: float = setting(0.0, "--l1", "L1 regularisation lambda (w -= eta*lambda/n * sgn(w)).", min=0)
    momentum: float = setting(0.0, "--momentum",
                              "Momentum mu: v <- mu*v - eta*gradient, w <- w + v (0: plain SGD).",
                              min=0, max=1, max_open=True)
    exact_cost: bool = setting(False, "--exact-cost",
                               "Report the training cost from an extra pass over the training set at the end of "
                               "each epoch, instead of the mean over the epoch's mini-batches as SGD saw them.",
                               resume_may_change=True)
    augment_inline: bool = setting(False, "--augment-inline",
                                   "Distort on the training thread instead of a second thread "
                                   "(same results, slower).", resume_may_change=True)

    def __post_init__(self):
        # Checkpoints before the augment language stored a shift in pixels (an int).
        if isinstance(self.augment, int) and not isinstance(self.augment, bool):
            self.augment = str(augmenting.Augmentation(shift=self.augment)) if self.augment else ""

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
    training_cost: float         # see ``cost_source``
    validation_accuracy: float | None
    seconds: float
    learning_rate: float
    cost_source: str = "sgd"     # "sgd": mean over the epoch's mini-batches as SGD saw them; "exact": end-of-epoch pass

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
# Metrics (kept importable from here: the CLI and scripts use training.accuracy / evaluate)

from digitnet.metrics import NUM_CLASSES, accuracy, classification_report, confusion_matrix, evaluate, predictions  # noqa: E402,F401
from digitnet.augment import shift_images  # noqa: E402,F401


# ---------------------------------------------------------------------------
# The SGD loop


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


class _Chunk:
    """One chunk of an epoch's training examples, ready for SGD: float inputs and digit labels."""

    def __init__(self, size: int, split: Split, dtype):
        self.pixels = np.empty((size, split.images.shape[1]), dtype=split.images.dtype)
        self.x = np.empty((size, split.images.shape[1]), dtype=dtype)
        self.labels = np.empty(size, dtype=split.labels.dtype)
        self.count = 0


class Trainer:
    """Mini-batch SGD over ``data.training``, with validation after every epoch.

    Fresh run: ``Trainer(data, config)`` draws the initial weights from a
    ``numpy.random.Generator`` seeded with ``config.seed``; the same generator
    then shuffles the training data and draws the distortions every epoch, so a
    seed fixes the run.  Resumed run: pass the network, best network, state and
    momentum velocities from a checkpoint.
    """

    def __init__(self, data: MNIST, config: TrainConfig, network: Network | None = None,
                 state: TrainState | None = None, best_network: Network | None = None,
                 velocities: tuple[list, list] | None = None):
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
        self.augmentation = augmenting.parse(config.augment)
        self.optimizer = SGD(network, max(1, len(data.training)), l2=config.l2, l1=config.l1,
                             momentum=config.momentum, velocities=velocities)
        dtype = np.dtype(config.dtype)
        # One-hot targets: row k is the desired output for digit k.
        self._targets = np.eye(NUM_CLASSES, dtype=dtype)
        self._validation_x = (to_float(data.validation.images, dtype) if len(data.validation) else None)
        self._eval_x = None
        self._outputs = None

    @property
    def finished(self) -> bool:
        return bool(self.state.stopped) or self.state.epochs_completed >= self.config.epochs

    def epochs(self, on_progress: Callable[[int], None] | None = None) -> Iterator[EpochStats]:
        """Train epoch after epoch until ``config.epochs`` are done or a stopping rule fires."""
        while not self.finished:
            yield self.epoch(on_progress)

    def epoch(self, on_progress: Callable[[int], None] | None = None) -> EpochStats:
        """Train one epoch (see ``epochs``) and return its statistics."""
        with single_threaded_blas():
            return self._epoch(on_progress)

    def _epoch(self, on_progress) -> EpochStats:
        """One epoch: SGD over the training set, then its cost and the validation accuracy."""
        started = time.perf_counter()
        epoch = self.state.epochs_completed + 1
        learning_rate = self.state.learning_rate
        try:
            # Overflow means the weights have blown up: with the tanh-form sigmoid the cost
            # would stay finite (saturated), so this is where divergence shows first.
            with np.errstate(over="raise", invalid="raise"):
                outputs, labels = self._sgd_epoch(learning_rate, on_progress)
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
        validation = self.validation_accuracy()
        stats = EpochStats(epoch, cost, validation, time.perf_counter() - started, learning_rate,
                           "exact" if self.config.exact_cost else "sgd")
        self._after_epoch(stats)
        return stats

    def _chunks(self, order: np.ndarray, chunk_size: int, buffers: list[_Chunk]) -> Iterator[_Chunk]:
        """The epoch's examples in ``order``, chunk by chunk: gathered, distorted, converted to floats.

        Draws the distortions from ``self.rng`` in chunk order, so the chunks are
        the same whichever thread runs this.  Cycles through ``buffers``.
        """
        images, labels = self.data.training.images, self.data.training.labels
        for number, start in enumerate(range(0, len(order), chunk_size)):
            index = order[start:start + chunk_size]
            k = len(index)
            chunk = buffers[number % len(buffers)]
            np.take(images, index, axis=0, out=chunk.pixels[:k])
            np.take(labels, index, out=chunk.labels[:k])
            if self.augmentation:
                augmenting.distort(chunk.pixels[:k], self.augmentation, self.rng, chunk.x[:k])
            else:
                to_float(chunk.pixels[:k], self.network.dtype, out=chunk.x[:k])
            chunk.count = k
            yield chunk

    def _chunk_stream(self, order, chunk_size, background):
        """``_chunks``, produced on a second thread ahead of SGD when ``background``.

        The producer runs at most two chunks ahead (a queue of one, plus the chunk
        it is filling), so four buffers suffice: one in SGD's hands, one queued,
        one being filled, one spare.  numpy releases the GIL inside its loops, so
        the distortions run on the second core while SGD runs on the first.
        """
        size = min(chunk_size, len(order))
        split = self.data.training
        if not background:
            yield from self._chunks(order, chunk_size, [_Chunk(size, split, self.network.dtype)])
            return
        buffers = [_Chunk(size, split, self.network.dtype) for _ in range(4)]
        ready: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()
        done = object()

        def produce():
            try:
                with np.errstate(over="raise", invalid="raise"):
                    for chunk in self._chunks(order, chunk_size, buffers):
                        while not stop.is_set():
                            try:
                                ready.put(chunk, timeout=0.1)
                                break
                            except queue.Full:
                                pass
                        if stop.is_set():
                            return
                ready.put(done)
            except BaseException as e:  # handed to the consumer, which re-raises it
                ready.put(e)

        producer = threading.Thread(target=produce, name="digitnet-augment", daemon=True)
        producer.start()
        try:
            while True:
                item = ready.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while producer.is_alive():
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass
            producer.join()

    def sgd_epoch(self, learning_rate: float, on_progress=None) -> tuple[np.ndarray, np.ndarray]:
        """One pass of SGD without the epoch's book-keeping (for benchmarks); see ``_sgd_epoch``."""
        with single_threaded_blas():
            return self._sgd_epoch(learning_rate, on_progress)

    def _sgd_epoch(self, learning_rate: float, on_progress=None) -> tuple[np.ndarray, np.ndarray]:
        """One pass over the shuffled (and distorted) training data in mini-batches of ``batch_size``.

        Returns the output activations of every example as SGD's forward passes
        computed them (before each mini-batch's update) and the matching labels:
        the epoch's training cost is measured from these at no extra cost.
        """
        n = len(self.data.training)
        m = self.config.batch_size
        order = self.rng.permutation(n)
        dropout = self.config.dropout
        # Dropout masks come from their own generator, seeded from the run's, so that the
        # run's generator serves the distortions alone and can be handed to the producer.
        masks_rng = np.random.default_rng(self.rng.integers(2 ** 63)) if dropout else None
        chunk_size = m * max(1, CHUNK_EXAMPLES // m)
        if self._outputs is None or len(self._outputs) != n:
            self._outputs = np.empty((n, NUM_CLASSES), dtype=self.network.dtype)
            self._output_labels = np.empty(n, dtype=self.data.training.labels.dtype)
        outputs, output_labels = self._outputs, self._output_labels
        network, optimizer, targets = self.network, self.optimizer, self._targets
        background = not self.config.augment_inline and bool(self.augmentation)
        y = np.empty((chunk_size, NUM_CLASSES), dtype=self.network.dtype)
        position = 0
        for chunk in self._chunk_stream(order, chunk_size, background):
            k = chunk.count
            np.take(targets, chunk.labels[:k], axis=0, out=y[:k])
            output_labels[position:position + k] = chunk.labels[:k]
            for b in range(0, k, m):
                x_batch = chunk.x[b:b + m]
                batch = len(x_batch)
                nabla_b, nabla_w = network.backprop(x_batch, y[b:b + batch], dropout, masks_rng)
                outputs[position + b:position + b + batch] = network.last_outputs(batch)
                optimizer.step(nabla_b, nabla_w, learning_rate, batch)
            position += k
            if on_progress is not None:
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
        if config.eta_epoch_factor != 1:
            state.learning_rate *= config.eta_epoch_factor
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
