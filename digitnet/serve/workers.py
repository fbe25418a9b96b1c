"""Predictions in worker processes, so that concurrent requests use every core.

A prediction is mostly numpy and Pillow on small arrays, and much of that time the
interpreter holds the GIL: request threads of one process take turns, and eight clients
got fewer answers per second than one.  A few worker processes (each with its own copy
of the network) run the same ``predict.predict_bytes`` side by side; the request threads
only hand over the upload's bytes and wait for the Prediction.

The workers are started by a background thread after the server has started (they are
fresh interpreters, ``spawn``: nothing of the server's threads or sockets is inherited,
and each costs about 35 MB), so the first requests are answered in the server process
itself, as are all of them when ``processes`` is 0 or if the workers die.  The answers
are the same either way: the same function runs on the same bytes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from digitnet import predict
from digitnet.network import Network

_network: Network | None = None  # in a worker: its copy of the served network


def _start_worker(network: Network) -> None:
    """A worker's set-up: the network, Ctrl-C left to the server (which stops the workers itself),
    one BLAS thread (a 30-unit layer on one image needs no more, and threads cost memory)."""
    global _network
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _network = network


def _predict_in_worker(body: bytes) -> predict.Prediction:
    return predict.predict_bytes(_network, body)


def _ready() -> int:
    return os.getpid()


class PredictionPool:
    """``predict(body)``: the Prediction for an upload, from a worker process when they are running."""

    def __init__(self, network: Network, processes: int = 2):
        self.network = network
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        if processes > 0:
            threading.Thread(target=self._start, name="digitnet-workers", daemon=True).start()

    def _start(self) -> None:
        # One BLAS thread per worker, set before the child imports numpy (spawn copies os.environ).
        previous = {name: os.environ.get(name) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        executor = None
        try:
            executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_start_worker, initargs=(self.network,))
            # Each worker imports numpy and the pipeline once; wait until all have (one job each).
            for future in [executor.submit(_ready) for _ in range(self.processes)]:
                future.result()
            with self._lock:
                if not self._closed:
                    self._executor, executor = executor, None
        except Exception as e:  # noqa: BLE001 -- no workers: the server answers by itself
            if not self._closed:
                print(f"digitnet serve: no worker processes, answering in one process ({e!r})", file=sys.stderr)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if executor is not None:  # failed, or closed while starting
                executor.shutdown(wait=True, cancel_futures=True)
            self._ready.set()

    @property
    def running(self) -> bool:
        """True once the worker processes answer (False: predictions run in this process)."""
        return self._executor is not None

    def wait_until_started(self, timeout: float | None = None) -> bool:
        """Wait until the workers have started (or failed to); True when running."""
        self._ready.wait(timeout)
        return self.running

    def predict(self, body: bytes) -> predict.Prediction:
        executor = self._executor
        if executor is not None:
            try:
                return executor.submit(_predict_in_worker, body).result()
            except BrokenProcessPool:  # a worker died (killed, out of memory): carry on without them
                with self._lock:
                    if self._executor is executor:
                        self._executor = None
                        print("digitnet serve: a worker process died; answering in one process from now on",
                              file=sys.stderr)
            except RuntimeError:  # shut down while this request waited
                pass
        return predict.predict_bytes(self.network, body)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the workers (idempotent); when they are still starting, wait for that first."""
        with self._lock:
            self._closed = True
        if self.processes > 0:
            self._ready.wait(timeout)
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
