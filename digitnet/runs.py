"""A training run as a service: prepare it, run it, get a result.

``prepare`` checks the output location and builds a fresh or resumed Trainer;
``run`` trains, saves a checkpoint atomically after every epoch, handles
divergence and stop requests (Ctrl-C, SIGTERM/SIGHUP, or a ``should_stop``
callback), does the final test and returns a ``RunResult`` (which says when
the network is only guessing, ``guessing.verdict``).  The CLI, the page
and a sweep all call the same two functions and only differ in what they print.
Also the glue between ``training`` (the loop) and ``checkpoint`` (the file).
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from signal import SIGINT
from typing import Callable

import numpy as np

from digitnet import __version__, guessing, signals
from digitnet.atomic import WriteError, check_writable
from digitnet.checkpoint import Checkpoint, save
from digitnet.checkpoint import load as load_checkpoint
from digitnet.config import PEEK_EPOCHS, ConfigError, TrainConfig
from digitnet.data import MNIST
from digitnet.metrics import accuracy
from digitnet.settings import settings_of
from digitnet.training import EpochStats, Peek, Trainer, TrainingDiverged, TrainState

DEFAULT_OUT = "model.npz"
MNIST_TRAINING_IMAGES = 60_000  # the images in MNIST's training file (``digitnet download`` checks its checksum)
# What the training cost in a run's history is, by ``EpochStats.cost_source``: the words `digitnet train`
# prints before the first epoch and the report writes over its curve, defined once.
COST_MEANING = {
    "sgd": "mean over the epoch's mini-batches, as SGD saw them",
    "exact": "the training set's, from a pass at the end of each epoch",
}


class ResumeError(Exception):
    """The checkpoint cannot be continued (it holds no training state)."""


class ResumeConflict(ResumeError):
    """The settings asked for disagree with the run's: a mistake on the command line, not in the file."""


def conflicts(config: TrainConfig, requested: dict) -> list[str]:
    """``--hidden was 10, you gave 20`` for every requested setting that would change the run.

    Only settings marked ``resume_may_change`` (the planned total, ``--epochs``)
    may differ: with any other the resumed run would not be the run it continues.
    """
    specs = settings_of(TrainConfig)
    out = []
    for name, value in requested.items():
        spec = specs.get(name)
        if spec is not None and not spec.resume_may_change and not _same(spec, value, getattr(config, name)):
            out.append(f"{spec.option} was {spec.format(getattr(config, name))}, you gave {spec.format(value)}")
    return out


