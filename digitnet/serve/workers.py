"""Predictions in worker processes, so that concurrent requests use every core.

A prediction is mostly numpy and Pillow on small arrays, and much of that time the
interpreter holds the GIL: request threads of one process take turns, and eight clients
got fewer answers per second than one.  A few worker processes (each with its own copy
of the network) run the same ``predict.predict_bytes`` side by side.

Each worker has a pipe of its own: a request thread takes an idle worker, writes the
upload's bytes (no pickling) behind a byte saying what it wants back, reads the answer, and
hands the worker back.  /api/predict wants the JSON text it sends (``predict_json``: written in
the worker, so the server process never touches the numbers); the routes that look inside the
network want the Prediction, packed small (``_pack``: the scores and the 28x28 input as raw
float bytes, about 3.3 KB).  One hop
each way and no helper thread: concurrent.futures' pool (a queue-feeding thread, a
managing thread, pickled work items) cost about 0.4 ms of the server's CPU a prediction
and a few thread switches of latency (docs/predict.md, "Speed").

The workers are started by a background thread after the server has started (they are
fresh interpreters, ``spawn``: nothing of the server's threads or sockets is inherited,
and each costs about 35 MB), so the first requests are answered in the server process
itself, as are all of them when ``processes`` is 0 or once every worker has died.  The
answers are the same either way: the same function runs on the same bytes.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
from multiprocessing.connection import Connection

import numpy as np

from digitnet import predict
from digitnet.images import Verdict
from digitnet.memory import keep_freed_memory
from digitnet.network import Network

_ERROR, _ANSWER = b"E", b"A"  # the first byte of a worker's reply
_WANT_PREDICTION, _WANT_JSON = b"P", b"J"  # the first byte of a request: what the worker answers with


def _pack(answer: predict.Prediction) -> bytes:
    """A Prediction of an upload as bytes: b"E" + the error, or b"A" + a pickle of raw arrays and notes
    (a pickled Prediction costs ~4x more: numpy arrays and the dataclass go through __reduce__)."""
    if answer.error is not None:
        return _ERROR + answer.error.encode()
    fields = (answer.scores.dtype.str, answer.scores.tobytes(), answer.image.dtype.str, answer.image.shape,
              answer.image.tobytes(), answer.warnings, answer.verdict.looks_like_a_digit, answer.verdict.doubt)
    return _ANSWER + pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(reply: bytes) -> predict.Prediction:
    if reply[:1] == _ERROR:
        return predict.Prediction(None, error=reply[1:].decode())
    scores_type, scores, image_type, shape, image, warnings, looks, doubt = pickle.loads(reply[1:])
    return predict.Prediction(None, scores=np.frombuffer(scores, scores_type),
                              image=np.frombuffer(image, image_type).reshape(shape), warnings=warnings,
                              verdict=Verdict(looks, doubt))


def _work(connection: Connection, network: Network) -> None:
    """A worker's life: answer each upload on its pipe until the server closes it.
    Ctrl-C is left to the server (which stops the workers itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()  # no page faults for each upload's arrays (memory.py)
    while True:
        try:
            request = connection.recv_bytes()
        except (EOFError, OSError):  # the server closed the pipe, or died
            return
        connection.send_bytes(_answer(network, request))


def _answer(network: Network, request: bytes) -> bytes:
    """A worker's reply to one request: _WANT_JSON or _WANT_PREDICTION, then the upload's bytes."""
    answer = predict.predict_bytes(network, request[1:])
    if request[:1] != _WANT_JSON:
        return _pack(answer)
    if answer.error is not None:
        return _ERROR + answer.error.encode()
    return _ANSWER + answer.to_json(with_input=True).encode()


class PredictionPool:
    """``predict(body)``: the Prediction for an upload, from a worker process when they are running."""

    def __init__(self, network: Network, processes: int = 2):
        self.network = network
        self.processes = processes
        self._workers: dict[Connection, multiprocessing.Process] = {}  # every live worker, by its pipe
        self._idle: list[Connection] = []  # those waiting for an upload, the last used last
        self._changed = threading.Condition()  # guards both; notified when a worker is free, lost or closed
        self._ready = threading.Event()
        self._closed = False
        if processes > 0:
            threading.Thread(target=self._start, name="digitnet-workers", daemon=True).start()

    def _start(self) -> None:
        # One BLAS thread per worker (a 30-unit layer on one image needs no more, and threads cost
        # memory), set before the child imports numpy: spawn copies os.environ.
        previous = {name: os.environ.get(name) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        started: dict[Connection, multiprocessing.Process] = {}
        try:
            context = multiprocessing.get_context("spawn")
            for _ in range(self.processes):
                ours, theirs = context.Pipe(duplex=True)
                process = context.Process(target=_work, args=(theirs, self.network), name="digitnet-predict",
                                          daemon=True)
                process.start()
                theirs.close()  # the worker's end is the worker's: its death is our EOF
                started[ours] = process
            # Each worker imports numpy and the pipeline once; wait until all answer (an empty upload each).
            for connection in started:
                connection.send_bytes(_WANT_PREDICTION)
            for connection in started:
                connection.recv_bytes()
            with self._changed:
                if not self._closed:
                    self._workers, started = started, {}
                    self._idle = list(self._workers)
                    self._changed.notify_all()
        except Exception as e:  # noqa: BLE001 -- no workers: the server answers by itself
            if not self._closed:
                print(f"digitnet serve: no worker processes, answering in one process ({e!r})", file=sys.stderr)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _stop(started)  # failed, or closed while starting
            self._ready.set()

    @property
    def running(self) -> bool:
        """True once the worker processes answer and while any is alive (False: predictions run in this process)."""
        return bool(self._workers)

    def wait_until_started(self, timeout: float | None = None) -> bool:
        """Wait until the workers have started (or failed to); True when running."""
        self._ready.wait(timeout)
        return self.running

    def predict(self, body: bytes) -> predict.Prediction:
        """The Prediction for ``body``, from an idle worker (waiting for one while all are busy),
        or computed in this thread when there are none."""
        reply = self._ask(_WANT_PREDICTION + body)
        return predict.predict_bytes(self.network, body) if reply is None else _unpack(reply)

    def predict_json(self, body: bytes) -> tuple[bytes | None, str | None]:
        """(``Prediction.to_json(with_input=True)`` as bytes, None) for ``body``, or (None, the
        error) when it cannot be used: /api/predict's answer, written by a worker when there is one."""
        reply = self._ask(_WANT_JSON + body)
        if reply is None:
            answer = predict.predict_bytes(self.network, body)
            return (None, answer.error) if answer.error is not None else (answer.to_json(with_input=True).encode(), None)
        if reply[:1] == _ERROR:
            return None, reply[1:].decode()
        return reply[1:], None

    def _ask(self, request: bytes) -> bytes | None:
        """An idle worker's reply to ``request`` (waiting for one while all are busy); None when
        there are no workers (then the caller computes the answer itself)."""
        while True:
            with self._changed:
                while self._workers and not self._idle:
                    self._changed.wait()
                if not self._workers:
                    break
                connection = self._idle.pop()
            try:
                connection.send_bytes(request)
                reply = connection.recv_bytes()
            except (EOFError, OSError):  # a worker died (killed, out of memory): carry on without it
                self._lost(connection)
                continue
            self._give_back(connection)
            return reply
        return None

    def _give_back(self, connection: Connection) -> None:
        with self._changed:
            if connection in self._workers:
                self._idle.append(connection)
                self._changed.notify()
                return
        connection.close()  # the pool was closed meanwhile: this worker sees EOF and ends

    def _lost(self, connection: Connection) -> None:
        with self._changed:
            process = self._workers.pop(connection, None)
            left = len(self._workers)
            self._changed.notify_all()
        if process is not None:
            print(f"digitnet serve: a worker process died; {left or 'no'} worker(s) left"
                  + ("" if left else ", answering in one process from now on"), file=sys.stderr)
            _stop({connection: process})

    def close(self, timeout: float = 30.0) -> None:
        """Stop the workers (idempotent); when they are still starting, wait for that first.
        A request in flight gets its answer; those waiting for a worker are answered in this process."""
        with self._changed:
            self._closed = True
        if self.processes > 0:
            self._ready.wait(timeout)
        with self._changed:
            workers, self._workers = self._workers, {}
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        for connection in idle:
            connection.close()
        _stop(workers, close=False)  # the busy ones are closed by their request, when answered


def _stop(workers: dict[Connection, multiprocessing.Process], timeout: float = 10.0, close: bool = True) -> None:
    """Close each pipe (the worker's recv sees EOF and it returns), then wait; terminate the stubborn."""
    if close:
        for connection in workers:
            connection.close()
    for process in workers.values():
        process.join(timeout)
        if process.is_alive():
            process.terminate()
            process.join(timeout)
