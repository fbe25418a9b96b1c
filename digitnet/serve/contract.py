"""The API's contract: an OpenAPI 3.1 document of every route, built from the code (GET /api/openapi.json).

``openapi_document(routes)`` takes the server's route table (the paths and the methods each answers:
``app.API_ROUTES``) and puts beside each operation what this module declares once per route: its query
fields, its request body, and every answer it can give (status, content type, JSON Schema).  The
training settings' schema is not written here: ``settings_schema`` derives it from the settings table
(``digitnet.settings.settings_of(TrainConfig)``: type, default, choices, min/max and whether each bound
is exclusive) and from the page's caps (``serve.training.MAX_*``), so a new setting appears in the
document the moment it is declared.

Answers every route may give, besides its own: 400 (a malformed request: its Content-Length, its
body), 403 (a Host that is not a loopback name while the server is bound to loopback, or a POST from
another Origin), and for routes that read a body 413 (over its limit, refused before reading) and,
for uploads, 411 (no Content-Length).  Every error is JSON, ``{"error": "..."}``.  A 500 is never
documented: schemathesis (tests/test_serve_contract.py, ``make fuzz-api``) counts one as a failure.

``ContractError`` when the route table has an /api/ route this module declares nothing for (or the
other way round): a new route cannot ship without its shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from digitnet.config import TrainConfig
from digitnet.serve import training as train_api
from digitnet.settings import default_of, settings_of

OPENAPI_VERSION = "3.1.0"
ERROR_STATUSES = {
    304: "Not modified: the ETag sent in If-None-Match is the atlas's",
    400: "The request, its body or a field is not usable (the message says which and why)",
    403: "Refused: a Host that is not this server's loopback name, or a POST from another web site's page",
    404: "Not here: no such model, or training from the page is not available on this server",
    409: "Not now: a conflict with what the server is doing (a run going, a test running, no epoch saved yet, "
         "a session taught from another model)",
    411: "The upload has no Content-Length",
    413: "The body is over its limit (--max-upload for pictures, 64 KB for JSON), refused before reading it",
    501: "The onnx package is not installed on the server",
    503: "No model is served yet (train one, or choose one with POST /api/models/select), or no MNIST test files",
    507: "The runs folder cannot be written",
}


class ContractError(Exception):
    """The route table and the declared shapes disagree (a route without its shapes, or shapes without a route)."""


# -- the shapes, declared once ----------------------------------------------------------------------

def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **properties) -> dict:
    return {"type": "object", "required": required, "properties": properties}


NUMBER, INTEGER, STRING, BOOLEAN = {"type": "number"}, {"type": "integer"}, {"type": "string"}, {"type": "boolean"}
NULLABLE = {"number": {"type": ["number", "null"]}, "integer": {"type": ["integer", "null"]},
            "string": {"type": ["string", "null"]}}
NUMBERS = {"type": "array", "items": NUMBER}
PIXEL = {"type": "number", "minimum": 0, "maximum": 1}
IMAGE_28 = {"type": "array", "minItems": 28, "maxItems": 28,
            "items": {"type": "array", "minItems": 28, "maxItems": 28, "items": PIXEL}}
BINARY = {"type": "string", "format": "binary"}
TEXTS = {"type": "array", "items": STRING}

SCHEMAS: dict[str, dict] = {
    "Error": _obj(["error"], error=STRING),
    "Prediction": _obj(
        ["digit", "confidence", "scores", "looks_like_a_digit", "input"],
        digit={"type": "integer", "minimum": 0, "maximum": 9}, confidence=NUMBER,
        scores={**NUMBERS, "minItems": 10, "maxItems": 10}, looks_like_a_digit=BOOLEAN, doubt=STRING,
        warnings=TEXTS, input=IMAGE_28,
        model={"const": "training", "description": "present with ?model=training: the run's newest epoch answered"}),
    "Model": _obj(
        ["file"], file=NULLABLE["string"], max_upload=INTEGER, format=STRING,
        sizes={"type": "array", "items": INTEGER, "minItems": 2}, activation=STRING, cost=STRING, dtype=STRING,
        weights={"enum": ["best", "last"]}, epoch=NULLABLE["number"], epochs=NULLABLE["number"],
        learning_rate=NULLABLE["number"], batch_size=NULLABLE["number"], test_accuracy=NULLABLE["number"],
        test_data=BOOLEAN),
    "Evaluation": _obj(["split", "accuracy", "correct", "total", "seconds"], split={"const": "test"},
                       accuracy={"type": "number", "minimum": 0, "maximum": 1}, correct=INTEGER, total=INTEGER,
                       seconds=NUMBER),
    "ModelSummary": _obj(
        ["id", "name", "bytes", "modified", "served", "training"],
        id=STRING, name=STRING, bytes=INTEGER, modified=NUMBER, served=BOOLEAN, training=BOOLEAN,
        error={**STRING, "description": "present when the file is not a usable model: why"},
        sizes={"type": "array", "items": INTEGER}, cost=STRING, epochs_completed=NULLABLE["integer"],
        epochs=NULLABLE["integer"], test_accuracy=NULLABLE["number"], best_validation_accuracy=NULLABLE["number"],
        settings={"type": "object"}, resumable=BOOLEAN, complete=BOOLEAN,
        taught={"type": ["object", "null"], "properties": {"from": STRING, "steps": NULLABLE["integer"],
                                                           "labels": {"type": "array", "items": INTEGER}}}),
    "Models": _obj(["models", "skipped", "served", "runs_dir", "onnx"],
                   models={"type": "array", "items": _ref("ModelSummary")},
                   skipped={"type": "array", "description": "files left out of the listing, and why",
                            "items": _obj(["file", "reason"], file=STRING, reason=STRING)},
                   served=NULLABLE["string"], runs_dir=STRING, onnx=BOOLEAN),
    "TrainingStatus": _obj(
        ["state", "running", "run", "message", "epochs_completed", "history", "version"],
        state={"enum": ["idle", "starting", "running", "stopping", "finished", "interrupted", "diverged",
                        "write_failed", "killed", "failed"]},
        running=BOOLEAN, run=NULLABLE["string"], message=STRING, settings={"type": ["object", "null"]},
        epochs=NULLABLE["integer"], epochs_completed=INTEGER, start_epoch=INTEGER,
        history={"type": "array", "items": {"type": "object"}}, progress={"type": ["object", "null"]},
        started=NULLABLE["number"], finished=NULLABLE["number"], test_accuracy=NULLABLE["number"],
        resumable=BOOLEAN, command=NULLABLE["string"], saved_epoch=NULLABLE["integer"],
        untrained={"type": ["object", "null"]}, peeks={"type": "array", "items": {"type": "object"}},
        guessing=STRING, version=INTEGER, elapsed=NULLABLE["number"], eta=NULLABLE["number"]),
    "TrainingSettings": _obj(
        ["settings", "main", "recipes", "caps", "available"],
        settings={"type": "array", "items": _obj(["name", "option", "help", "type", "default"],
                                                 name=STRING, option=STRING, help=STRING, type=STRING)},
        main=TEXTS,
        recipes={"type": "array", "items": _obj(["name", "command", "settings"], name=STRING, command=STRING,
                                                settings={"type": "object"})},
        page={"type": "object"}, slow={"type": "object"}, caps={"type": "object"}, available=BOOLEAN),
    "Explanation": _obj(
        ["digit", "answer", "outputs", "z", "bias", "off", "contributions", "layers", "saliency", "input", "notes"],
        digit=INTEGER, answer=INTEGER, outputs=NUMBERS, z=NUMBER, bias=NUMBER,
        off={"type": "array", "items": {"type": "array", "items": INTEGER, "minItems": 2, "maxItems": 2}},
        contributions={"type": "array", "items": _obj(["unit", "activation", "contribution"], unit=INTEGER,
                                                      activation=NUMBER, contribution=NUMBER)},
        layers={"type": "array", "items": _obj(["layer", "z", "activation"], layer=INTEGER, z=NUMBERS,
                                               activation=NUMBERS)},
        saliency=NUMBERS, input=IMAGE_28, notes=TEXTS),
    "TaughtStep": _obj(
        ["label", "eta", "before", "after", "cost_before", "cost_after", "bp1", "bp2", "bp3", "bp4", "session",
         "steps", "input", "notes"],
        label=INTEGER, eta=NUMBER, before=_obj(["outputs", "answer"], outputs=NUMBERS, answer=INTEGER),
        after=_obj(["outputs", "answer"], outputs=NUMBERS, answer=INTEGER), cost_before=NUMBER, cost_after=NUMBER,
        bp1=_obj(["delta", "norm"], delta=NUMBERS, norm=NUMBER),
        bp2={"type": "array", "items": _obj(["layer", "norm", "delta"], layer=INTEGER, norm=NUMBER, delta=NUMBERS)},
        bp3=NUMBERS, bp4=NUMBERS, session=STRING, steps=INTEGER, input=IMAGE_28, notes=TEXTS),
    "Kept": _obj(["name", "id", "steps"], name=STRING, id=STRING, steps=INTEGER),
    "Forgotten": _obj(["forgotten"], forgotten=BOOLEAN),
    "SelectModel": {**_obj(["id"], id={**STRING, "description": 'an "id" from GET /api/models'},
                           weights={"enum": ["best", "last"], "default": "best"}), "additionalProperties": False},
    "Session": {**_obj(["session"], session={"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}),
                "additionalProperties": False},
    "OpenAPI": _obj(["openapi", "info", "paths"], openapi=STRING, info={"type": "object"}, paths={"type": "object"}),
}

JSON, PNG, EVENTS, FILE = "application/json", "image/png", "text/event-stream", "application/octet-stream"
SESSION = ("session", "a taught network's id from POST /api/teach (absent: the served model)")


@dataclass(frozen=True)
class Operation:
    """One route's shapes: what it reads and every answer it gives besides the shared ones."""

    summary: str
    ok: tuple[int, str, dict]                      # (status, content type, schema) of its answer
    errors: tuple[int, ...] = ()                   # its own error statuses (JSON {"error"})
    body: str | None = None                        # "image" (a picture file's bytes), "empty" (an optional empty
    #                                                body, over its limit 413) or the name of a JSON body's schema
    query: tuple[tuple[str, str], ...] = ()        # (name, description); every field is optional text
    headers: dict[str, str] = field(default_factory=dict)  # answer headers the client reads (name -> description)


