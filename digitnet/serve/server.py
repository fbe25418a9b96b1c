"""The HTTP side of `digitnet serve`: the standard library's ThreadingHTTPServer answering the
API's routes (``API_ROUTES``) and the page's files.  A local server is still a server, so:

- it binds 127.0.0.1 unless told otherwise, and while bound to a loopback address it answers only
  requests whose Host is a loopback name (a DNS-rebinding page gets 403);
- a POST whose Origin is present and not the server's own gets 403, and no CORS header is ever
  sent, so another web site open in the same browser cannot drive it;
- bodies are refused from their Content-Length (413) before a byte is read, a body shorter than
  its Content-Length or a client that stalls runs into the socket timeout, and every thread
  serves one connection, so one slow client holds up nobody else;
- static files come from a fixed table built at start-up (``load_static``): the client never
  chooses a path;
- every error is JSON, ``{"error": "..."}``; an unforeseen exception is logged on stderr with its
  traceback and answered with a bare 500.
"""

from __future__ import annotations

import http.server
import json
import signal
import socket
import sys
import threading
import traceback
from importlib import resources
from urllib.parse import urlsplit

from digitnet import signals
from digitnet.serve import training as train_api
from digitnet.serve.guards import DEFAULT_MAX_UPLOAD, REQUEST_TIMEOUT, GuardedHandler, host_name, is_loopback
from digitnet.serve.api import ApiError, Recogniser, predict_image
from digitnet.serve.inside import Inside
from digitnet.serve.models import Models

EVENTS_KEEPALIVE = 15.0    # seconds between comment lines on an idle event stream (proxies, dead clients)
LISTEN_BACKLOG = 128    # connections the kernel queues while the server accepts (64 clients at once)
MAX_CONNECTIONS = 256   # connections served at once (a thread each); more get 503 at once

# The page's files are every file in digitnet/serve/static with one of these suffixes, each at
# /NAME, except index.html, which is the page itself at /.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules: browsers insist on a JavaScript type
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Route -> method -> the Handler method that answers it.
API_ROUTES = {
    "/api/predict": {"POST": "_predict"},
    "/api/evaluate": {"POST": "_evaluate"},
    "/api/model": {"GET": "_model", "HEAD": "_model"},
    "/api/models": {"GET": "_models"},
    "/api/models/select": {"POST": "_select"},
    "/api/models/download": {"GET": "_download"},
    "/api/train": {"GET": "_train_status"},
    "/api/train/settings": {"GET": "_train_settings"},
    "/api/train/start": {"POST": "_train_start"},
    "/api/train/stop": {"POST": "_train_stop"},
    "/api/train/resume": {"POST": "_train_resume"},
    "/api/train/events": {"GET": "_train_events"},
    "/api/train/weights.png": {"GET": "_train_weights", "HEAD": "_train_weights"},
    "/api/explain": {"POST": "_explain"},
    "/api/explain/weights.png": {"GET": "_explain_weights", "HEAD": "_explain_weights"},
    "/api/teach": {"POST": "_teach"},
    "/api/teach/keep": {"POST": "_teach_keep"},
    "/api/teach/forget": {"POST": "_teach_forget"},
}
# Everything the page needs comes from this server; images it shows are drawn into canvases.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


_BUSY_BODY = b'{"error":"too many connections at once; try again in a moment"}'
BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class ServerError(Exception):
    """The server cannot start (port in use, unknown host): one line for the user."""


def load_static() -> dict[str, tuple[bytes, str]]:
    """URL path -> (body, content type) for the page's files, read once from the package (so they
    work from any install, offline)."""
    static = {}
    for file in (resources.files("digitnet.serve") / "static").iterdir():
        suffix = "." + file.name.rpartition(".")[2]
        if file.is_file() and suffix in CONTENT_TYPES:
            route = "/" if file.name == "index.html" else f"/{file.name}"
            static[route] = (file.read_bytes(), CONTENT_TYPES[suffix])
    return static


