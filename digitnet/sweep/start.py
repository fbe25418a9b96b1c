"""A sweep's start-up: its storage opened, --out checked to hold this study's trials, the study created or joined.

Also the other way in, for `sweep --show`: an existing sweep opened to be read.  Mistakes on
the command line raise SweepUsageError; a storage or file problem, SweepError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from digitnet import atomic
from digitnet.data import MNIST
from digitnet.sweep import SweepError, SweepUsageError
from digitnet.sweep.storage import (STUDY_FILE, claim_out_dir, default_storage, open_storage, out_dir_owner,
                                    sqlite_file)
from digitnet.sweep.study import Definition, create_or_join, load, stored_definition, study_names


@dataclass
class Started:
    """A study ready for its workers, and the data its trials will see."""

    study: Any  # optuna.Study
    store: Any  # the opened Optuna storage
    url: str
    definition: Definition  # the stored one when joining: it wins over what was typed
    created: bool
    mnist: MNIST  # with the study's validation split


def start(name: str, requested: Definition, given: set[str], out_dir: Path, storage: str | None,
          load_data: Callable[[], MNIST]) -> Started:
    """Create study ``name`` with ``requested``, or join it (see ``study.create_or_join``; ``given``
    names the parts the user typed), its trials' checkpoints to go in ``out_dir``.

    ``storage`` is the database URL typed, or None for study.db in ``out_dir``.  ``load_data``
    returns the whole training file (the search space is checked against its size).  A failed
    start leaves no new ``out_dir`` behind, and no empty study.db: the default database is made
    only after every check, unless it exists already (it may hold the study to continue).
    """
    with atomic.folders_removed_on_failure(out_dir):
        atomic.check_folder_writable(out_dir)  # a read-only disk, /proc: said now, naming --out
        url = storage or default_storage(out_dir)
        store = None
        if storage is not None or (out_dir / STUDY_FILE).exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            store = open_storage(url)
        definition = (store is not None and stored_definition(store, name)) or requested
        mnist = load_data()
        definition.space.check(training_file_size=len(mnist.training))
        mnist = mnist.with_validation_size(definition.space.base().validation_size)
        size = definition.space.size()
        wanted = requested.trials if "trials" in given else definition.trials
        if size is not None and wanted > size:
            raise SweepUsageError(f"the search space holds only {size} different settings (every --param is "
                                  f"a list); ask for --trials {size} or fewer")
        owner = out_dir_owner(out_dir, store if storage is None else None)
        if owner is not None and owner != name:
            raise SweepUsageError(f"--out {out_dir} holds the trials of study {owner!r}, whose checkpoints "
                                  f"study {name!r} would overwrite: give it its own --out (without "
                                  f"--out it gets sweep-{name})")
        if store is None:
            out_dir.mkdir(parents=True, exist_ok=True)
            store = open_storage(url)
        study, definition, created = create_or_join(store, name, requested, given)
        claim_out_dir(out_dir, name)
    return Started(study, store, url, definition, created, mnist)


@dataclass
class Shown:
    """An existing sweep, opened to be read (`sweep --show`)."""

    study: Any  # optuna.Study
    definition: Definition
    name: str
    url: str


def existing(directory: Path, storage: str | None, name: str, name_given: bool) -> Shown:
    """The sweep in ``directory`` (its study.db), or in ``storage``, without creating anything.

    Without ``name_given``, a storage holding exactly one study shows that one, whatever its name.
    """
    if storage is None:
        if not (directory / STUDY_FILE).is_file():
            raise SweepError(f"{directory} holds no sweep ({STUDY_FILE} is missing); for a study in a "
                             "shared database add --storage URL --study NAME")
        storage = default_storage(directory)
    database = sqlite_file(storage)
    if database is not None and not database.is_file():  # opening it would create it: --show only reads
        raise SweepError(f"--storage {storage}: there is no database file {database}")
    store = open_storage(storage)
    if not name_given:
        names = study_names(store)
        if len(names) > 1:
            raise SweepError(f"the storage holds several studies ({', '.join(names)}): choose one with --study")
        name = names[0] if names else name
    study, definition = load(store, name)
    return Shown(study, definition, name, storage)
