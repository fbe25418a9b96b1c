"""The routes of `digitnet serve` on Starlette: ``API_ROUTES``, each declared once, and the page's files.

Every route is one ``ApiRoute`` in ``API_ROUTES`` (path, methods, what it reads and answers); the
router, the 405s' Allow and the OpenAPI document (contract.py) are all built from that table.
The endpoints only read the request and call api.py, models.py, training.py and inside.py; what
blocks (a prediction waiting for its worker, explain, evaluate, loading a model, starting a run)
runs in the thread pool, never on the event loop.  Around them (``Guards``):

- while bound to a loopback address only requests whose Host is a loopback name are answered
  (a DNS-rebinding page gets 403), and a POST whose Origin is present and not the server's own gets
  403; no CORS header is ever sent, so another web site open in the same browser cannot drive it;
- the security headers (CSP, nosniff, ...) go on every answer;
- every error is JSON, ``{"error": "..."}``; an unforeseen exception is logged on stderr with its
  traceback and answered with a bare 500, and the server goes on;
- static files come from a fixed table built at start-up (``load_static``): the client never
  chooses a path.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from digitnet.serve import guards
from digitnet.serve import training as train_api
from digitnet.serve.api import ApiError, Recogniser, predict_image
from digitnet.serve.events import TrainingEvents
from digitnet.serve.inside import Inside
from digitnet.serve.models import Models
from digitnet.serve.protocol import SECURITY_HEADERS

# The page's files are every file in digitnet/serve/static with one of these suffixes, each at
# /NAME, except index.html, which is the page itself at /.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules: browsers insist on a JavaScript type
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SECURITY = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


@dataclass
class Served:
    """What one server's endpoints work on (``app.state.served``)."""

    models: Models
    training: "train_api.TrainingRuns | None"
    inside: Inside
    static: dict[str, tuple[bytes, str]]
    max_upload: int
    check_host: bool
    events: TrainingEvents | None = None
    openapi: bytes | None = None  # the document, built on first request
    upload_threads: int = 4
    _uploads: anyio.CapacityLimiter | None = field(default=None, init=False)  # made on the loop, by the first upload

    async def on_upload(self, work: Callable, *args):
        """``work(*args)`` for an upload route (predict, explain, teach), in the thread pool but at
        most ``upload_threads`` at once: a class's predictions, each holding a thread while it waits
        for a worker process, queue among themselves instead of taking the threads (anyio's 40)
        every other route needs -- the health check stays answered however busy the class is."""
        if self._uploads is None:
            self._uploads = anyio.CapacityLimiter(self.upload_threads)
        return await anyio.to_thread.run_sync(work, *args, limiter=self._uploads)

    @property
    def recogniser(self) -> Recogniser:
        """The model served now (the page may switch it); 503 while there is none."""
        recogniser = self.models.recogniser
        if recogniser is None:
            raise ApiError(503, "no model is loaded yet: train one on the page (or POST /api/train/start), "
                                "or choose one with POST /api/models/select")
        return recogniser

    @property
    def runs(self) -> "train_api.TrainingRuns":
        if self.training is None:
            raise ApiError(404, "training from the page is not available on this server")
        return self.training


def served(request: Request) -> Served:
    return request.app.state.served


def answer(status: int, payload: dict, close: bool = False) -> Response:
    """A JSON answer (never cached)."""
    headers = {"Cache-Control": "no-store"}
    if close:
        headers["Connection"] = "close"
    return Response(json.dumps(payload, separators=(",", ":")).encode(), status, headers, "application/json")


def blob(body: bytes, content_type: str, cache: str, extra: dict | None = None, status: int = 200) -> Response:
    return Response(body, status, {"Cache-Control": cache, **(extra or {})}, content_type)


# -- the routes ---------------------------------------------------------------------------------

async def predict(request: Request) -> Response:
    """Read an image file's bytes: the digit, confidence, scores and the 28x28 input (``predict --json``).
    ?model=training answers with the newest epoch of the run going instead of the served model."""
    s = served(request)
    body = await guards.read_body(request, s.max_upload)
    if guards.query_of(request).get("model") == "training":
        network = await s.on_upload(s.models.training_network)
        result = await s.on_upload(predict_image, network, body)
        return answer(200, dict(result, model="training"))
    text = await s.on_upload(s.recogniser.predict_json, body)
    return Response(text, 200, {"Cache-Control": "no-store"}, "application/json")  # as ``answer`` sends