def versions() -> dict:
    """The versions that produced a checkpoint, so a result can be reproduced from the file alone."""
    from importlib import metadata

    found = {"digitnet": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for package in ("click", "tqdm"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


class RunError(Exception):
    """The run cannot start: its output would overwrite something, or cannot be written."""


class SettingsError(ValueError):
    """The settings do not fit the data (e.g. a batch larger than the training set)."""


def save_run(path: str | Path, trainer: Trainer, test: dict | None = None, dataset: str = "") -> Path:
    """Write the trainer's networks and everything needed to reproduce or resume the run."""
    state = trainer.state
    metadata = {
        "hyperparameters": trainer.config.to_dict(),
        "seed": trainer.config.seed,
        "epochs_completed": state.epochs_completed,
        "history": state.history,
        "best_epoch": state.best_epoch or None,
        "best_validation_accuracy": state.best_accuracy,
        "stopped": state.stopped,
        "state": {k: v for k, v in state.to_dict().items() if k != "history"},
        "versions": versions(),
        "dataset": dataset,
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if test is not None:
        metadata.update(test)
    return save(path, trainer.network, metadata, trainer.best_network, velocities=trainer.optimizer.velocities)


def resumed_config(checkpoint: Checkpoint, epochs: int | None = None,
                   requested: dict | None = None) -> tuple[TrainConfig, TrainState]:
    """The settings and state a resumed run continues with, after every check that needs no data.

    ``epochs`` is the total the run should reach; None keeps the run's own
    planned total.  ``requested`` maps TrainConfig field names to the values the
    user gave explicitly; they must agree with the run's (``conflicts``), except
    those marked ``resume_may_change`` (how the run is monitored or where its
    distortions are made), which are taken.
    Raises ``ResumeError`` for a file without training state or with a setting
    this digitnet does not know, and ``ResumeConflict`` when the request
    cannot continue this run.
    """
    metadata = checkpoint.metadata
    if "hyperparameters" not in metadata or "state" not in metadata:
        raise ResumeError(f"{checkpoint.path} has no training state to resume from")
    try:
        config = TrainConfig.from_dict(metadata["hyperparameters"], written_by=written_by(metadata))
    except ConfigError as e:
        raise ResumeError(f"{checkpoint.path}: {e}") from None
    refused = conflicts(config, requested or {})
    if refused:
        raise ResumeConflict("cannot resume with different settings: " + "; ".join(refused)
                             + ". Leave those options out to continue the run as it was.")
    specs = settings_of(TrainConfig)
    for name, value in (requested or {}).items():
        if name != "epochs" and name in specs and specs[name].resume_may_change:
            setattr(config, name, value)
    state = TrainState.from_dict(dict(metadata["state"], history=list(checkpoint.history)))
    done = state.epochs_completed
    if state.stopped:
        raise ResumeConflict(f"{checkpoint.path}: the run already ended ({state.stopped}); "
                             "start a new run to train further")
    if epochs is None:
        if done >= config.epochs:
            raise ResumeConflict(f"{checkpoint.path} has completed all {config.epochs} epochs of its plan; to train "
                                 f"further give a larger total: --resume {checkpoint.path} --epochs {done + 10}")
    elif epochs <= done:
        raise ResumeConflict(f"{checkpoint.path} has already completed {done} epochs and --epochs is the "
                             f"total to reach: pass --epochs N with N > {done} to train further")
    else:
        config.epochs = epochs
    return config, state


def written_by(metadata: dict) -> str | None:
    """The digitnet version that wrote the checkpoint (``versions()``), if it says."""
    found = metadata.get("versions")
    version = found.get("digitnet") if isinstance(found, dict) else None
    return version if isinstance(version, str) else None


def _continue(checkpoint: Checkpoint, data: MNIST, config: TrainConfig, state) -> Trainer:
    """The Trainer for ``resumed_config``'s (config, state) of ``checkpoint``."""
    if config.momentum and checkpoint.velocities is None:
        raise ResumeError(f"{checkpoint.path} was trained with --momentum but holds no velocities to resume from")
    return Trainer(data, config, network=checkpoint.network, state=state, best_network=checkpoint.best_network,
                   velocities=checkpoint.velocities)


def _same(spec, a, b) -> bool:
    """Compare (100, 30) with [100, 30] and 3 with 3.0 as equal; a setting with a little language of its
    own (--augment) by its canonical spelling, so 2 equals shift=2 and 0 equals none."""
    if spec.show is not None:
        try:
            return spec.format(a) == spec.format(b)
        except ValueError:
            return a == b
    return _normalise(a) == _normalise(b)


def _normalise(value):
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else value


# ---------------------------------------------------------------------------
# The run as a service


@dataclass
class Plan:
    """A run ready to start: its trainer, where it saves, and the checkpoint it continues (if any)."""

    trainer: Trainer
    out: Path
    resumed_from: Path | None = None


def output_path(out: str | os.PathLike | None, resume: str | os.PathLike | None = None,
                force: bool = False) -> Path:
    """Where the run saves (``out``, else the checkpoint it resumes, else model.npz), checked
    before any work: an existing file is kept unless it is the run being continued or
    ``force``, and the folder must exist and accept a new file."""
    out = Path(out or resume or DEFAULT_OUT)
    continuing_in_place = resume is not None and out.resolve() == Path(resume).resolve()
    if out.exists() and not continuing_in_place and not force:
        raise RunError(f"{out} already exists: continue it with --resume {out}, "
                       "choose another --out, or pass --force to replace it")
    check_writable(out)
    return out


def prepare(config: TrainConfig, out: str | os.PathLike | None, load_data: Callable[[], MNIST], *,
            resume_from: str | os.PathLike | None = None, force: bool = False,
            requested: dict | None = None, expected_size: int | None = MNIST_TRAINING_IMAGES) -> Plan:
    """Check the settings as far as they can be without data, then the output, then load the data and
    build the Trainer, in that order: a mistake in what was typed is told as that (``SettingsError``)
    before any problem with a file, and a typo in the output path or a refused resume fails in a
    second, before the data is read.

    ``load_data()`` returns the MNIST splits with the whole training file as
    training images; the run's validation split is cut from it here, after
    ``config.problems`` has checked the settings against the data's size
    (``SettingsError``).  A fresh run's settings are first checked against
    ``expected_size``, the size of MNIST's training file (None: not before
    the data is loaded), so ``--validation-size 60000`` is refused before
    ``model.npz already exists``.  With ``resume_from``, that checkpoint continues with
    its own settings to ``requested["epochs"]`` (or its planned total);
    ``requested`` holds the settings the user gave, which must agree with the
    run's (``ResumeConflict``, see ``resumed_config``).
    """
    requested = requested or {}
    problems = config.problems(training_file_size=expected_size if resume_from is None else None)
    if problems:
        raise SettingsError("; ".join(problems))
    if resume_from is not None and not Path(resume_from).is_file():
        raise RunError(f"{resume_from}: no such file")
    out = output_path(out, resume_from, force)
    previous = None
    if resume_from is not None:
        previous = load_checkpoint(resume_from)
        config, state = resumed_config(previous, requested.get("epochs"), requested)
    data = load_data()
    problems = config.problems(training_file_size=len(data.training) + len(data.validation))
    if problems:
        raise SettingsError("; ".join(problems))
    data = data.with_validation_size(config.validation_size)
    if previous is None:
        return Plan(Trainer(data, config), out)
    return Plan(_continue(previous, data, config, state), out, Path(resume_from))


@dataclass
class RunResult:
    """What a run came to.

    ``outcome`` is "finished" (every epoch, or a stopping rule fired: see
    ``stopped``), "interrupted" (Ctrl-C, a signal, or ``should_stop``),
    "diverged" or "write_failed".  ``saved_epoch`` is the epoch the file at
    ``resume_from`` holds (0: nothing of this run was saved); ``error`` explains
    a divergence or a failed write; ``guessing`` says, in plain words with the
    textbook's remedies, that a finished or stopped run is only guessing ("" when it learns).
    """

    out: Path
    outcome: str
    epochs: int
    epochs_completed: int
    saved_epoch: int
    resume_from: Path | None
    learning_rate: float
    best_epoch: int | None = None
    best_validation_accuracy: float | None = None
    stopped: str = ""
    test_accuracy: float | None = None
    test_accuracy_last_epoch: float | None = None
    tested_best: bool = False        # test_accuracy is of the best validation epoch's weights
    averaged_from: int = 0           # ... or of the mean of epochs averaged_from..N (--average-from)
    signal: int | None = None        # the signal that stopped the run (None: should_stop, or none came)
    error: str = ""
    history: list = field(default_factory=list)
    guessing: str = ""

    @property
    def resume_command(self) -> str | None:
        """The command that continues the run from what was saved, or None if nothing was."""
        if self.resume_from is None:
            return None
        return f"digitnet train --resume {shlex.quote(str(self.resume_from))} --epochs {self.epochs}"

    @property
    def exit_code(self) -> int:
        """What a command should exit with: 0, 128 + the signal, 130 for should_stop, or 1."""
        if self.outcome == "finished":
            return 0
        if self.outcome == "interrupted":
            return 128 + (self.signal or SIGINT)
        return 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["resume_from"] = None if self.resume_from is None else str(self.resume_from)
        d["resume_command"] = self.resume_command
        return d


def failure_message(outcome: str, error: str, saved_epoch: int, where, learning_rate: float | None = None) -> str:
    """How a run that "diverged" or hit "write_failed" is told, by the CLI and the page alike: what went
    wrong, what is kept (``where``: the file, or None when nothing was saved) and, after a divergence,
    what to try."""
    if outcome == "diverged":
        kept = f"the last good epoch is kept in {where}" if where else "nothing was saved"
        return f"{error}; {kept}. Try a smaller --eta (it was {learning_rate:g})."
    kept = f"the last complete epoch ({saved_epoch}) is kept in {where}" if where else "nothing was saved"
    return f"{error}; {kept}"


class _StopRequested(Exception):
    """should_stop() said yes."""


def checkpoint_bytes(trainer: Trainer) -> int:
    """About how large the run's checkpoint will grow: the last and the best weights, and the
    metadata (stored as 4-byte unicode: some 6 KB, plus about 600 bytes of history per epoch and
    600 per --peek-every look)."""
    arrays = sum(a.nbytes for a in trainer.network.weights + trainer.network.biases)
    copies = 2 if trainer.state.best_epoch or len(trainer.data.validation) else 1
    every = trainer.config.peek_every
    peeks = PEEK_EPOCHS * len(trainer.data.training) // every if every else 0
    return copies * arrays + 8_000 + 600 * (trainer.config.epochs + peeks)


def free_space_needed(trainer: Trainer, out: Path) -> int:
    """Free space the run needs at ``out``: each save writes a new file beside the old one
    before replacing it, so a new output needs room for two checkpoints, an existing one for one more."""
    size = checkpoint_bytes(trainer)
    return size if out.exists() else 2 * size


def run(trainer: Trainer, out: str | os.PathLike, *, resumed_from: str | os.PathLike | None = None,
        dataset: str = "", on_epoch: Callable[[EpochStats], None] | None = None,
        on_progress: Callable[[int, int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None, test: bool = True,
        on_untrained: Callable[[EpochStats], None] | None = None,
        on_peek: Callable[[Peek], None] | None = None) -> RunResult:
    """Train until done, saving ``out`` atomically after every epoch; then measure the test accuracy.

    ``on_progress(epoch, images_done, images_total)`` is called during an epoch
    (every couple of thousand images), ``on_epoch(stats)`` after each epoch
    is saved; ``on_untrained(stats)`` hears epoch 0 (the untrained network) of a
    fresh run, ``on_peek(peek)`` each --peek-every look.  ``should_stop()`` is asked
    at the same moments as ``on_progress``; when it says yes,
    or on Ctrl-C (or SIGTERM/SIGHUP inside ``signals.stop_requests()``), the
    epoch in progress is abandoned and ``out`` keeps the last complete one.
    Divergence and a failed write also end the run with the last good epoch kept.
    Nothing is raised for those: the ``RunResult`` says what happened.  After a
    stop mid-epoch the Trainer's weights are ahead of the file; continue from the
    file (``prepare(..., resume_from=out)``), not from the Trainer.
    """
    out = Path(out)
    state = trainer.state
    start_epoch = state.epochs_completed
    in_place = resumed_from is not None and Path(resumed_from).resolve() == out.resolve()
    saved_epoch = start_epoch if in_place else 0
    n_images = len(trainer.data.training)
    done = 0

    def progress(images: int) -> None:
        nonlocal done
        done += images
        if on_progress is not None:
            on_progress(state.epochs_completed + 1, done, n_images)
        if should_stop is not None and should_stop():
            raise _StopRequested

    outcome, signum, error = "finished", None, ""
    try:
        check_writable(out, free_space_needed(trainer, out))
        if should_stop is not None and should_stop():
            raise _StopRequested
        for stats in trainer.epochs(on_progress=progress, on_peek=on_peek, on_untrained=on_untrained):
            with signals.deferred():  # a finished epoch is written whole, even if a signal comes now
                save_run(out, trainer, dataset=dataset)
                saved_epoch = stats.epoch
            done = 0
            if on_epoch is not None:
                on_epoch(stats)
            if should_stop is not None and should_stop():
                raise _StopRequested
        if test:
            scores, signum = _final_test(trainer, out, dataset)
    except KeyboardInterrupt as e:
        outcome, signum = "interrupted", signals.signal_number(e)
    except _StopRequested:
        outcome = "interrupted"
    except TrainingDiverged as e:
        outcome, error = "diverged", str(e)
    except WriteError as e:
        outcome, error = "write_failed", str(e)

    if saved_epoch:
        resume_from = out
    elif resumed_from is not None:  # nothing new saved: the checkpoint resumed from still holds its epoch
        resume_from, saved_epoch = Path(resumed_from), start_epoch
    else:
        resume_from = None
    result = RunResult(
        out=out, outcome=outcome, epochs=trainer.config.epochs, epochs_completed=state.epochs_completed,
        saved_epoch=saved_epoch, resume_from=resume_from, learning_rate=state.learning_rate,
        best_epoch=state.best_epoch or None, best_validation_accuracy=state.best_accuracy,
        stopped=state.stopped, signal=signum, error=error, history=list(state.history))
    if outcome == "finished" and test:
        result.test_accuracy = scores["test_accuracy"]
        result.test_accuracy_last_epoch = scores["test_accuracy_last_epoch"]
        result.tested_best = trainer.best_network is not None
        result.averaged_from = trainer.config.average_from if trainer.state.averaged_epochs else 0
    if outcome in ("finished", "interrupted"):
        _tell_guessing(result, trainer)
    return result


def _tell_guessing(result: RunResult, trainer: Trainer) -> None:
    """``result.guessing``: ``guessing.verdict`` on the best validation epoch's weights (the ones tested)
    and the validation split, or on the last weights and the test split when there is none."""
    state, data = trainer.state, trainer.data
    try:
        if len(data.validation):
            result.guessing = guessing.verdict(trainer.best_network or trainer.network, trainer.config,
                                               state.history, state.best_accuracy, data.validation, "validation")
        else:
            result.guessing = guessing.verdict(trainer.network, trainer.config, state.history,
                                               result.test_accuracy, data.test, "test")
    except KeyboardInterrupt as e:  # a second Ctrl-C: the diagnosis is not worth waiting for
        result.signal = result.signal or signals.signal_number(e)


def _final_test(trainer: Trainer, out: Path, dataset: str) -> tuple[dict, int | None]:
    """Measure the test accuracy and save it with the run: (the scores, a signal that came meanwhile).

    Every epoch is saved and this takes under a second: a stop request now waits
    for it, rather than leave a complete run without its test accuracy; the run
    then still counts as finished.
    """
    tested = False
    try:
        with signals.deferred():
            final = trainer.best_network or trainer.network
            scores = {"test_accuracy": accuracy(final, trainer.data.test),
                      "test_accuracy_last_epoch": accuracy(trainer.network, trainer.data.test)}
            save_run(out, trainer, test=scores, dataset=dataset)
            tested = True
    except KeyboardInterrupt as e:
        if not tested:
            raise
        return scores, signals.signal_number(e)
    return scores, None
