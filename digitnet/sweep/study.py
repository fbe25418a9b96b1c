"""A sweep's Optuna study: created or joined by name, with its definition stored beside the trials.

Every process that shares a study reads the sweep's definition (search space,
fixed settings, number of trials, pruner) from the study itself, so joining
takes no more than `--storage URL --study NAME` (the database: storage.py).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import optuna

from digitnet.sweep import SweepError, SweepUsageError
from digitnet.sweep.liveness import counts
from digitnet.sweep.space import SearchSpace

DEFINITION_KEY = "digitnet_sweep"
# A process that finds a new study without its definition waits this long for the process that
# created it to store it (they are two writes: the study, then the definition).
JOIN_WAIT_SECONDS = 10.0


def quiet_optuna() -> None:
    """Optuna logs every trial and warns about experimental features; the sweep prints its own lines."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.logging.disable_propagation()
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def check_study_name(name: str) -> str:
    """A --study name that can also name the default --out folder (sweep-NAME)."""
    if not name.strip() or any(c in name for c in "/\\\0") or name in (".", ".."):
        raise SweepUsageError(f"--study {name!r}: a study needs a name, without slashes (e.g. --study lr-search)")
    return name


@dataclass
class Definition:
    """What a study searches, stored in the study so that every worker runs the same sweep."""

    space: SearchSpace
    trials: int
    pruner: str

    def to_dict(self) -> dict:
        return {"format": 1, **self.space.to_dict(), "trials": self.trials, "pruner": self.pruner}

    @classmethod
    def from_dict(cls, d: dict) -> "Definition":
        return cls(SearchSpace.from_dict(d), int(d["trials"]), d["pruner"])


def study_names(storage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def load(storage, name: str, wait: float = 0.0):
    """The stored study and its definition; SweepError if there is none by that name.  With ``wait``
    (seconds), a study with no definition and no trials yet is read again until it has one: another
    process has just created it and is storing its definition."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = study_names(storage)
        known = f"; it holds: {', '.join(names)}" if names else "; it holds no study yet"
        raise SweepError(f"no study named {name!r} in that storage{known}") from None
    stored = study.user_attrs.get(DEFINITION_KEY)
    deadline = time.monotonic() + wait
    while stored is None and time.monotonic() < deadline and not study.get_trials(deepcopy=False):
        time.sleep(0.05)
        stored = study.user_attrs.get(DEFINITION_KEY)
    if stored is None:
        raise SweepError(f"study {name!r} was not made by `digitnet sweep` (it has no sweep definition)")
    return study, Definition.from_dict(stored)


def stored_definition(storage, name: str) -> Definition | None:
    """The definition of study ``name``, or None if the storage has no such study yet."""
    if name not in study_names(storage):
        return None
    return load(storage, name)[1]


def create_or_join(storage, name: str, requested: Definition, given: set[str]):
    """Open study ``name``, creating it with ``requested`` if it does not exist.

    An existing study keeps its definition: ``given`` names the parts the user
    typed ("space", "trials", "pruner"); a typed space or pruner must agree with
    the stored one, and a typed --trials becomes the study's new target.
    Returns (study, definition, created).
    """
    if name not in study_names(storage):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        if DEFINITION_KEY not in study.user_attrs:  # two processes may create it at once: same command, same value
            study.set_user_attr(DEFINITION_KEY, requested.to_dict())
            return study, requested, True
    study, stored = load(storage, name, wait=JOIN_WAIT_SECONDS)  # its creator may be storing the definition
    differences = []
    if "space" in given and requested.space.to_dict() != stored.space.to_dict():
        differences.append(f"it searches {stored.space.describe()}")
    if "pruner" in given and requested.pruner != stored.pruner:
        differences.append(f"its pruner is {stored.pruner}")
    if differences:
        raise SweepUsageError(f"study {name!r} already exists and {'; '.join(differences)}. Run without --param, "
                         "--set, --epochs, --seed and --pruner to continue it, or choose another --study or --out")
    if "trials" in given and requested.trials != stored.trials:
        done = counts(study)["done"]
        if requested.trials < done:
            raise SweepUsageError(f"study {name!r} has {done} trials done already: give --trials {done} or more "
                                  "(or leave --trials out to continue it)")
        stored.trials = requested.trials
        study.set_user_attr(DEFINITION_KEY, stored.to_dict())
    return study, stored, False


def target(study) -> int:
    """The study's current --trials (another machine may have raised it)."""
    return int(study.user_attrs[DEFINITION_KEY]["trials"])