async def evaluate(request: Request) -> Response:
    """Measure the served model's accuracy on the MNIST test split (one test at a time: 409)."""
    await guards.skip_body(request)
    return answer(200, await run_in_threadpool(served(request).recogniser.evaluate))


async def model(request: Request) -> Response:
    """The served model: architecture, cost, training, recorded accuracy ({"file": null} before one)."""
    s = served(request)
    recogniser = s.models.recogniser
    if recogniser is None:  # the page shows "no model yet" and offers to train one
        return answer(200, {"file": None, "max_upload": s.max_upload})
    return answer(200, dict(await run_in_threadpool(recogniser.model_info), max_upload=s.max_upload))


async def models(request: Request) -> Response:
    """The checkpoints the page can switch between (working folder and --runs-dir)."""
    return answer(200, await run_in_threadpool(served(request).models.listing))


async def select(request: Request) -> Response:
    """Serve another model from the listing: {"id": ..., "weights": "best" | "last"}."""
    body = await guards.read_json(request)
    return answer(200, await run_in_threadpool(served(request).models.select, body.get("id"),
                                               body.get("weights", "best")))


def _file_of(s: Served, query: dict) -> tuple[bytes, str]:
    if query.get("format") == "onnx":
        return s.models.onnx_of(query.get("id"))
    if "format" in query:
        raise ApiError(400, f"format must be onnx (or absent, for the file itself), got {query['format'][:40]!r}")
    file = s.models.path_of(query.get("id"))
    try:
        return file.read_bytes(), file.name
    except OSError as e:
        raise ApiError(404, f"cannot read {file.name}: {e.strerror or e}") from None


async def download(request: Request) -> Response:
    """A model's file as it is (?id=ID), or with &format=onnx its best weights as ONNX."""
    data, name = await run_in_threadpool(_file_of, served(request), guards.query_of(request))
    return blob(data, "application/octet-stream", "no-store",
                {"Content-Disposition": f'attachment; filename="{_safe_filename(name)}"'})


async def _inside_on_upload(request: Request, look: Callable) -> Response:
    """``look(recogniser, upload, query)`` (an Inside method), in the thread pool."""
    s = served(request)
    body = await guards.read_body(request, s.max_upload)
    return answer(200, await s.on_upload(look, s.recogniser, body, guards.query_of(request)))


async def explain(request: Request) -> Response:
    """Look inside the network for an upload: layer activations, contributions, saliency (?digit, ?off)."""
    return await _inside_on_upload(request, served(request).inside.explain)


async def explain_weights(request: Request) -> Response:
    """The first layer's weights as one PNG atlas (ETag; 304 when unchanged)."""
    s = served(request)
    atlas = await run_in_threadpool(s.inside.atlas, s.recogniser, guards.query_of(request))
    same = request.headers.get("if-none-match") == atlas.etag
    return blob(b"" if same else atlas.png, "image/png", "no-cache",
                {"ETag": atlas.etag, "X-Atlas-Columns": str(atlas.columns)}, 304 if same else 200)


async def teach(request: Request) -> Response:
    """One step of gradient descent on the upload with ?label, on a session's copy of the network."""
    return await _inside_on_upload(request, served(request).inside.teach)


async def teach_keep(request: Request) -> Response:
    """Save a taught session's network as a new model in --runs-dir."""
    s = served(request)
    body = await guards.read_json(request)
    return answer(200, await run_in_threadpool(s.inside.keep, s.recogniser, body))


async def teach_forget(request: Request) -> Response:
    """Drop a taught session: the served model answers again."""
    s = served(request)
    body = await guards.read_json(request)
    return answer(200, await run_in_threadpool(s.inside.forget, body))


async def train_status(request: Request) -> Response:
    """The training run's status (the event stream's fallback)."""
    return answer(200, await run_in_threadpool(served(request).runs.status))


async def train_settings(request: Request) -> Response:
    """The training settings the page's form offers: the settings table, caps and recipes."""
    return answer(200, dict(train_api.describe(), available=served(request).training is not None))


