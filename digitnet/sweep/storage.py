"""Where a sweep's study is kept: the database behind `--storage`, opened for many processes at once.

By default the database is a SQLite file in the output folder (`study.db`), so
running the same command again continues the study.  Any SQLAlchemy URL Optuna
accepts (`postgresql://user@host/db`) lets processes on many machines share one
study.  The output folder records which study's trial checkpoints it holds.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from pathlib import Path

import optuna
import sqlalchemy.exc

from digitnet.sweep import SweepError, SweepUsageError
from digitnet.sweep.liveness import GRACE_SECONDS, HEARTBEAT_SECONDS
from digitnet.sweep.study import quiet_optuna, study_names

STUDY_FILE = "study.db"
CREATE_ATTEMPTS = 5  # tries at opening a new database while another process creates its tables
OWNER_FILE = ".digitnet-study"  # in --out: the study whose trial-NNN.npz files it holds


def sqlite_file(url: str) -> Path | None:
    """The file of a sqlite:/// URL (None for other databases); refuses an in-memory one, which lives
    and dies with one process and so cannot be shared with the worker processes."""
    if not url.startswith("sqlite:"):
        return None
    path = url.removeprefix("sqlite:").removeprefix("///").split("?", 1)[0]
    if path in ("", "//", ":memory:") or "mode=memory" in url:
        raise SweepUsageError(f"--storage {url}: an in-memory database cannot be shared by the worker "
                              "processes; give a file, e.g. sqlite:///sweep.db")
    return Path(path)


def out_dir_owner(out_dir: Path, store=None) -> str | None:
    """The study whose trials --out holds: the name recorded there, else (a folder from before the
    record was kept) the study in its default study.db, if ``store`` is that database."""
    with contextlib.suppress(OSError):
        return (out_dir / OWNER_FILE).read_text(encoding="utf-8").strip() or None
    names = study_names(store) if store is not None else []
    return names[0] if len(names) == 1 else None


def claim_out_dir(out_dir: Path, name: str) -> None:
    """Record that --out holds study ``name``'s trials (their checkpoints are named by number only)."""
    from digitnet.atomic import atomic_path

    if not (out_dir / OWNER_FILE).exists():
        with atomic_path(out_dir / OWNER_FILE) as tmp:
            Path(tmp).write_text(name + "\n", encoding="utf-8")


def default_storage(out_dir: str | os.PathLike) -> str:
    return f"sqlite:///{Path(out_dir).resolve() / STUDY_FILE}"


def shown_url(url: str) -> str:
    """The storage URL without its password, for messages and the page."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show it, unless it might hold a password
        return url if "@" not in url and ":" not in url.partition("//")[2] else "(the --storage URL)"


def _driver_url(url: str) -> str:
    """`postgresql://` means psycopg2 to SQLAlchemy; use psycopg 3 (the `postgres` extra) when that is what is installed."""
    if url.startswith(("postgresql://", "postgres://")):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_storage(url: str):
    """An Optuna RDBStorage with heartbeats, or a SweepError saying why the database cannot be used."""

    quiet_optuna()
    engine_kwargs = {}
    if url.startswith("sqlite:///"):
        engine_kwargs["creator"] = _sqlite_connector(url.removeprefix("sqlite:///"))
    try:
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return optuna.storages.RDBStorage(_driver_url(url), engine_kwargs=engine_kwargs,
                                                  heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError,
                    sqlalchemy.exc.ProgrammingError) as e:  # PostgreSQL: DuplicateTable
                # Two processes creating the tables of a new database at once: the loser finds them made.
                racing = any(word in str(e) for word in ("UNIQUE", "already exists", "duplicate", "locked"))
                if not racing or attempt == CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 + random.random())
    except (ImportError, ModuleNotFoundError) as e:
        hint = (" (pip install 'digitnet[postgres]')" if url.startswith(("postgres", "postgresql")) else "")
        raise SweepError(f"cannot use --storage {shown_url(url)}: its database driver is missing: {e}{hint}") from None
    except sqlalchemy.exc.ArgumentError:
        raise SweepUsageError(f"--storage {shown_url(url)}: not a database URL "
                         "(e.g. sqlite:///sweep.db or postgresql://user@host/db)") from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise SweepError(f"cannot open the study database {shown_url(url)}: {reason}") from None


def _sqlite_connector(path: str):
    """SQLite connections that wait for another process's write (instead of failing with "database is
    locked") and log ahead (WAL): a commit then costs 0.2 ms instead of 20 ms with the default
    journal's fsyncs (measured here), and Optuna commits for every epoch of every trial.  A kill -9
    loses nothing committed; a power cut may lose the last commits, which resuming re-runs."""
    import sqlite3

    def connect():
        connection = sqlite3.connect(path, timeout=60, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    return connect