ATLAS_HEADERS = {"X-Atlas-Columns": "tiles per row in the atlas"}
OPERATIONS: dict[str, Operation] = {
    "/api/predict": Operation(
        "The digit in a picture: the same preprocessing and numbers as `predict --json`, plus the 28x28 input",
        (200, JSON, _ref("Prediction")), (409, 503), body="image",
        query=(("model", '"training": answer with the newest epoch of the run going instead of the served model'),)),
    "/api/evaluate": Operation("Accuracy of the served model on the MNIST test split (one test at a time)",
                               (200, JSON, _ref("Evaluation")), (409, 503), body="empty"),
    "/api/model": Operation("The served model: architecture, training, recorded accuracy (file null: none yet)",
                            (200, JSON, _ref("Model"))),
    "/api/models": Operation("The models in --runs-dir and the working directory; files that cannot be read are "
                             'named under "skipped"', (200, JSON, _ref("Models"))),
    "/api/models/select": Operation("Serve another model from the listing", (200, JSON, _ref("Model")),
                                    (404,), body="SelectModel"),
    "/api/models/download": Operation(
        "A listed model's file as it is, or its best weights as ONNX", (200, FILE, BINARY),
        (404, 501), query=(("id", 'the model\'s "id" from GET /api/models'),
                           ("format", '"onnx" for the best weights as ONNX; absent for the file itself'))),
    "/api/train": Operation("The training run's status (the page's polling fallback)",
                            (200, JSON, _ref("TrainingStatus")), (404,)),
    "/api/train/settings": Operation("Every training setting (option, help, default, range), the recipes and the caps",
                                     (200, JSON, _ref("TrainingSettings"))),
    "/api/train/start": Operation("Start a `digitnet train` run with these settings (one run at a time)",
                                  (202, JSON, _ref("TrainingStatus")), (404, 409, 507), body="StartTraining"),
    "/api/train/stop": Operation("Stop the run as Ctrl-C would: every complete epoch is kept",
                                 (200, JSON, _ref("TrainingStatus")), (404, 409), body="empty"),
    "/api/train/resume": Operation("Continue a listed run (to its own plan, or to epochs)",
                                   (202, JSON, _ref("TrainingStatus")), (404, 409), body="ResumeTraining"),
    "/api/train/events": Operation("Server-Sent Events: the training status now, then each time it changes "
                                   '("data: {TrainingStatus}"; comment lines keep an idle stream alive)',
                                   (200, EVENTS, STRING), (404,)),
    "/api/train/weights.png": Operation(
        "The first layer's weights of the run's latest saved epoch, as a grey atlas",
        (200, PNG, BINARY), (404, 409),
        headers={**ATLAS_HEADERS, "X-Epoch": "the epoch the weights are from"}),
    "/api/explain": Operation(
        "Why the network answers what it does: outputs, contributions, saliency (as `explain --json`)",
        (200, JSON, _ref("Explanation")), (409, 503), body="image",
        query=(("digit", "the digit 0-9 to explain (absent: the answer)"),
               ("off", "hidden units switched off, as --off takes them (1:4,1:7)"), SESSION)),
    "/api/explain/weights.png": Operation(
        "The first layer's weights of the served model (or a session's copy), as a grey atlas",
        (200, PNG, BINARY), (304, 409, 503), query=(SESSION,),
        headers={**ATLAS_HEADERS, "ETag": "the atlas's tag, for If-None-Match"}),
    "/api/teach": Operation(
        "One step of gradient descent on the picture with its label, on a copy (BP1-BP4 shown)",
        (200, JSON, _ref("TaughtStep")), (409, 503, 507), body="image",
        query=(("label", "the digit 0-9 the drawing shows (required)"),
               ("eta", "the step's learning rate (default: the model's --eta)"), SESSION)),
    "/api/teach/keep": Operation("Write a session's taught copy into the runs folder", (200, JSON, _ref("Kept")),
                                 (409, 503, 507), body="Session"),
    "/api/teach/forget": Operation("Drop a session's taught copy", (200, JSON, _ref("Forgotten")), body="Session"),
    "/api/openapi.json": Operation("This document", (200, JSON, _ref("OpenAPI"))),
}