async def train_start(request: Request) -> Response:
    """Start a training run from {"settings": {...}} (one at a time: 409)."""
    s = served(request)
    runs = s.runs
    config = train_api.config_from_json(await guards.read_json(request))
    return answer(202, await run_in_threadpool(runs.start, config))


async def train_stop(request: Request) -> Response:
    """Stop the run going, as Ctrl-C would: its last complete epoch is kept."""
    await guards.skip_body(request)
    return answer(200, await run_in_threadpool(served(request).runs.stop))


async def train_resume(request: Request) -> Response:
    """Continue a saved run: {"id": ..., "epochs": ..., "settings": {...}}."""
    s = served(request)
    runs = s.runs
    body = await guards.read_json(request)

    def resume():
        return runs.resume(s.models.path_of(body.get("id")), body.get("epochs"), body.get("settings"))

    return answer(202, await run_in_threadpool(resume))


async def train_weights(request: Request) -> Response:
    """The first-layer weight atlas of the run's latest saved epoch (404 before one is saved)."""
    png, columns, epoch = await run_in_threadpool(served(request).runs.weights_png)
    return blob(png, "image/png", "no-store", {"X-Atlas-Columns": str(columns), "X-Epoch": str(epoch)})


async def train_events(request: Request) -> Response:
    """Server-Sent Events: the training status now, then each time it changes (an epoch ends, a
    progress line arrives, the run stops), so a page opened mid-run picks it up at once."""
    s = served(request)
    _ = s.runs  # a 404 without training
    headers = {"Cache-Control": "no-store", "Connection": "close"}
    return StreamingResponse(s.events.stream(), 200, headers, "text/event-stream; charset=utf-8")


async def openapi(request: Request) -> Response:
    """This API's OpenAPI 3.1 document."""
    s = served(request)
    if s.openapi is None:
        from digitnet.serve import contract

        document = contract.openapi_document(API_ROUTES, {path: kind for path, (_, kind) in s.static.items()})
        s.openapi = json.dumps(document, separators=(",", ":")).encode()
    return blob(s.openapi, "application/json", "no-cache")


async def static_file(request: Request) -> Response:
    body, content_type = served(request).static[request.url.path]
    return blob(body, content_type, "no-cache")


@dataclass(frozen=True)
class ApiRoute:
    """One route: what the router, the 405s and the OpenAPI document (contract.py) are built from.
    ``body``: "image" (an image file's bytes), "json" (a JSON object) or None (none is read);
    ``answers``: "json", "png", "events" (text/event-stream) or "file" (application/octet-stream)."""

    path: str
    methods: tuple[str, ...]
    endpoint: Callable
    body: str | None = None
    query: tuple[str, ...] = ()
    answers: str = "json"
    summary: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "summary", (self.endpoint.__doc__ or "").strip().splitlines()[0])

    @property
    def name(self) -> str:
        return self.endpoint.__name__


GET, POST = ("GET",), ("POST",)
GET_HEAD = ("GET", "HEAD")
API_ROUTES = [
    ApiRoute("/api/predict", POST, predict, body="image", query=("model",)),
    ApiRoute("/api/evaluate", POST, evaluate),
    ApiRoute("/api/model", GET_HEAD, model),
    ApiRoute("/api/models", GET, models),
    ApiRoute("/api/models/select", POST, select, body="json"),
    ApiRoute("/api/models/download", GET, download, query=("id", "format"), answers="file"),
    ApiRoute("/api/train", GET, train_status),
    ApiRoute("/api/train/settings", GET, train_settings),
    ApiRoute("/api/train/start", POST, train_start, body="json"),
    ApiRoute("/api/train/stop", POST, train_stop),
    ApiRoute("/api/train/resume", POST, train_resume, body="json"),
    ApiRoute("/api/train/events", GET, train_events, answers="events"),
    ApiRoute("/api/train/weights.png", GET_HEAD, train_weights, answers="png"),
    ApiRoute("/api/explain", POST, explain, body="image", query=("session", "digit", "off")),
    ApiRoute("/api/explain/weights.png", GET_HEAD, explain_weights, query=("session",), answers="png"),
    ApiRoute("/api/teach", POST, teach, body="image", query=("session", "label", "eta")),
    ApiRoute("/api/teach/keep", POST, teach_keep, body="json"),
    ApiRoute("/api/teach/forget", POST, teach_forget, body="json"),
    ApiRoute("/api/openapi.json", GET, openapi),
]


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


