"""The exit-status rules every command follows: the library's errors as one message (exit 1), signals as 128 + N.

click itself gives a mistake on the command line exit 2, and digitnet.cli.main gives Ctrl-C in a
command that only reads exit 130.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
from pathlib import Path

import click


def user_errors(command):
    """Turn the library's user-facing exceptions into one clean message and exit 1 (a file or data problem)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 -- sorted below; anything else goes on as it was
            if isinstance(e, _library_errors()):
                raise click.ClickException(str(e)) from None
            if isinstance(e, MemoryError):
                raise click.ClickException("out of memory") from None
            if isinstance(e, OSError) and e.errno != errno.EPIPE:  # EPIPE: the reader has gone (cli.output)
                where = f" {_users_path(e.filename)}" if e.filename else ""
                raise click.ClickException(f"cannot access{where}: {e.strerror or e}") from None
            raise

    return wrapper


def _library_errors() -> tuple[type[Exception], ...]:
    """The library's user-facing exceptions, imported only once one has been raised: digitnet.runs
    (and training, which it imports) cost 25 ms of every command's start, `predict`'s included."""
    from digitnet.atomic import WriteError
    from digitnet.checkpoint import CheckpointError
    from digitnet.data import DataError
    from digitnet.runs import ResumeError, RunError

    return DataError, CheckpointError, ResumeError, RunError, WriteError


def _users_path(filename) -> str:
    """The path the user named, not the hidden temporary file an atomic write was using beside it
    (atomic_path's ``.NAME.XXXX.part``)."""
    path = Path(os.fsdecode(filename))
    match = re.fullmatch(r"\.(.+)\.[^.]+\.part", path.name)
    return str(path.with_name(match.group(1)) if match else path)


def stops_cleanly(command):
    """SIGTERM and SIGHUP stop a command that writes as Ctrl-C does (see digitnet.signals):
    what was half-written is removed, and it exits with 128 + the signal number.
    The command may catch the interrupt itself to say more (train, download)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from digitnet import signals

        try:
            with signals.stop_requests():
                return command(*args, **kwargs)
        except KeyboardInterrupt as e:
            signum = signals.signal_number(e)
            click.echo(f"\ninterrupted ({signals.describe(signum)}): stopped before finishing; "
                       "no half-written file was left", err=True)
            sys.exit(128 + signum)

    return wrapper