class Handler(GuardedHandler):
    """One connection; the routes below.  Class attributes are set per server by ``make_server``."""

    server_version = "digitnet"
    protocol_version = "HTTP/1.1"  # keep-alive: a page's requests reuse one connection
    # Answers are small and written as headers then body: with Nagle's algorithm the body waits for
    # the client's delayed ACK, adding about 40 ms to every keep-alive round trip (measured: p50 88 ms
    # with it, see scripts/bench_serve.py).
    disable_nagle_algorithm = True
    error_content_type = "application/json"

    models: Models
    training: "train_api.TrainingRuns | None" = None
    inside: Inside  # the taught networks' sessions
    static: dict[str, tuple[bytes, str]]
    routes: dict[str, dict[str, str]]  # API_ROUTES and the static files: built once per server
    check_host: bool = True

    def version_string(self) -> str:
        return self.server_version

    @property
    def recogniser(self) -> Recogniser:
        """The model served now (the page may switch it); 503 while there is none."""
        recogniser = self.models.recogniser
        if recogniser is None:
            raise ApiError(503, "no model is loaded yet: train one on the page (or POST /api/train/start), "
                                "or choose one with POST /api/models/select")
        return recogniser

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        method = self.command
        self._body_read = False
        try:
            self._route(method)
        except ApiError as e:
            if not self._body_read and self.headers.get("Content-Length", "0").strip() != "0":
                self.close_connection = True  # an unread body must not be taken for the next request
            self._send_json(e.status, {"error": e.message})
        except (socket.timeout, ConnectionError):
            self.close_connection = True  # the client is gone or too slow: nobody to answer
        except Exception:  # noqa: BLE001 -- the server must answer and stay up whatever happens
            print(f"digitnet serve: error while answering {method} {self.path!r}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self._send_json(500, {"error": "internal server error (details are in the server's log)"})
            except OSError:
                pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def _route(self, method: str) -> None:
        if self.check_host and not is_loopback(host_name(self.headers.get("Host", "localhost"))):
            raise ApiError(403, "this server answers only requests addressed to localhost")
        path = urlsplit(self.path).path
        if path not in self.routes:
            raise ApiError(404, f"no such page or API route: {path[:200]}")
        handlers = self.routes[path]
        if method not in handlers:
            self._allow = ", ".join(handlers)
            raise ApiError(405, f"{method} is not allowed on {path} (use {self._allow})")
        if method == "POST":
            self._check_origin()
        getattr(self, handlers[method])(path)

    # -- routes -------------------------------------------------------------------------------

    def _predict(self, path: str) -> None:
        """?model=training answers with the newest epoch of the run going; else the served model."""
        body = self._read_body()
        if self._query().get("model") == "training":
            self._send_json(200, dict(predict_image(self.models.training_network(), body), model="training"))
        else:
            self._send_json(200, self.recogniser.predict(body))

    def _evaluate(self, path: str) -> None:
        self._read_body(allow_empty=True)
        self._send_json(200, self.recogniser.evaluate())

    def _model(self, path: str) -> None:
        recogniser = self.models.recogniser
        if recogniser is None:  # the page shows "no model yet" and offers to train one
            self._send_json(200, {"file": None, "max_upload": self.max_upload})
            return
        self._send_json(200, dict(recogniser.model_info(), max_upload=self.max_upload))

    def _models(self, path: str) -> None:
        self._send_json(200, self.models.listing())

    def _select(self, path: str) -> None:
        body = self._read_json()
        self._send_json(200, self.models.select(body.get("id"), body.get("weights", "best")))

    def _download(self, path: str) -> None:
        """The model's file as it is, or with ?format=onnx its best weights as ONNX (Models.onnx_of)."""
        query = self._query()
        if query.get("format") == "onnx":
            data, name = self.models.onnx_of(query.get("id"))
        elif "format" in query:
            raise ApiError(400, f"format must be onnx (or absent, for the file itself), got {query['format'][:40]!r}")
        else:
            file = self.models.path_of(query.get("id"))
            try:
                data, name = file.read_bytes(), file.name
            except OSError as e:
                raise ApiError(404, f"cannot read {file.name}: {e.strerror or e}") from None
        self._send(200, data, "application/octet-stream", cache="no-store",
                   extra={"Content-Disposition": f'attachment; filename="{_safe_filename(name)}"'})

    # -- inside the network: inside.py answers (explain, the weight atlas, taught sessions) -----

    def _explain(self, path: str) -> None:
        body = self._read_body()
        self._send_json(200, self.inside.explain(self.recogniser, body, self._query()))

    def _explain_weights(self, path: str) -> None:
        atlas = self.inside.atlas(self.recogniser, self._query())
        same = self.headers.get("If-None-Match") == atlas.etag
        self._send(304 if same else 200, b"" if same else atlas.png, "image/png", cache="no-cache",
                   extra={"ETag": atlas.etag, "X-Atlas-Columns": str(atlas.columns)})

    def _teach(self, path: str) -> None:
        body = self._read_body()
        self._send_json(200, self.inside.teach(self.recogniser, body, self._query()))

    def _teach_keep(self, path: str) -> None:
        self._send_json(200, self.inside.keep(self.recogniser, self._read_json()))

    def _teach_forget(self, path: str) -> None:
        self._send_json(200, self.inside.forget(self._read_json()))

    # -- training -------------------------------------------------------------------------------

    def _runs(self) -> "train_api.TrainingRuns":
        if self.training is None:
            raise ApiError(404, "training from the page is not available on this server")
        return self.training

    def _train_status(self, path: str) -> None:
        self._send_json(200, self._runs().status())

    def _train_settings(self, path: str) -> None:
        self._send_json(200, dict(train_api.describe(), available=self.training is not None))

    def _train_start(self, path: str) -> None:
        runs = self._runs()
        config = train_api.config_from_json(self._read_json())
        self._send_json(202, runs.start(config))

    def _train_stop(self, path: str) -> None:
        self._read_body(allow_empty=True)
        self._send_json(200, self._runs().stop())

    def _train_resume(self, path: str) -> None:
        runs = self._runs()
        body = self._read_json()
        self._send_json(202, runs.resume(self.models.path_of(body.get("id")), body.get("epochs"), body.get("settings")))

    def _train_weights(self, path: str) -> None:
        """The first-layer weight atlas of the run's latest saved epoch (404 JSON before one is saved)."""
        png, columns, epoch = self._runs().weights_png()
        self._send(200, png, "image/png", cache="no-store",
                   extra={"X-Atlas-Columns": str(columns), "X-Epoch": str(epoch)})

    def _train_events(self, path: str) -> None:
        """Server-Sent Events: the training status now, then each time it changes (an epoch ends, a
        progress line arrives, the run stops), so a page opened mid-run picks it up at once."""
        runs = self._runs()
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        status = runs.status()
        seen = status["version"]
        try:
            while not runs.closed:
                if status is None:
                    self.wfile.write(b": still here\n\n")
                else:
                    self.wfile.write(b"data: " + json.dumps(status, separators=(",", ":")).encode() + b"\n\n")
                self.wfile.flush()
                status = runs.wait_for_change(seen, EVENTS_KEEPALIVE)
                if status is not None:
                    seen = status["version"]
        except (OSError, ValueError):
            pass  # the page went away

    def _static(self, path: str) -> None:
        body, content_type = self.static[path]
        self._send(200, body, content_type, cache="no-cache")

    # -- answers ------------------------------------------------------------------------------

    def _send_json(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode(), "application/json",
                   cache="no-store")

    def _send(self, status: int, body: bytes, content_type: str, cache: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        if status == 405:
            self.send_header("Allow", getattr(self, "_allow", "GET"))
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code, message=None, explain=None):
        """Errors the standard library finds itself (malformed request lines, oversized headers) as JSON."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # a request line it could not parse: still send a status line
            self.request_version = "HTTP/1.0"
        try:
            self._send_json(code, {"error": message or self.responses.get(code, ("error",))[0]})
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 -- the base class's signature
        """Quiet for answered requests; errors are logged by log_error."""

    def log_error(self, format, *args):  # noqa: A002
        if format.startswith("Request timed out"):
            return  # an idle keep-alive connection closing after REQUEST_TIMEOUT: routine, not an error
        sys.stderr.write(f"digitnet serve: {self.address_string()}: {format % args}\n")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for idle keep-alive connections
    request_queue_size = LISTEN_BACKLOG
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args, **kwargs):
        self._open_connections = threading.BoundedSemaphore(self.max_connections)
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        """One thread per connection, up to max_connections; beyond that a 503 and close, at once."""
        if not self._open_connections.acquire(blocking=False):
            try:
                request.sendall(BUSY_RESPONSE)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._open_connections.release()

    def handle_error(self, request, client_address):
        """A connection that broke outside a request (reset, garbage): log one line, keep serving."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, socket.timeout, TimeoutError)):
            return
        print(f"digitnet serve: connection from {client_address[0]} failed: {error!r}", file=sys.stderr)


class Server6(Server):
    address_family = socket.AF_INET6


def _safe_filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:200]


def make_server(recogniser: Recogniser | None, host: str = "127.0.0.1", port: int = 8000,
                max_upload: int = DEFAULT_MAX_UPLOAD, timeout: float = REQUEST_TIMEOUT,
                models: Models | None = None, training: "train_api.TrainingRuns | None" = None) -> Server:
    """A listening server (not yet serving); ServerError when the address cannot be used.
    ``models`` (the list the page switches between) defaults to just ``recogniser``; without
    ``training`` the /api/train routes answer 404."""
    static = load_static()
    routes = {**API_ROUTES, **{path: {"GET": "_static", "HEAD": "_static"} for path in static}}
    if models is None:
        models = Models(recogniser, runs_dir="runs", training=training,
                        data_dir=recogniser.data_dir if recogniser is not None else None)
    handler = type("BoundHandler", (Handler,), {
        "models": models, "training": training, "static": static, "routes": routes, "max_upload": max_upload,
        "check_host": is_loopback(host), "timeout": timeout, "inside": Inside(models.runs_dir),
    })
    server_class = Server6 if ":" in host else Server
    try:
        return server_class((host, port), handler)
    except socket.gaierror as e:
        raise ServerError(f"cannot listen on {host}: unknown host ({e.strerror or e})") from None
    except OverflowError:
        raise ServerError(f"cannot listen on port {port}: ports go from 0 to 65535") from None
    except OSError as e:
        raise ServerError(f"cannot listen on {url_host(host)}:{port}: {e.strerror or e}") from None


def serve_until_stopped(server: Server) -> int:
    """Answer requests until Ctrl-C or SIGTERM, then close the listening socket; return the
    signal that stopped it (SIGINT or SIGTERM)."""
    try:
        with signals.stop_requests((signal.SIGINT, signal.SIGTERM)):
            server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt as stop:
        return signals.signal_number(stop)
    finally:
        server.server_close()
    return int(signal.SIGINT)  # serve_forever returns only when shut down: as if stopped by Ctrl-C


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def url(server: Server, host: str) -> str:
    """The page's address, with the port actually bound (port 0 picks a free one)."""
    return f"http://{url_host(host)}:{server.server_address[1]}/"
