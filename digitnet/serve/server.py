"""Running `digitnet serve`: the app (app.py) on uvicorn, with the connection guards of protocol.py.

``make_server`` binds the listening socket at once (so a port in use is a one-line ``ServerError``
before anything is printed) and returns a ``Serving``, not yet answering; ``serve_until_stopped``
answers in this thread until Ctrl-C or SIGTERM; ``start_in_thread`` answers in a thread (the tests).
uvicorn parses requests (httptools), keeps connections alive and answers every connection on one
event loop: an idle or slow connection costs a socket, never a thread, so there is no connection cap
and no 503 however many a class of browsers keeps open.  A signal stops accepting, ends the event
streams, lets the requests being answered finish (at most GRACE seconds), then returns.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading

import uvicorn
from starlette.concurrency import run_in_threadpool

from digitnet.serve import training as train_api
from digitnet.serve.api import Recogniser
from digitnet.serve.app import Guards, create_app
from digitnet.serve.guards import DEFAULT_MAX_UPLOAD, REQUEST_TIMEOUT, is_loopback
from digitnet.serve.models import Models
from digitnet.serve.protocol import KEEPALIVE, protocol_for, quiet_uvicorn_logs

LISTEN_BACKLOG = 1024   # connections the kernel queues while the loop accepts (a class arriving at once)
GRACE = 3.0             # seconds the requests being answered get to finish once stopped
LOOP = "auto"           # uvloop when installed (uvicorn[standard]), else asyncio


class ServerError(Exception):
    """The server cannot start (port in use, unknown host): one line for the user."""


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, leaving the signals to ``serve_until_stopped`` (uvicorn's own handlers re-raise
    the signal after stopping, which would kill the process before a training run is stopped) and
    ending the event streams first when it stops (they would otherwise hold the shutdown)."""

    def __init__(self, config: uvicorn.Config, on_stop):
        super().__init__(config)
        self._on_stop = on_stop

    def capture_signals(self):
        return contextlib.nullcontext()

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        await run_in_threadpool(int)  # the thread pool's first use imports anyio's backend: 75 ms, not the first client's

    async def shutdown(self, sockets=None) -> None:
        self._on_stop()
        await super().shutdown(sockets)


class Serving:
    """One server: its listening socket, its app and the uvicorn server that answers on it."""

    def __init__(self, app: Guards, sock: socket.socket, host: str, timeout: float, keepalive: float = KEEPALIVE):
        self.app = app
        self.socket = sock
        self.host = host
        self.port = sock.getsockname()[1]
        self.url = f"http://{url_host(host)}:{self.port}"  # the base of every route (no trailing /)
        config = uvicorn.Config(app, http=protocol_for(timeout), ws="none", lifespan="off", interface="asgi3",
                                log_config=None, log_level="warning", access_log=False, proxy_headers=False,
                                timeout_keep_alive=keepalive, timeout_graceful_shutdown=GRACE,
                                server_header=False, headers=[("server", "digitnet")], backlog=LISTEN_BACKLOG,
                                loop=LOOP)
        self.uvicorn = _Uvicorn(config, self._end_streams)
        self._thread: threading.Thread | None = None

    @property
    def served(self):
        """What the endpoints work on (models, training, inside): app.Served."""
        return self.app.app.state.served

    @property
    def models(self) -> Models:
        return self.served.models

    @property
    def inside(self):
        return self.served.inside

    def _end_streams(self) -> None:
        if self.served.events is not None:
            self.served.events.close()

    def serve(self) -> None:
        """Answer requests in this thread until ``stop()`` (or a signal, see serve_until_stopped)."""
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self.close()

    def start_in_thread(self) -> "Serving":
        self._thread = threading.Thread(target=self.serve, name="digitnet-serve", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop answering (from another thread) and wait for it."""
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Close the listening socket (serve() does on its way out)."""
        self.socket.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except socket.gaierror as e:
        sock.close()
        raise ServerError(f"cannot listen on {host}: unknown host ({e.strerror or e})") from None
    except OverflowError:
        sock.close()
        raise ServerError(f"cannot listen on port {port}: ports go from 0 to 65535") from None
    except OSError as e:
        sock.close()
        raise ServerError(f"cannot listen on {url_host(host)}:{port}: {e.strerror or e}") from None
    return sock


def make_server(recogniser: Recogniser | None, host: str = "127.0.0.1", port: int = 8000,
                max_upload: int = DEFAULT_MAX_UPLOAD, timeout: float = REQUEST_TIMEOUT,
                models: Models | None = None, training: "train_api.TrainingRuns | None" = None,
                keepalive: float = KEEPALIVE) -> Serving:
    """A listening server (not yet answering); ServerError when the address cannot be used.
    ``models`` (the list the page switches between) defaults to just ``recogniser``; without
    ``training`` the /api/train routes answer 404.  ``timeout``: seconds a client has to send a
    request's headers and body (plus a second per 64 KiB of body); ``keepalive``: seconds an idle
    connection stays open."""
    if models is None:
        models = Models(recogniser, runs_dir="runs", training=training,
                        data_dir=recogniser.data_dir if recogniser is not None else None)
    app = create_app(models, training, max_upload, check_host=is_loopback(host))
    quiet_uvicorn_logs()
    return Serving(app, _listen(host, port), host, timeout, keepalive)


def start_in_thread(recogniser: Recogniser | None, **options) -> Serving:
    """A server on 127.0.0.1 and a free port, answering in a thread (``.url``, ``.port``, ``.stop()``)."""
    return make_server(recogniser, options.pop("host", "127.0.0.1"), options.pop("port", 0), **options).start_in_thread()


def serve_until_stopped(server: Serving) -> int:
    """Answer requests until Ctrl-C or SIGTERM, then close the listening socket; return the signal
    that stopped it (SIGINT or SIGTERM).  A signal ignored when it starts (``digitnet serve &``
    ignores SIGINT) stays ignored; a second Ctrl-C stops at once, without waiting for requests."""
    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        server.uvicorn.should_exit = True
        if len(received) > 1 and signum == signal.SIGINT:
            server.uvicorn.force_exit = True

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) != signal.SIG_IGN:
                previous[signum] = signal.signal(signum, stop)
        server.serve()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return int(received[0]) if received else int(signal.SIGINT)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def url(server: Serving, host: str) -> str:
    """The page's address, with the port actually bound (port 0 picks a free one)."""
    return f"http://{url_host(host)}:{server.port}/"