# -- the training settings, derived from the settings table ------------------------------------------

def settings_schema(names=None) -> dict:
    """JSON Schema of ``{"settings": {...}}``'s object: one property per ``TrainConfig`` setting (or those
    in ``names``), from its ``Setting``.  A value may also be the text a user types after the option
    (``"100,30"``, ``"3.0"``): the server parses it as the command line does (``Setting.from_text``)."""
    specs = settings_of(TrainConfig)
    properties = {}
    for name, spec in specs.items():
        if names is not None and name not in names:
            continue
        typed = _typed(name, spec)
        default = default_of(TrainConfig, name)
        described = {"description": f"{spec.option}: {spec.help}", "x-option": spec.option,
                     "default": list(default) if isinstance(default, tuple) else default}
        properties[name] = ({**typed, **described} if spec.kind is str else
                            {"anyOf": [typed, {"type": "string", "description": "as typed after the option"}],
                             **described})
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _typed(name: str, spec) -> dict:
    """One setting's value as JSON Schema: type, choices, bounds (exclusive where the table says so)."""
    if spec.kind is bool:
        return {"type": "boolean"}
    if spec.kind is str:
        return {"type": "string", "enum": list(spec.choices)} if spec.choices else {"type": "string"}
    bounds = {}
    if spec.min is not None:
        bounds["exclusiveMinimum" if spec.min_open else "minimum"] = _plain(spec.min)
    if spec.max is not None:
        bounds["exclusiveMaximum" if spec.max_open else "maximum"] = _plain(spec.max)
    if spec.kind is tuple:  # a list of whole numbers (--hidden): each within the range, and the page's caps
        item = {"type": "integer", **bounds}
        if name == "hidden_sizes":
            item["maximum"] = min(item.get("maximum", math.inf), train_api.MAX_HIDDEN_UNITS)
            return {"type": "array", "items": item, "minItems": 1, "maxItems": train_api.MAX_HIDDEN_LAYERS}
        return {"type": "array", "items": item, "minItems": 1}
    typed = {"type": "integer" if spec.kind is int else "number", **bounds}
    if name == "epochs":
        typed["maximum"] = min(typed.get("maximum", math.inf), train_api.MAX_EPOCHS)
    return typed


