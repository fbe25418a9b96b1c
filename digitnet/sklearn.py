"""The scikit-learn estimator ``SigmoidNetClassifier``: digitnet's own Trainer behind fit and predict.

scikit-learn is an optional extra (``pip install digitnet[sklearn]``); importing
``digitnet`` never needs it, only importing this module does.  The estimator is
thin: ``fit`` cuts the validation split the way ``digitnet train`` does (the
last rows), builds the same ``TrainConfig`` and ``training.Trainer`` and runs
its epochs, so with the textbook settings on MNIST it learns the same weights,
bit for bit, as ``digitnet train --seed`` with the same seed.  Any number of
features and any labels work: the labels become outputs 0..k-1 (``classes_``
order) and the network is n_features-hidden-k.

Its parameters come from the settings table (``config.TrainConfig``): every
setting of ``digitnet train`` is a keyword named as its option without the
dashes (``--batch-size`` -> ``batch_size``), with the table's default, range
and help, except the few in ``REPLACED`` (scikit-learn has its own name for
them) and ``LEFT_OUT`` (they watch a run, they do not change what it learns).
"""

from __future__ import annotations

import inspect
import sys
from numbers import Integral, Real

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils._param_validation import Interval, StrOptions
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data
except ImportError:  # absent, or older than 1.6 (validate_data and __sklearn_tags__ came in 1.6)
    raise ImportError("digitnet.sklearn needs scikit-learn 1.6 or newer: pip install digitnet[sklearn]") from None

import numpy as np

from digitnet import augment_spec, metrics
from digitnet.config import TrainConfig
from digitnet.data import MNIST, Split
from digitnet.settings import default_of, settings_of
from digitnet.training import Trainer

__all__ = ["SigmoidNetClassifier"]

# Settings of `digitnet train` scikit-learn names its own way: field -> the parameters that say it.
REPLACED = {
    "seed": "random_state",
    "validation_size": "early_stopping and validation_fraction",
    "patience": "n_iter_no_change",
}
# Settings that watch or pace a run without changing what it learns: not parameters.
LEFT_OUT = {
    "exact_cost": "what history_'s cost measures (here: the mean over SGD's mini-batches)",
    "augment_inline": "where the distortions are made (the same numbers on one thread or two)",
    "peek_every": "looks within an epoch for the live curve of `digitnet train` and the page",
    "pause_ms": "a pace a class can follow on the page",
}
SPECS = settings_of(TrainConfig)
# Parameter -> TrainConfig field, in the table's order: --batch-size -> batch_size.
PARAMETERS = {spec.keyword: name for name, spec in SPECS.items()
              if name not in REPLACED and name not in LEFT_OUT}
# scikit-learn's own parameters after the table's, with their defaults.
OWN_DEFAULTS = {"random_state": None, "warm_start": False, "early_stopping": False,
                "validation_fraction": 0.1, "n_iter_no_change": 10, "verbose": False}
DEFAULTS = {**{p: default_of(TrainConfig, name) for p, name in PARAMETERS.items()}, **OWN_DEFAULTS}
# What a user types for each option of the table, for messages and help: --eta -> eta.
_WORDS = {**{SPECS[name].option: p for p, name in PARAMETERS.items()},
          "--seed": "random_state", "--validation-size": "validation_fraction", "--patience": "n_iter_no_change"}


def in_parameter_words(text: str) -> str:
    """A message or help text of the table with its options as the parameters here: ``--eta`` -> ``eta``."""
    for option in sorted(_WORDS, key=len, reverse=True):  # --patience-eta before --patience
        text = text.replace(option, _WORDS[option])
    return text


def _constraint(name: str) -> list:
    """scikit-learn's parameter constraint for a setting, from its declared kind, choices and range."""
    spec = SPECS[name]
    if spec.kind is bool:
        return ["boolean"]
    if spec.choices:
        return [StrOptions(set(spec.choices))]
    if spec.kind in (int, float, tuple):
        low = spec.min is not None and not spec.min_open   # a closed end; an absent bound is open
        high = spec.max is not None and not spec.max_open
        closed = {(True, True): "both", (True, False): "left", (False, True): "right",
                  (False, False): "neither"}[(low, high)]
        interval = Interval(Integral if spec.kind in (int, tuple) else Real, spec.min, spec.max, closed=closed)
        return [interval, "array-like"] if spec.kind is tuple else [interval]  # hidden: 30 or (100, 30)
    return [str]


