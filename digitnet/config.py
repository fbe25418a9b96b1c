"""The settings of a training run, ``TrainConfig``, declared once: importable without numpy or click.

Each field is a ``settings.setting`` (option name, help, range, resume rule),
so the CLI's options, the page's form, a sweep's space and the resume check
are all derived from this one table; importing it costs no numpy, so a front
end can build its options before it decides whether to train.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from digitnet import __version__
from digitnet.augment_spec import Augmentation
from digitnet.augment_spec import parse as parse_augment
from digitnet.settings import setting, settings_of

NUM_CLASSES = 10                  # the ten digits: the network's output layer
DEFAULT_VALIDATION_SIZE = 10_000  # images held out from the end of the training file, as in the textbook
# The names of network.COSTS and network.INITIALISERS (a test keeps them equal), without importing numpy.
COST_NAMES = ("quadratic", "cross-entropy", "log-likelihood")
INIT_NAMES = ("normal", "scaled")
# --peek-every: the accuracy on the first PEEK_SAMPLE validation images (fixed, no RNG), within the first
# PEEK_EPOCHS epochs, where the jump from chance to most of the way happens.
PEEK_SAMPLE = 1000
PEEK_EPOCHS = 2
PEEK_EVERY_MIN = 100  # a peek every few images would keep the run busy looking rather than learning


class ConfigError(ValueError):
    """Stored settings this digitnet cannot read (e.g. a field a newer version added)."""


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
    return str(parse_augment(text))


def _show_augment(value) -> str:
    return str(parse_augment(value)) or "0"


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
    cost: str = setting("quadratic", "--cost", "Cost function (changes BP1 only).", choices=COST_NAMES)
    init: str = setting("normal", "--init", "Weights N(0,1) (textbook ch. 1) or N(0,1/n_in) (ch. 3).",
                        choices=INIT_NAMES)
    l2: float = setting(0.0, "--l2", "L2 regularisation lambda (weight decay 1 - eta*lambda/n).", min=0)
    dtype: str = setting("float32", "--dtype", "Floating-point precision of the network.",
                         choices=("float32", "float64"))
    validation_size: int = setting(
        DEFAULT_VALIDATION_SIZE, "--validation-size",
        "Images held out from the end of the training file for validation.", min=0)
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
    peek_every: int = setting(
        0, "--peek-every",
        f"Within the first {PEEK_EPOCHS} epochs, also measure the accuracy on the first {PEEK_SAMPLE:,} "
        f"validation images every IMAGES training images (at least {PEEK_EVERY_MIN}), to show the early "
        "jump (same weights; 0: off).",
        min=0, metavar="IMAGES", resume_may_change=True)
    pause_ms: int = setting(
        0, "--pause-ms",
        "Pause this many milliseconds after every mini-batch, so a class can follow the run (same weights; "
        "0: off). Ctrl-C still stops at once.", min=0, max=10_000, metavar="MS", resume_may_change=True)
    warmup_epochs: int = setting(
        0, "--warmup-epochs",
        "Warm-up: raise eta linearly from 0 to its scheduled value over the mini-batches of the first N "
        "epochs (0: off).", min=0, metavar="N")
    average_from: int = setting(
        0, "--average-from",
        "Weight averaging: from epoch EPOCH on, the model's weights are the mean of the weights at the end of "
        "every epoch since (instead of the best epoch's); each epoch's validation accuracy is the mean's "
        "(0: off).", min=0, metavar="EPOCH")
    late_batch_size: int = setting(
        0, "--late-batch-size",
        "Larger mini-batches late in training: from epoch --late-batch-from on, mini-batches of N instead of "
        "--batch-size, and eta multiplied by N / --batch-size (the linear scaling rule: about the same "
        "progress an epoch in fewer, cheaper steps; 0: off).", min=0, metavar="N")
    late_batch_from: int = setting(
        0, "--late-batch-from", "The first epoch of --late-batch-size (0: off).", min=0, metavar="EPOCH")

    def __post_init__(self):
        # Checkpoints before the augment language stored a shift in pixels (an int).
        if isinstance(self.augment, int) and not isinstance(self.augment, bool):
            self.augment = str(Augmentation(shift=self.augment)) if self.augment else ""

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
        if self.peek_every and self.validation_size == 0:
            out.append("--peek-every needs a validation split (--validation-size above 0)")
        if type(self.average_from) is int and self.average_from:
            if self.patience or self.eta_patience:
                out.append("--average-from keeps the mean of the epochs from EPOCH on, not the best epoch: "
                           "it cannot be combined with --patience or --patience-eta")
            if type(self.epochs) is int and self.average_from > self.epochs:
                out.append(f"--average-from {self.average_from} is after the last epoch (--epochs {self.epochs})")
        if type(self.late_batch_size) is int and type(self.late_batch_from) is int:
            if bool(self.late_batch_size) != bool(self.late_batch_from):
                out.append("--late-batch-size and --late-batch-from go together: give both, or neither")
            elif type(self.epochs) is int and self.late_batch_from > self.epochs:
                out.append(f"--late-batch-from {self.late_batch_from} is after the last epoch (--epochs {self.epochs})")
        if type(self.peek_every) is int and 0 < self.peek_every < PEEK_EVERY_MIN:
            out.append(f"--peek-every must be 0 (off) or at least {PEEK_EVERY_MIN}, got {self.peek_every}")
        if training_file_size is not None and not out:
            if self.validation_size >= training_file_size:
                out.append(f"--validation-size {self.validation_size} leaves no training images "
                           f"(the training file has {training_file_size:,}); it must be below {training_file_size}")
            else:
                for option, size in (("--batch-size", self.batch_size), ("--late-batch-size", self.late_batch_size)):
                    if size > training_file_size - self.validation_size:
                        out.append(f"{option} {size} is larger than the "
                                   f"{training_file_size - self.validation_size} training images")
        return out

    def sizes(self) -> list[int]:
        return [28 * 28, *self.hidden_sizes, NUM_CLASSES]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict, written_by: str | None = None) -> "TrainConfig":
        """The config stored as ``to_dict()`` wrote it (fields left out keep their defaults).

        A field this digitnet does not know is refused with ``ConfigError``
        naming it and ``written_by`` (the digitnet version that stored it):
        dropping it would continue the run as if that option were off.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"the stored settings are not an object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = [repr(k) for k in d if k not in known]
        if unknown:
            raise ConfigError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                              f"(written by digitnet {written_by or '(version not recorded)'}; "
                              f"this is digitnet {__version__})")
        values = dict(d)
        if "hidden_sizes" in values:
            values["hidden_sizes"] = tuple(values["hidden_sizes"])
        for name, spec in settings_of(cls).items():  # older checkpoints wrote 128.0 as 128
            if spec.kind is float and isinstance(values.get(name), int):
                values[name] = float(values[name])
        return cls(**values)