def _plain(x: float):
    return int(x) if float(x).is_integer() else x


def _body_schemas() -> dict[str, dict]:
    """The JSON bodies built from the settings table: a start's settings, a resume's changes."""
    resumable = [name for name, spec in settings_of(TrainConfig).items() if spec.resume_may_change and name != "epochs"]
    epochs = {"anyOf": [_typed("epochs", settings_of(TrainConfig)["epochs"]), {"type": "null"}],
              "description": "the new planned total (absent: the run's own plan)"}
    return {
        "TrainSettings": settings_schema(),
        "StartTraining": {"type": "object", "properties": {"settings": _ref("TrainSettings")},
                          "additionalProperties": False},
        "ResumeTraining": {"type": "object", "required": ["id"], "additionalProperties": False, "properties": {
            "id": {**STRING, "description": 'a run\'s "id" from GET /api/models'}, "epochs": epochs,
            "settings": {**settings_schema(resumable), "description": "the settings a resumed run may change"}}},
    }


# -- the document -------------------------------------------------------------------------------------

def route_table(routes) -> dict[str, tuple[str, ...]]:
    """path -> methods, from the app's route table: objects with ``path`` and ``methods`` (app.API_ROUTES),
    (path, methods, ...) tuples, or a mapping path -> methods (or path -> {method: handler})."""
    if isinstance(routes, dict):
        return {path: tuple(methods) for path, methods in routes.items()}
    table = {}
    for route in routes:
        path, methods = (route.path, route.methods) if hasattr(route, "path") else (route[0], route[1])
        table[path] = (methods,) if isinstance(methods, str) else tuple(methods)
    return table


