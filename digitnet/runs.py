"""A training run as a checkpoint: what goes into the metadata, and how a run is resumed.

Glue between ``training`` (the loop) and ``checkpoint`` (the file), so neither
knows about the other and the CLI stays thin.
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import numpy as np

from digitnet import __version__
from digitnet.checkpoint import Checkpoint, save
from digitnet.data import MNIST
from digitnet.settings import settings_of
from digitnet.training import TrainConfig, Trainer, TrainState


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
        if spec is not None and not spec.resume_may_change and _normalise(value) != _normalise(getattr(config, name)):
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
    return save(path, trainer.network, metadata, trainer.best_network)


def resumed_config(checkpoint: Checkpoint, epochs: int | None = None,
                   requested: dict | None = None) -> tuple[TrainConfig, TrainState]:
    """The settings and state a resumed run continues with, after every check that needs no data.

    ``epochs`` is the total the run should reach; None keeps the run's own
    planned total.  ``requested`` maps TrainConfig field names to the values the
    user gave explicitly; they must agree with the run's (``conflicts``).
    Raises ``ResumeError`` for a file without training state and
    ``ResumeConflict`` when the request cannot continue this run.
    """
    metadata = checkpoint.metadata
    if "hyperparameters" not in metadata or "state" not in metadata:
        raise ResumeError(f"{checkpoint.path} has no training state to resume from")
    config = TrainConfig.from_dict(metadata["hyperparameters"])
    refused = conflicts(config, requested or {})
    if refused:
        raise ResumeConflict("cannot resume with different settings: " + "; ".join(refused)
                             + ". Leave those options out to continue the run as it was.")
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


def resume(checkpoint: Checkpoint, data: MNIST, epochs: int | None = None,
           requested: dict | None = None) -> Trainer:
    """A Trainer that continues ``checkpoint`` from its last complete epoch (see ``resumed_config``)."""
    config, state = resumed_config(checkpoint, epochs, requested)
    return Trainer(data, config, network=checkpoint.network, state=state, best_network=checkpoint.best_network)


def _normalise(value):
    """Compare (100, 30) with [100, 30] and 3 with 3.0 as equal."""
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else value