def _safe_filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:200]


# -- around every route -------------------------------------------------------------------------

def _guarded(route_methods: tuple[str, ...], endpoint: Callable) -> Callable:
    """The endpoint with the Origin check on POSTs and every error as JSON.  A request whose body
    was not read gets Connection: close, so the rest of it is never taken for the next request."""

    async def guarded(request: Request) -> Response:
        try:
            if request.method == "POST":
                guards.check_origin(request)
            return await endpoint(request)
        except ApiError as e:
            # 411: bytes a client sends after headers without a length would be read as a next request
            return answer(e.status, {"error": e.message}, close=e.status == 411 or guards.body_is_unread(request))
        except ClientDisconnect:
            return answer(400, {"error": "the client went away"}, close=True)  # nobody reads it
        except Exception:  # noqa: BLE001 -- the server must answer and stay up whatever happens
            return internal_error(request)

    guarded.__name__ = endpoint.__name__
    guarded.__doc__ = endpoint.__doc__
    return guarded


def internal_error(request: Request) -> Response:
    """An unforeseen exception: its traceback on stderr, a bare JSON 500 to the client."""
    print(f"digitnet serve: error while answering {request.method} {request.url.path!r}:", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)
    return answer(500, {"error": "internal server error (details are in the server's log)"}, close=True)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """The router's 404 and 405, as JSON."""
    path = request.url.path[:200]
    if exc.status_code == 405:
        allow = next((", ".join(r.methods) for r in API_ROUTES if r.path == request.url.path), "GET, HEAD")
        response = answer(405, {"error": f"{request.method} is not allowed on {path} (use {allow})"},
                          close=guards.body_is_unread(request))
        response.headers["Allow"] = allow
        return response
    if exc.status_code == 404:
        return answer(404, {"error": f"no such page or API route: {path}"}, close=guards.body_is_unread(request))
    return answer(exc.status_code, {"error": str(exc.detail)}, close=True)


def _route(path: str, methods: tuple[str, ...], endpoint: Callable) -> Route:
    route = Route(path, _guarded(methods, endpoint), methods=list(methods), name=endpoint.__name__)
    route.methods = set(methods)  # exactly these: Starlette would add HEAD to every GET (an endless stream's too)
    return route


class Guards:
    """The outermost layer: the Host check, the security headers on every answer, and a JSON 500
    for anything that escapes the routes."""

    def __init__(self, app: Starlette, check_host: bool):
        self.app = app
        self.check_host = check_host

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_secured(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = dict(message, headers=[*message.get("headers", []), *_SECURITY])
            await send(message)

        try:
            if self.check_host:
                guards.check_host(Request(scope))
            await self.app(scope, receive, send_secured)
        except ApiError as e:  # the Host check
            await answer(e.status, {"error": e.message}, close=True)(scope, receive, send_secured)
        except ClientDisconnect:
            pass
        except Exception:  # noqa: BLE001 -- an error outside the routes (a stream breaking): answer if it can
            response = internal_error(Request(scope))
            if not started:
                await response(scope, receive, send_secured)


def create_app(models: Models, training: "train_api.TrainingRuns | None", max_upload: int, check_host: bool,
               inside: Inside | None = None) -> Guards:
    """The ASGI app of one server: API_ROUTES and the page's files, behind the guards."""
    static = load_static()
    routes = [_route(r.path, r.methods, r.endpoint) for r in API_ROUTES]
    routes += [_route(path, GET_HEAD, static_file) for path in static]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.router.redirect_slashes = False  # /api/model/ is a 404, as any unknown path, not a redirect
    app.state.served = Served(models, training, inside or Inside(models.runs_dir), static, max_upload, check_host,
                              TrainingEvents(training) if training is not None else None,
                              upload_threads=2 * models.workers + 4)  # 2 a worker process (one computing, one
    # handing over) and 4 for what runs in this process (--workers 0, ?model=training)
    return Guards(app, check_host)