def openapi_document(routes, static: dict[str, str] | None = None, title: str = "digitnet serve",
                     version: str | None = None) -> dict:
    """The OpenAPI 3.1 document of ``routes`` (see ``route_table``) and the page's files (``static``: path ->
    content type, answered to GET and HEAD); ContractError when a route under /api/ has no declared shapes
    or a declared route is missing from the table."""
    table = route_table(routes)
    api = {path for path in table if path.startswith("/api/")}
    undeclared, unrouted = sorted(api - set(OPERATIONS)), sorted(set(OPERATIONS) - api - {"/api/openapi.json"})
    if undeclared or unrouted:
        raise ContractError(f"routes without shapes in contract.py: {undeclared}; shapes without a route: {unrouted}")
    for route in routes if not isinstance(routes, dict) else ():
        _check_route(route)
    summaries = {route.path: route.summary for route in routes if getattr(route, "summary", "")} \
        if not isinstance(routes, dict) else {}
    paths = {path: {method.lower(): _operation(path, method, OPERATIONS[path], summaries.get(path))
                    for method in methods}
             for path, methods in table.items() if path in OPERATIONS}
    for path, content_type in (static or {}).items():
        paths[path] = {method: _static(path, method, content_type) for method in ("get", "head")}
    if version is None:
        from digitnet import __version__ as version
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": str(version),
                 "description": "The page's API: draw a digit, watch the network answer, train one from the page."},
        "paths": paths,
        "components": {"schemas": {**SCHEMAS, **_body_schemas()}},
    }


def _check_route(route) -> None:
    """ContractError when the route table says a route reads other query fields or another kind of body
    than its shapes here (``app.ApiRoute``'s ``query`` and ``body``: "image", "json" or None)."""
    op = OPERATIONS.get(getattr(route, "path", None))
    if op is None:
        return
    if hasattr(route, "query") and set(route.query) != {name for name, _ in op.query}:
        raise ContractError(f"{route.path}: the route reads {sorted(route.query)}, contract.py declares "
                            f"{sorted(name for name, _ in op.query)}")
    if hasattr(route, "body"):
        declared = {"image": "image", None: None, "empty": None}.get(op.body, "json")
        if route.body != declared:
            raise ContractError(f"{route.path}: the route reads a {route.body} body, contract.py declares {op.body}")


def _operation(path: str, method: str, op: Operation, summary: str | None = None) -> dict:
    status, content_type, schema = op.ok
    ok = {"description": op.summary, "content": {content_type: {"schema": schema}}}
    if op.headers:
        ok["headers"] = {name: {"description": what, "schema": STRING} for name, what in op.headers.items()}
    errors = {400, 403, *op.errors}
    reads_body = op.body not in (None, "empty")
    if op.body is not None:
        errors.add(413)
    if op.body == "image":
        errors.add(411)
    responses = {str(status): ok}
    for code in sorted(errors):
        if code == 304:
            responses["304"] = {"description": ERROR_STATUSES[304]}
        else:
            responses[str(code)] = {"description": ERROR_STATUSES[code], "content": {JSON: {"schema": _ref("Error")}}}
    operation = {"operationId": _operation_id(path, method), "summary": summary or op.summary,
                 "description": op.summary, "responses": responses}
    if op.query:
        operation["parameters"] = [{"name": name, "in": "query", "required": False, "description": what,
                                    "schema": STRING} for name, what in op.query]
    if reads_body and op.body == "image":
        operation["requestBody"] = {"required": True, "description": "the bytes of an image file (PNG, JPEG, ...)",
                                    "content": {media: {"schema": BINARY}
                                                for media in ("image/png", "image/jpeg", FILE)}}
    elif reads_body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(op.body)}}}
    return operation


def _static(path: str, method: str, content_type: str) -> dict:
    return {"operationId": _operation_id(path, method), "summary": f"The page's file {path}",
            "responses": {"200": {"description": "the file", "content": {content_type: {"schema": STRING}}},
                          "403": {"description": ERROR_STATUSES[403], "content": {JSON: {"schema": _ref("Error")}}}}}


def _operation_id(path: str, method: str) -> str:
    name = "".join(c if c.isalnum() else "_" for c in path.strip("/").removeprefix("api/")) or "page"
    return f"{method.lower()}_{name}"