def _coerced(spec, value):
    """``value`` as the table's kind (numpy's numbers from a grid become Python's); left alone otherwise."""
    if spec.kind is tuple:
        value = (value,) if isinstance(value, Integral) else value
        if isinstance(value, (list, tuple, np.ndarray)):
            return tuple(int(v) if isinstance(v, Integral) and not isinstance(v, bool) else v for v in value)
    elif spec.kind is int and isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    elif spec.kind is float and isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    elif spec.kind is bool and isinstance(value, (bool, np.bool_)):
        return bool(value)
    return value


class SigmoidNetClassifier(ClassifierMixin, BaseEstimator):
    """The textbook's sigmoid network trained by digitnet's mini-batch SGD, as a scikit-learn classifier.

    The defaults are the textbook's first network (one hidden layer of 30,
    quadratic cost, N(0, 1) weights, eta 3, batch 10, 30 epochs); the
    parameters are those of ``digitnet train`` (see its ``--help``).  Rows of
    uint8 are read as pixels 0-255 and scaled to [0, 1], as digitnet reads
    MNIST; any other numbers are used as they are (scale them to about [0, 1]:
    the sigmoid saturates on large inputs).  ``predict_proba`` gives each row's
    output activations divided by their sum (a softmax layer's, with
    ``cost="log-likelihood"``, as they are): a confidence, which is a
    calibrated probability only for the softmax layer.

    ``early_stopping=True`` holds out the *last* ``validation_fraction`` of the
    rows, as ``digitnet train`` holds out the last ``--validation-size``
    images (shuffle rows sorted by class first), and predicts with the weights
    of the best validation epoch.  ``warm_start`` and ``partial_fit`` continue
    the run as ``digitnet train --resume`` does: the same random stream, the
    learning rate its schedules reached, the momentum velocities.
    """

    _parameter_constraints = {
        **{p: _constraint(name) for p, name in PARAMETERS.items()},
        "random_state": ["random_state"], "warm_start": ["boolean"], "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": _constraint("patience"), "verbose": ["verbose"],
    }

    def __init__(self, **params):
        # The keywords are DEFAULTS, derived from the settings table (see __signature__ below);
        # as scikit-learn requires, they are stored as given, checked only in fit.
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"SigmoidNetClassifier got unexpected keyword argument {unknown[0]!r}")
        for name, default in DEFAULTS.items():
            setattr(self, name, params.get(name, default))

    # ------------------------------------------------------------------
    # Training

    def fit(self, X, y):
        """Train for ``epochs`` epochs (more, from the fitted weights, with ``warm_start``) on X, y.

        Raises ``ValueError`` for bad data or settings (naming the parameter)
        and ``digitnet.training.TrainingDiverged`` when the weights blow up
        (lower ``eta``).  Returns the estimator.
        """
        self._validate_params()
        continuing = bool(self.warm_start) and hasattr(self, "_state")
        X, y = validate_data(self, X, y, reset=not continuing, dtype="numeric")
        classes, labels = self._labels(y, None if continuing else np.unique(np.asarray(y)), continuing)
        cut = len(X)
        if self.early_stopping:
            held_out = int(round(self.validation_fraction * len(X)))
            if not 0 < held_out < len(X):
                raise ValueError(f"validation_fraction={self.validation_fraction:g} of {len(X)} samples holds "
                                 f"out {held_out}: early_stopping needs at least one sample on each side")
            cut = len(X) - held_out
        data = _splits(X, labels, cut)
        epochs = self._epochs_done() + int(self.epochs) if continuing else int(self.epochs)
        config = self._config(X, validation_size=len(X) - cut, epochs=epochs, continuing=continuing)
        trainer = self._trainer(data, config, classes, continuing)
        if continuing:  # this call's validation split is new: its best epoch is measured afresh
            state = trainer.state
            state.best_accuracy, state.best_epoch, state.epochs_since_best, state.stopped = None, 0, 0, ""
            trainer.best_network = None
        while not trainer.finished:
            self._tell(trainer.epoch(), config)
        return self._keep(trainer, classes)

    def partial_fit(self, X, y, classes=None):
        """One epoch of SGD over X, y, from the weights so far; ``classes`` (every label there will
        be) is required on the first call.  No validation split: ``early_stopping`` is not used."""
        self._validate_params()
        first = not hasattr(self, "_state")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit "
                             "(every label the estimator will see, e.g. classes=np.unique(y))")
        X, y = validate_data(self, X, y, reset=first, dtype="numeric")
        classes, labels = self._labels(y, None if classes is None else np.unique(np.asarray(classes)), not first)
        config = self._config(X, validation_size=0, epochs=self._epochs_done() + 1, continuing=not first,
                              patience=0)
        trainer = self._trainer(_splits(X, labels, len(X)), config, classes, not first)
        trainer.best_network = None  # the weights predict uses are this epoch's
        self._tell(trainer.epoch(), config)
        return self._keep(trainer, classes)

    def _labels(self, y, classes, continuing: bool) -> tuple[np.ndarray, np.ndarray]:
        """(the classes, y as output indices 0..k-1 into them): ``classes`` (sorted) for a fresh
        network, the fitted ``classes_`` when continuing (``classes``, if given, must be the same)."""
        check_classification_targets(y)
        if continuing:
            if classes is not None and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes {classes.tolist()} differ from the fitted classes_ "
                                 f"{self.classes_.tolist()}; set warm_start=False to start afresh")
            classes = self.classes_
        index = np.searchsorted(classes, y).clip(max=len(classes) - 1)
        unknown = classes[index] != y
        if np.any(unknown):
            raise ValueError(f"y has labels that are not in classes_ {classes.tolist()}: "
                             f"{np.unique(np.asarray(y)[unknown]).tolist()[:5]}")
        return classes, index

    def _config(self, X, validation_size: int, epochs: int, continuing: bool,
                patience: int | None = None) -> TrainConfig:
        """The ``TrainConfig`` these parameters make, checked by the table's own ``problems()``."""
        values = {name: _coerced(SPECS[name], getattr(self, p)) for p, name in PARAMETERS.items()}
        if continuing:
            seed = self._config_used.seed
        elif self.random_state is None or not isinstance(self.random_state, Integral):
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        else:
            seed = int(self.random_state)
        if patience is None:
            patience = int(self.n_iter_no_change) if self.early_stopping else 0
        config = TrainConfig(**{**values, "epochs": epochs, "seed": seed, "validation_size": validation_size,
                                "patience": patience})
        if config.eta_patience and not validation_size:  # in the words of this estimator, not --validation-size
            raise ValueError(f"patience_eta={config.eta_patience} needs a validation split: set "
                             "early_stopping=True (fit only: partial_fit holds out none)")
        problems = [in_parameter_words(p) for p in config.problems()]
        if not problems and augment_spec.parse(config.augment) and (X.shape[1] != 28 * 28 or X.dtype != np.uint8):
            problems.append(f"augment={config.augment!r} distorts 28x28 images: it needs rows of 784 uint8 pixels "
                            f"(0-255), got {X.shape[1]} {X.dtype} features (for pixels in [0, 1]: "
                            "(X * 255).round().astype(np.uint8))")
        if problems:
            raise ValueError("; ".join(problems))
        return config

    def _trainer(self, data: MNIST, config: TrainConfig, classes: np.ndarray, continuing: bool) -> Trainer:
        """A fresh Trainer for an n_features-hidden-k network, or the fitted run continued."""
        sizes = [self.n_features_in_, *config.hidden_sizes, len(classes)]
        if not continuing:
            return Trainer(data, config, sizes=sizes)
        network, before = self._network, self._config_used
        changed = [p for p, name in PARAMETERS.items() if name in ("cost", "dtype")
                   and getattr(config, name) != getattr(before, name)]
        if network.sizes != sizes or changed:
            what = ", ".join(changed) or f"hidden={config.hidden_sizes}"
            raise ValueError(f"{what} would change the fitted {'-'.join(map(str, network.sizes))} network "
                             f"({before.cost}, {before.dtype}); set warm_start=False to start afresh")
        if config.learning_rate != before.learning_rate:  # a new eta starts where asked, not where it was
            self._state.learning_rate = config.learning_rate
        return Trainer(data, config, network=network, state=self._state, best_network=self._best_network,
                       velocities=self._velocities)

    def _keep(self, trainer: Trainer, classes: np.ndarray) -> "SigmoidNetClassifier":
        """The fitted attributes from the trainer (not the trainer itself: it holds the data)."""
        self.classes_ = classes
        self._network, self._best_network = trainer.network, trainer.best_network
        self._state, self._velocities, self._config_used = trainer.state, trainer.optimizer.velocities, trainer.config
        self.network_ = trainer.best_network or trainer.network
        self.history_ = list(trainer.state.history)
        self.n_iter_ = trainer.state.epochs_completed
        self.best_epoch_ = trainer.state.best_epoch or None
        return self

    def _epochs_done(self) -> int:
        return self._state.epochs_completed if hasattr(self, "_state") else 0

    def _tell(self, stats, config: TrainConfig) -> None:
        """``verbose``: one line per epoch on stdout, as scikit-learn's own estimators print."""
        if self.verbose:
            validation = ("" if stats.validation_accuracy is None
                          else f"  validation {stats.validation_accuracy:7.2%}")
            print(f"epoch {stats.epoch:3d}/{config.epochs}  cost {stats.training_cost:.5f}{validation}  "
                  f"eta {stats.learning_rate:g}  {stats.seconds:5.2f} s", file=sys.stdout, flush=True)

    # ------------------------------------------------------------------
    # Prediction

    def predict_proba(self, X) -> np.ndarray:
        """Each row's output activations divided by their sum (``metrics.normalised_outputs``), in
        ``classes_`` order: softmax outputs (``cost="log-likelihood"``) come back as they are."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype="numeric")
        out = np.empty((len(X), len(self.classes_)))
        for start, outputs in metrics.outputs_in_chunks(self.network_, X):
            out[start:start + len(outputs)] = metrics.normalised_outputs(outputs)
        return out

    def predict(self, X) -> np.ndarray:
        """The label of each row's largest output."""
        proba = self.predict_proba(X)  # first: it checks the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]


