"""Stop requests from outside the program, handled like Ctrl-C.

``kill PID``, ``docker stop`` and a job scheduler's time limit send SIGTERM; closing
the terminal sends SIGHUP.  Python's default for both is to die on the spot, which
skips every ``finally`` and ``except``: temporary files stay behind and nothing is
said.  Inside ``stop_requests()`` they raise ``Stopped`` instead, a
``KeyboardInterrupt`` carrying the signal number, so every clean-up written for
Ctrl-C (``atomic_path`` removing its temporary file, a run keeping its last
complete epoch) runs for them too, and the command can exit with 128 + signum
as a shell would report for the signal.
"""

from __future__ import annotations

import contextlib
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_deferring = 0            # depth of nested deferred() blocks
_pending: int | None = None  # a stop signal that arrived inside one


class Stopped(KeyboardInterrupt):
    """A stop request by signal; ``except KeyboardInterrupt`` catches it as it catches Ctrl-C."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_number(interrupt: BaseException) -> int:
    """The signal behind a KeyboardInterrupt: its own for ``Stopped``, SIGINT for a plain Ctrl-C."""
    return getattr(interrupt, "signum", int(signal.SIGINT))


def name(signum: int) -> str:
    """A signal's name ('SIGKILL'), or 'signal N' for a number Python does not know."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe(signum: int) -> str:
    """How a user would name the stop request: 'Ctrl-C', 'SIGTERM', 'SIGHUP'."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _handler(signum, frame):
    global _pending
    if _deferring:
        _pending = _pending or signum
        return
    raise Stopped(signum)


@contextlib.contextmanager
def stop_requests(signums=STOP_SIGNALS):
    """Within the block, each of ``signums`` raises ``Stopped(signum)``; the previous handlers
    are restored on exit.

    A signal that was being ignored when the block began stays ignored (``nohup``
    ignores SIGHUP on purpose).  Handlers can only be set in the main thread;
    elsewhere (a server's worker thread) the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in signums:
            current = signal.getsignal(signum)
            if current == signal.SIG_IGN:
                continue
            previous[signum] = current
            signal.signal(signum, _handler)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred():
    """Hold stop signals until the block is done, then raise ``Stopped`` for the first one.

    For short writes that should finish rather than be abandoned: moving a
    just-completed epoch into place takes milliseconds, and losing that epoch to
    a signal arriving mid-write would be a pity.  Only signals handled by
    ``stop_requests()`` are held; outside it this does nothing.
    """
    global _deferring, _pending
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: nothing to hold here
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending is not None:
            signum, _pending = _pending, None
            raise Stopped(signum)
