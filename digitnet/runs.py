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
from digitnet.training import TrainConfig, Trainer, TrainState

# Settings that define a run; resuming with a different value would not continue the same run.
RESUMABLE_SETTINGS = ("hidden_sizes", "batch_size", "learning_rate", "seed", "cost", "init", "l2",
                      "dtype", "validation_size", "patience", "eta_patience", "eta_decay", "eta_min_factor", "augment",
                      "dropout", "l1", "momentum", "eta_epoch_factor")


class ResumeError(Exception):
    """The checkpoint cannot be continued with the settings asked for."""


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
    return save(path, trainer.network, metadata, trainer.best_network, velocities=trainer.optimizer.velocities)


def resume(checkpoint: Checkpoint, data: MNIST, epochs: int | None,
           requested: dict | None = None, overrides: dict | None = None) -> Trainer:
    """A Trainer that continues ``checkpoint`` from its last complete epoch.

    ``epochs`` is the total the run should reach; ``requested`` holds the
    settings the user gave explicitly, which must agree with the run's;
    ``overrides`` settings that do not change the results (``background``,
    ``exact_cost``) and may differ from the original run's.
    """
    metadata = checkpoint.metadata
    if "hyperparameters" not in metadata or "state" not in metadata:
        raise ResumeError(f"{checkpoint.path} has no training state to resume from")
    config = TrainConfig.from_dict(metadata["hyperparameters"])
    conflicts = []
    for name, value in (requested or {}).items():
        if name in RESUMABLE_SETTINGS and _normalise(value) != _normalise(getattr(config, name)):
            conflicts.append(f"{name} was {_normalise(getattr(config, name))}, not {_normalise(value)}")
    if conflicts:
        raise ResumeError("cannot resume with different settings: " + "; ".join(conflicts)
                          + ". Leave those options out to continue the run as it was.")
    state = TrainState.from_dict(dict(metadata["state"], history=list(checkpoint.history)))
    if epochs is not None:
        config.epochs = epochs
    for name, value in (overrides or {}).items():
        setattr(config, name, value)
    if state.stopped:
        raise ResumeError(f"{checkpoint.path}: the run already ended ({state.stopped})")
    if state.epochs_completed >= config.epochs:
        raise ResumeError(f"{checkpoint.path} has already completed {state.epochs_completed} epochs; "
                          f"pass --epochs N with N > {state.epochs_completed} to train further")
    if config.momentum and checkpoint.velocities is None:
        raise ResumeError(f"{checkpoint.path} was trained with momentum but holds no velocities to resume from")
    return Trainer(data, config, network=checkpoint.network, state=state, best_network=checkpoint.best_network,
                   velocities=checkpoint.velocities)


def _normalise(value):
    """Compare (100, 30) with [100, 30], 3 with 3.0, and augment 2 with "shift=2" as equal."""
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    if isinstance(value, str) and value and ("=" in value or value.isdigit()):
        from digitnet import augment

        try:
            return str(augment.parse(value)) or "none"
        except augment.AugmentError:
            return value
    return value
