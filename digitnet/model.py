"""The public Python API: a loaded ``Model``, and ``load``, ``train`` and ``load_mnist``, which ``digitnet`` re-exports.

A ``Model`` answers as `digitnet predict` does: ``predict`` (digits),
``predict_proba`` (each image's confidences, the command's), ``predict_image``
(the command's pipeline for a picture file), with what its run recorded
(``settings``, ``history``, ``test_accuracy``).  ``train`` is the training of
`digitnet train`: its keywords are the command's options (derived from the
settings table), its result the same weights bit for bit.  ``load_mnist``
reads the splits as arrays.  Nothing here prints, except the progress bar
``train(progress=True)`` asks for.

Errors, each one line: a file that is not a usable model raises
``checkpoint.CheckpointError``, missing or broken MNIST files
``data.DataError``, a picture that cannot be read ``images.ImageError``, bad
arrays and bad settings ``ValueError`` naming what was wrong.  ``load`` and
``predict`` import numpy but not Pillow, click or tqdm
(``scripts/bench_api_start.py``: a fresh process loads a model and predicts in
well under the 0.5 s bar).
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import os
from pathlib import Path

import numpy as np

from digitnet import checkpoint, metrics
from digitnet.checkpoint import Checkpoint, CheckpointError
from digitnet.config import DEFAULT_VALIDATION_SIZE, NUM_CLASSES, TrainConfig
from digitnet.network import Network
from digitnet.settings import Setting, default_of, settings_of

PIXELS = 28 * 28
UINT8 = "uint8 0-255"
FLOAT = "float 0-1"
WEIGHTS = ("best", "last")
# train()'s own keywords, beside the settings (a test keeps the two apart).
RUN_KEYWORDS = ("data_dir", "out", "force", "progress")


def input_kind(x) -> str:
    """What the pixels of ``x`` are taken to be: "uint8 0-255" or "float 0-1".

    The dtype decides, never the values: uint8 arrays are 0-255 (MNIST as
    stored) and are divided by 255; floating-point arrays must already be in
    [0, 1].  Anything else (other dtypes, floats outside [0, 1], NaN, a shape
    that is not (n, 784) or (n, 28, 28)) raises one ``ValueError`` saying what
    was wrong, rather than a guess.
    """
    return _rows(x)[1]


def _rows(x) -> tuple[np.ndarray, str]:
    """``x`` as one row of 784 pixels per image (a view where it can be), and ``input_kind(x)``."""
    array = np.asarray(x)
    if array.shape in ((PIXELS,), (28, 28)):
        raise ValueError(f"x has shape {array.shape}, one image: pass a batch of one, x[None] "
                         f"(shape (1, {', '.join(map(str, array.shape))}))")
    if not ((array.ndim == 2 and array.shape[1] == PIXELS) or (array.ndim == 3 and array.shape[1:] == (28, 28))):
        raise ValueError(f"x has shape {array.shape}; expected (n, 784) or (n, 28, 28), one image per row")
    rows = array.reshape(len(array), PIXELS)
    if array.dtype == np.uint8:
        return rows, UINT8
    if array.dtype.kind != "f":
        raise ValueError(f"x has dtype {array.dtype}; expected uint8 pixels 0-255 or floats 0-1 "
                         "(e.g. x.astype(np.uint8) for whole numbers 0-255)")
    if rows.size:
        if not np.isfinite(rows).all():
            raise ValueError("x holds NaN or infinite values; pixels must be floats in [0, 1] or uint8 0-255")
        low, high = float(rows.min()), float(rows.max())
        if low < 0 or high > 1:
            hint = " (0-255 values? divide by 255, or pass them as uint8)" if high > 1 else ""
            raise ValueError(f"x has {array.dtype} pixels from {low:g} to {high:g}; floats must be in [0, 1]{hint}")
    return rows, FLOAT


class Model:
    """A network ready to answer: what ``digitnet.load`` and ``digitnet.train`` return.

    ``network`` holds the weights it answers with: the best validation epoch's
    when the run kept them, else the last epoch's (``weights_used`` says which;
    `digitnet predict`'s default ``--weights best``).  ``checkpoint`` is the
    ``checkpoint.Checkpoint`` it was read from (None for a model trained in
    memory).  ``settings`` (a ``TrainConfig``, None for a textbook JSON
    network), ``history`` (one dict per epoch: ``epoch``, ``training_cost``,
    ``validation_accuracy``, ``learning_rate``, ``seconds``) and
    ``test_accuracy`` (of the weights used; None when not recorded) are what
    the run recorded.
    """

    def __init__(self, network: Network, *, weights_used: str = "last", checkpoint: Checkpoint | None = None,
                 trainer=None, test: dict | None = None, dataset: str = ""):
        self.network = network
        self.weights_used = weights_used
        self.checkpoint = checkpoint
        self._trainer = trainer  # a model trained in memory: save() writes its run as `digitnet train` does
        self._test = test or {}
        self._dataset = dataset

    input_kind = staticmethod(input_kind)

    @property
    def settings(self) -> TrainConfig | None:
        """The run's settings; ``CheckpointError`` when the file's cannot be read by this digitnet."""
        if self._trainer is not None:
            return self._trainer.config
        stored = self.checkpoint.metadata.get("hyperparameters")
        if stored is None:
            return None
        from digitnet.config import ConfigError
        from digitnet.runs import written_by

        try:
            return TrainConfig.from_dict(stored, written_by=written_by(self.checkpoint.metadata))
        except ConfigError as e:
            raise CheckpointError(f"{self.checkpoint.path}: {e}") from None

    @property
    def history(self) -> list[dict]:
        return self._trainer.state.history if self._trainer is not None else self.checkpoint.history

    @property
    def test_accuracy(self) -> float | None:
        """The recorded test accuracy of the weights in use (the last epoch's when asked for them)."""
        recorded = self._test if self._trainer is not None else self.checkpoint.metadata
        has_best = (self._trainer.best_network if self._trainer is not None else self.checkpoint.best_network)
        key = "test_accuracy_last_epoch" if self.weights_used == "last" and has_best is not None else "test_accuracy"
        return recorded.get(key)

    def predict(self, x) -> np.ndarray:
        """The digit seen in each image of ``x`` (int64, shape (n,)): the largest output.

        ``x`` is (n, 784) or (n, 28, 28), uint8 0-255 or floats 0-1 (see
        ``input_kind``; a single image is a batch of one, ``x[None]``).
        """
        return metrics.predicted_digits(self.network, _rows(x)[0])

    def predict_proba(self, x) -> np.ndarray:
        """Each image's confidence in every digit, shape (n, 10), rows summing to 1.

        The confidence of `digitnet predict` (``metrics.normalised_outputs``):
        a sigmoid output layer's activations divided by their sum (a share, not
        a calibrated probability); a softmax layer's (the log-likelihood cost)
        probabilities as they are.  ``x`` as for ``predict``.
        """
        rows = _rows(x)[0]
        out = np.empty((len(rows), NUM_CLASSES))
        metrics.predicted_digits(self.network, rows, confidence=out)
        return out

    def predict_image(self, image, invert: str = "auto"):
        """`digitnet predict` for one picture: a file path or the file's bytes.

        Returns the command's ``predict.Prediction``: ``digit``,
        ``confidence``, ``scores`` (the 10 output activations), ``shares``,
        ``image`` (the 28x28 input the network saw, floats 0-1), ``warnings``
        and ``to_dict()`` (a `predict --json` line).  ``invert`` is "auto",
        "yes" (dark ink on light paper) or "no".  A picture that cannot be used
        raises ``images.ImageError``.  Imports Pillow on first use.
        """
        from digitnet import images, predict

        if isinstance(image, (bytes, bytearray, memoryview)):
            answer = predict.predict_bytes(self.network, bytes(image), invert)
        elif isinstance(image, (str, os.PathLike)):
            answer = next(predict.predict_files(self.network, [(os.fspath(image), None)], invert))
        else:
            raise TypeError(f"predict_image takes a file path or the file's bytes, not {type(image).__name__}")
        if answer.error is not None:
            raise images.ImageError(answer.error, answer.path)
        return answer

    def save(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write the model as a digitnet checkpoint (.npz), atomically; returns the path.

        An existing file is kept (``FileExistsError``) unless ``force``.  A
        model trained in memory is written as `digitnet train --out` writes
        its run (so `digitnet train --resume` continues it); a loaded one with
        the weights and metadata it was read with.  For the textbook's JSON
        format, use `digitnet export MODEL --to json`.
        """
        path = Path(path)
        if path.suffix.lower() == ".json":
            raise ValueError(f"{path}: save writes a .npz checkpoint; the textbook's JSON is written by "
                             "`digitnet export MODEL --to json`")
        if path.exists() and not force:
            raise FileExistsError(f"{path} already exists: choose another path, or pass force=True to replace it")
        if self._trainer is not None:
            from digitnet.runs import save_run

            return save_run(path, self._trainer, test=self._test or None, dataset=self._dataset)
        ckpt = self.checkpoint
        return checkpoint.save(path, ckpt.network, ckpt.metadata, ckpt.best_network, ckpt.velocities)

    def __repr__(self) -> str:
        where = f" from {self.checkpoint.path}" if self.checkpoint is not None else " trained in memory"
        return (f"<digitnet Model {'-'.join(map(str, self.network.sizes))} {self.network.cost.name} cost, "
                f"{self.weights_used} weights{where}>")


def load(path: str | os.PathLike, weights: str = "best") -> Model:
    """The model in ``path``: a digitnet checkpoint (.npz) or a textbook JSON network (network2.py's ``save()``).

    ``weights`` is "best" (the best validation epoch's, when the file keeps
    them, else the last) or "last", as `digitnet predict --weights`.  The
    checks are `digitnet predict`'s: any problem with the file, or a network
    that does not map 784 pixels to 10 digits, raises one ``CheckpointError``
    naming the file.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be 'best' or 'last', got {weights!r}")
    ckpt = checkpoint.load(path)
    network, used = ckpt.weights(weights)
    problem = checkpoint.digit_reader_problem(network, path)
    if problem:
        raise CheckpointError(problem)
    return Model(network, weights_used=used, checkpoint=ckpt)


def load_mnist(data_dir: str | os.PathLike | None = None, validation_size: int = DEFAULT_VALIDATION_SIZE):
    """The MNIST splits as arrays: ``.training``, ``.validation`` and ``.test``, each with ``.images``
    (n, 784) uint8 0-255 and ``.labels`` (n,) uint8 (read-only views: ``.copy()`` to change them).

    As the textbook (and `digitnet train`) splits them: validation is the last
    ``validation_size`` images of the training file, training the rest, test
    the 10,000 test images.  ``data_dir`` as ``--data-dir``: else
    $DIGITNET_DATA_DIR, else ./data.  Nothing is downloaded: missing or broken
    files raise ``DataError`` (`digitnet download` fetches them).
    """
    from digitnet import data

    problem = settings_of(TrainConfig)["validation_size"].problem(validation_size)
    if problem:
        raise ValueError(problem)
    return data.load_mnist(data_dir, validation_size)


# ---------------------------------------------------------------------------
# train(): the settings table as keywords


def keywords() -> dict[str, str]:
    """``"eta"`` -> ``"learning_rate"``: each setting's keyword (its option without ``--``, dashes as
    underscores) and the TrainConfig field behind it."""
    return {spec.keyword: name for name, spec in settings_of(TrainConfig).items()}


def config_from(settings: dict) -> TrainConfig:
    """The TrainConfig for ``train``'s keywords, checked as `digitnet train` checks its options.

    An unknown keyword, or a value ``TrainConfig.problems()`` refuses, raises one
    ``ValueError`` (the command's messages, which name the options).  Numbers are
    taken as the command would read them (``eta=3`` is 3.0, ``hidden=30`` is one
    layer, ``hidden="100,30"`` two; ``augment`` in its canonical spelling).
    """
    names = keywords()
    unknown = [keyword for keyword in settings if keyword not in names]
    if unknown:
        raise ValueError("; ".join(_unknown(keyword, names) for keyword in unknown))
    specs = settings_of(TrainConfig)
    config = TrainConfig(**{names[k]: _as_typed(specs[names[k]], v) for k, v in settings.items()})
    problems = config.problems()
    if problems:
        raise ValueError("; ".join(problems))
    for name, spec in specs.items():
        if spec.kind is str and spec.parse is not None:
            setattr(config, name, spec.parse(getattr(config, name)))
    return config


def _as_typed(spec: Setting, value):
    """``value`` as the option's click type would have made it; what does not fit is left for ``problems()``."""
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if spec.kind is tuple:
        if isinstance(value, str):
            try:
                return spec.from_text(value)
            except ValueError as e:
                raise ValueError(f"{spec.option}: {e}") from None
        if whole:
            return (int(value),)
        if isinstance(value, (list, tuple)):
            return tuple(int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v for v in value)
    elif spec.kind is int and whole:
        return int(value)
    elif spec.kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _unknown(keyword: str, names: dict[str, str]) -> str:
    """Why ``keyword`` is refused, with the keywords it may have meant."""
    import difflib

    by_field = {name: keyword for keyword, name in names.items()}
    if keyword in by_field:  # a TrainConfig field name (what checkpoints store)
        return f"unknown setting {keyword!r}: it is called {by_field[keyword]} (the option {_option(keyword)})"
    close = difflib.get_close_matches(keyword, [*names, *RUN_KEYWORDS], n=3, cutoff=0.6)
    if close:
        return f"unknown setting {keyword!r}; did you mean {' or '.join(close)}?"
    return f"unknown setting {keyword!r}; the settings are {', '.join(names)} (the options of `digitnet train`)"


def _option(field_name: str) -> str:
    return settings_of(TrainConfig)[field_name].option


def train(*, data_dir: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
          force: bool = False, progress: bool = False, **settings) -> Model:
    """Train a network as `digitnet train` does and return it as a ``Model`` (with its ``history``).

    The keywords are the command's options without ``--``, dashes as
    underscores (``digitnet.train(hidden=30, eta=3.0, batch_size=10)``), with
    its defaults (the textbook's first network) and its checks: an unknown
    keyword or a bad value raises ``ValueError`` with the command's message;
    settings that do not fit the data (a batch larger than the training set)
    ``runs.SettingsError``, a ``ValueError`` too.  With the same settings the
    weights equal the command's bit for bit.

    ``data_dir`` as ``--data-dir`` (nothing is downloaded: ``DataError`` says
    to run `digitnet download`).  ``out``: a checkpoint written atomically
    after every epoch, exactly as the command writes it (an existing file is
    kept, ``FileExistsError``, unless ``force``); by default nothing is
    written and ``Model.save`` writes it later.  ``progress=True`` shows a bar
    per epoch on stderr; by default nothing is shown.  A diverging run raises
    ``training.TrainingDiverged``; Ctrl-C raises ``KeyboardInterrupt`` (with
    ``out``, the last complete epoch is kept there).

    Settings:
    {settings}
    """
    config = config_from(settings)
    from digitnet import data

    if out is None:
        return _train_in_memory(config, lambda: data.load_mnist(data_dir, 0), progress,
                                str(data.resolve_data_dir(data_dir)))
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists: choose another out, or pass force=True to replace it")
    from digitnet import runs

    plan = runs.prepare(config, out, lambda: data.load_mnist(data_dir, 0), force=True)
    with contextlib.closing(_Bar(config.epochs, progress)) as bar:
        result = runs.run(plan.trainer, plan.out, dataset=str(data.resolve_data_dir(data_dir)),
                          on_epoch=bar.epoch_done, on_progress=bar.progress)
    if result.outcome == "interrupted":
        raise KeyboardInterrupt
    if result.outcome == "diverged":
        # result.error is str(TrainingDiverged): "training diverged in epoch N: <reason>"
        kept = f"the last good epoch is kept in {out}" if result.saved_epoch else "nothing was saved"
        raise _diverged(result.epochs_completed + 1, f"{result.error.partition(': ')[2]}; {kept}",
                        result.learning_rate)
    if result.outcome == "write_failed":
        raise runs.RunError(runs.failure_message(result.outcome, result.error, result.saved_epoch, result.resume_from))
    return load(out)


def _train_in_memory(config: TrainConfig, load_data, progress: bool, dataset: str) -> Model:
    """``runs.prepare`` and ``runs.run`` without a file: the same Trainer, epochs and final test."""
    from digitnet.runs import SettingsError
    from digitnet.training import Trainer, TrainingDiverged

    whole = load_data()
    problems = config.problems(training_file_size=len(whole.training) + len(whole.validation))
    if problems:
        raise SettingsError("; ".join(problems))
    trainer = Trainer(whole.with_validation_size(config.validation_size), config)
    done = 0

    def images(count: int) -> None:
        nonlocal done
        done += count
        bar.progress(trainer.state.epochs_completed + 1, done, len(trainer.data.training))

    with contextlib.closing(_Bar(config.epochs, progress)) as bar:
        try:
            for stats in trainer.epochs(on_progress=images if progress else None):
                done = 0
                bar.epoch_done(stats)
        except TrainingDiverged as e:
            raise _diverged(e.epoch, e.reason, trainer.state.learning_rate) from None
    final = trainer.best_network or trainer.network
    test = {"test_accuracy": metrics.accuracy(final, trainer.data.test),
            "test_accuracy_last_epoch": metrics.accuracy(trainer.network, trainer.data.test)}
    return Model(final, weights_used="best" if trainer.best_network is not None else "last",
                 trainer=trainer, test=test, dataset=dataset)


def _diverged(epoch: int, reason: str, learning_rate: float):
    """The run's divergence, with what to try (``runs.failure_message``'s advice, in keyword words)."""
    from digitnet.training import TrainingDiverged

    return TrainingDiverged(epoch, f"{reason}. Try a smaller eta (it was {learning_rate:g}).")


class _Bar:
    """``train(progress=True)``: a tqdm bar over each epoch's images, left on screen with the epoch's
    validation accuracy; without ``progress`` it does nothing (tqdm is not even imported)."""

    def __init__(self, epochs: int, shown: bool):
        self.epochs, self.shown, self.bar, self.epoch = epochs, shown, None, 0

    def progress(self, epoch: int, done: int, total: int) -> None:
        if not self.shown:
            return
        if self.bar is None or epoch != self.epoch:
            from digitnet.progress import progress_bar

            self.close()
            self.epoch = epoch
            self.bar = progress_bar(total=total, desc=f"epoch {epoch}/{self.epochs}", unit="image", disable=False)
        self.bar.update(done - self.bar.n)

    def epoch_done(self, stats) -> None:
        if self.bar is not None and stats.validation_accuracy is not None:  # in the description: narrow bars show it
            self.bar.set_description_str(f"epoch {stats.epoch}/{self.epochs} validation {stats.validation_accuracy:.2%}")
        self.close()

    def close(self) -> None:
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.close()


def _default(name: str):
    """A setting's default as a user would pass it (``hidden=30``, not ``(30,)``)."""
    default = default_of(TrainConfig, name)
    return default[0] if isinstance(default, tuple) and len(default) == 1 else default


def _settings_doc() -> str:
    """One line per setting for ``train``'s docstring: keyword=default, help, range; from the table."""
    specs = settings_of(TrainConfig)
    lines = []
    for keyword, name in keywords().items():
        spec = specs[name]
        limits = f" ({spec.range_text()})" if spec.range_text() else ""
        choices = f" ({', '.join(spec.choices)})" if spec.choices else ""
        lines.append(f"    {keyword}={_default(name)!r}: {spec.help}{choices}{limits}")
    return "\n".join(lines).lstrip()


def _signature() -> inspect.Signature:
    """``train``'s signature with every setting as a keyword (for help() and a notebook's completion)."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    run = [inspect.Parameter(name, keyword, default=value) for name, value in
           zip(RUN_KEYWORDS, (None, None, False, False))]
    table = [inspect.Parameter(k, keyword, default=_default(name)) for k, name in keywords().items()]
    return inspect.Signature(run + table, return_annotation="Model")


train.__doc__ = train.__doc__.replace("{settings}", _settings_doc())
train.__signature__ = _signature()
