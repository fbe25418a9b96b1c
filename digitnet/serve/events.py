"""GET /api/train/events: the training status as Server-Sent Events, without a thread per stream.

A class of 40 keeps 40 streams open for the whole lesson, and the ASGI server's thread pool has 40
tokens: a stream that waited in ``TrainingRuns.wait_for_change`` would hold one each, and the
predictions would queue behind them.  So ONE watcher thread per server waits for the runs' changes
and hands each new status to the event loop (``call_soon_threadsafe``); every stream waits on an
``asyncio.Event`` that costs a few hundred bytes, and sends a comment line after KEEPALIVE seconds
of quiet (proxies drop silent connections; a write to a gone client ends the stream).
Each status is encoded once, by the watcher, not once per stream: with its history it is ~13 KB,
and 40 streams encoding it on the event loop delayed the class's predictions.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

KEEPALIVE = 15.0    # seconds between comment lines on a quiet stream
WATCH_SLICE = 1.0   # the watcher's longest wait, so it notices a closed hub within a second
# Progress within an epoch is sent at most this often; a status that ends an epoch or changes the
# run's state is sent at once.  A class's 40 streams got 7 events a second each (~22 KB with the
# history): 763 MB in a 2-minute lesson, written by the event loop that answers the predictions.
PROGRESS_INTERVAL = 0.5


def _milestone(status: dict) -> tuple:
    """What a stream must never miss: the epochs completed, the state, the run, its message."""
    return (status.get("epochs_completed"), status.get("state"), status.get("run"), status.get("message"))


def event_bytes(status: dict) -> bytes:
    return b"data: " + json.dumps(status, separators=(",", ":")).encode() + b"\n\n"


class TrainingEvents:
    """The newest status of ``runs`` (a ``TrainingRuns``), shared by every open stream of one server."""

    def __init__(self, runs, keepalive: float = KEEPALIVE):
        self.runs = runs
        self.keepalive = keepalive
        self.closed = False
        self._latest: tuple[int, bytes] | None = None  # the newest status: its version and event bytes
        self._changed: asyncio.Event | None = None  # replaced by a fresh one at each change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: threading.Thread | None = None

    def close(self) -> None:
        """End every stream (the server is stopping); callable from any thread."""
        self.closed = True
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._publish, self._latest)
            except RuntimeError:  # the loop has just closed: nothing left to wake
                pass

    def _start_watching(self) -> None:
        """Called on the event loop by the first stream."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._watcher = threading.Thread(target=self._watch, name="digitnet-train-events", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        """The one thread that waits for the runs' changes, and hands them on: at once when an
        epoch ends or the state changes, progress within an epoch at most every PROGRESS_INTERVAL."""
        status = sent = self.runs.status()
        sent_at = 0.0
        while not self.closed and not self.runs.closed:
            held = status is not sent  # a progress status waiting for its turn
            wait = max(0.0, sent_at + PROGRESS_INTERVAL - time.monotonic()) if held else WATCH_SLICE
            changed = self.runs.wait_for_change(status["version"], wait)
            if changed is not None:
                status = changed
            if status is sent:
                continue
            if (_milestone(status) != _milestone(sent) or time.monotonic() >= sent_at + PROGRESS_INTERVAL):
                try:
                    self._loop.call_soon_threadsafe(self._publish, (status["version"], event_bytes(status)))
                except RuntimeError:  # the event loop is gone (the server stopped)
                    return
                sent, sent_at = status, time.monotonic()
        self.close()

    def _publish(self, latest: tuple[int, bytes] | None) -> None:
        """On the event loop: the newest status (version, event bytes), and a wake-up for every stream."""
        if latest is not None:
            self._latest = latest
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def stream(self) -> AsyncIterator[bytes]:
        """The status now, then each change, with comment lines while it stays quiet."""
        if self._watcher is None:
            self._start_watching()
        status = await run_in_threadpool(self.runs.status)  # a moment's lock, not a wait
        seen = status["version"]
        yield event_bytes(status)
        while not self.closed and not self.runs.closed:
            changed = self._changed
            latest = self._latest
            if latest is not None and latest[0] > seen:
                seen, event = latest
                yield event
                continue
            try:
                await asyncio.wait_for(changed.wait(), self.keepalive)
            except asyncio.TimeoutError:
                yield b": still here\n\n"