def _splits(X: np.ndarray, labels: np.ndarray, cut: int) -> MNIST:
    """Rows before ``cut`` train, the rest validate (as ``MNIST.with_validation_size`` cuts the training file)."""
    return MNIST(Split("training", X[:cut], labels[:cut]), Split("validation", X[cut:], labels[cut:]),
                 Split("test", X[:0], labels[:0]))


def _kind_words(spec) -> str:
    if spec.choices:
        return "{" + ", ".join(repr(c) for c in spec.choices) + "}"
    return {int: "int", float: "float", bool: "bool", tuple: "int or tuple of int"}.get(spec.kind, "str")


# What a parameter means here beyond the table's help (which speaks of the command line).
_NOTES = {"hidden": "Here an int, or a tuple such as (100, 30) for two hidden layers.",
          "augment": "Only for 28x28 images: rows of 784 uint8 pixels (0-255); other data is refused."}


def _docstring() -> str:
    """The class docstring with a numpydoc Parameters section made from the settings table."""
    own = {
        "random_state": ("int, RandomState instance or None, default=None",
                         "Seed of the initial weights, the shuffling, dropout and the distortions (an int is "
                         "`digitnet train --seed`; None: a new seed every fit)."),
        "warm_start": ("bool, default=False", "fit continues from the fitted weights for `epochs` more epochs."),
        "early_stopping": ("bool, default=False",
                           "Hold out the last `validation_fraction` of the rows, measure the accuracy on them "
                           "after every epoch, stop after `n_iter_no_change` epochs without a better one and "
                           "predict with the best epoch's weights."),
        "validation_fraction": ("float, default=0.1", "Share of the rows (the last ones) held out for early_stopping."),
        "n_iter_no_change": ("int, default=10", in_parameter_words(SPECS["patience"].help)
                             + " Only with early_stopping=True."),
        "verbose": ("bool, default=False", "Print one line per epoch."),
    }
    lines = ["", "    Parameters", "    ----------"]
    for p, name in PARAMETERS.items():
        spec, default = SPECS[name], DEFAULTS[p]
        range_text = f" Range: {spec.range_text()}." if spec.range_text() else ""
        note = f" {_NOTES[p]}" if p in _NOTES else ""
        lines += [f"    {p} : {_kind_words(spec)}, default={default!r}",
                  f"        {in_parameter_words(spec.help)}{range_text}{note} (`digitnet train {spec.option}`)"]
    for p, (kind, text) in own.items():
        lines += [f"    {p} : {kind}", f"        {text}"]
    lines += ["", "    Attributes", "    ----------",
              "    classes_ : ndarray of shape (n_classes,)", "        The labels, in the order of the outputs.",
              "    n_features_in_ : int", "        Features seen in fit.",
              "    feature_names_in_ : ndarray of shape (n_features_in_,)",
              "        Names of the features seen in fit (only when X has string column names).",
              "    network_ : digitnet.network.Network", "        The weights predict uses.",
              "    history_ : list of dict", "        Per epoch: training_cost, validation_accuracy, learning_rate, ...",
              "    n_iter_ : int", "        Epochs trained.",
              "    best_epoch_ : int or None", "        The best validation epoch (early_stopping), else None."]
    return SigmoidNetClassifier.__doc__ + "\n".join(lines) + "\n"


SigmoidNetClassifier.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, default=d) for p, d in DEFAULTS.items()])
SigmoidNetClassifier.__doc__ = _docstring()
