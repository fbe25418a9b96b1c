"""The API contract: /api/openapi.json lists exactly the app's routes, its training settings follow the
settings table, and every answer a live server gives to schemathesis's requests matches it.

One server on 127.0.0.1 for the module (``serving.start_in_thread``), serving a small model, with bad
files in its folders (the listing must name them, not fail).  Its training runs are a stand-in for
`digitnet train --progress json` (``FAKE_TRAINER``: the events a run prints, and a copy of the model
as its checkpoint) so that schemathesis's starts cost milliseconds, not real runs; the real child is
tested in tests/test_serve_train.py.  The schemathesis run is derandomized: the same requests every time.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from helpers import write_mnist
from digitnet import checkpoint
from digitnet.config import TrainConfig
from digitnet.network import Network
from digitnet.serve import api, contract
from digitnet.serve import server as serving
from digitnet.serve.app import API_ROUTES
from digitnet.serve.models import Models
from digitnet.serve.training import TrainingRuns
from digitnet.settings import setting, settings_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from fuzz_api import first_event, fuzz, tour  # noqa: E402
from test_serve_api import drawing  # noqa: E402

EXAMPLES = 10  # per operation: 12 operations take input, 9 none; with the tour about 200 requests in all

FAKE_TRAINER = r'''
import json, os, shutil, signal, sys, time
args = sys.argv[sys.argv.index("train") + 1:]
out = args[args.index("--out") + 1]
say = lambda **event: print(json.dumps(event), flush=True)
signal.signal(signal.SIGTERM, lambda *_: (say(event="end", outcome="interrupted", saved_epoch=1), sys.exit(0)))
say(event="start", epochs=2, epochs_completed=0, history=[], settings={}, untrained=None, peeks=[])
shutil.copy(os.environ["FAKE_MODEL"], out + ".tmp")
os.replace(out + ".tmp", out)
say(event="epoch", epoch=1, accuracy=0.5)
time.sleep(0.2)
say(event="end", outcome="finished", saved_epoch=1, test_accuracy=0.5)
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    runs, work = root / "runs", root / "work"
    runs.mkdir()
    work.mkdir()
    data_dir = write_mnist(root / "mnist", n_train=200, n_test=100)
    model = checkpoint.save(work / "model.npz", Network([784, 12, 10], rng=np.random.default_rng(5)),
                            {"epochs_completed": 1, "hyperparameters": {"learning_rate": 3.0, "batch_size": 10}})
    (runs / "junk.npz").write_bytes(b"PK\x03\x04" + os.urandom(100))
    (work / "folder.npz").mkdir()
    (work / "broken.json").write_text('{"sizes": [784')
    trainer = root / "fake-python"
    (root / "fake_trainer.py").write_text(FAKE_TRAINER)
    trainer.write_text(f'#!/bin/sh\nFAKE_MODEL="{model}" exec "{sys.executable}" "{root / "fake_trainer.py"}" "$@"\n')
    trainer.chmod(0o755)
    training = TrainingRuns(runs, data_dir, log=io.StringIO(), python=str(trainer))
    recogniser = api.Recogniser(checkpoint.load(model), str(model), "best", data_dir)
    models = Models(recogniser, runs, work, data_dir, training)
    running = serving.start_in_thread(recogniser, models=models, training=training, max_upload=1024 * 1024)
    yield running
    training.shutdown()
    running.stop()


@pytest.fixture(scope="module")
def document(server):
    answer = requests.get(server.url + "/api/openapi.json", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    return answer.json()


def test_the_document_lists_exactly_the_apps_routes(server, document):
    routes = contract.route_table(API_ROUTES)
    api_paths = {path: ops for path, ops in document["paths"].items() if path.startswith("/api/")}
    assert {path: sorted(ops) for path, ops in api_paths.items()} == \
        {path: sorted(m.lower() for m in methods) for path, methods in routes.items()}
    static = {path: kind for path, (_, kind) in server.served.static.items()}
    assert {path for path in document["paths"] if not path.startswith("/api/")} == set(static) and "/" in static
    assert document["openapi"] == "3.1.0"
    assert document == json.loads(json.dumps(contract.openapi_document(API_ROUTES, static)))
    for path, methods in routes.items():  # and the server answers no other method on them
        other = "PUT" if "POST" in methods else "POST"
        answer = requests.request(other, server.url + path, timeout=10)
        assert answer.status_code == 405 and set(answer.headers["Allow"].replace(" ", "").split(",")) == set(methods)


def test_a_route_without_shapes_or_shapes_without_a_route_is_an_error():
    with pytest.raises(contract.ContractError, match="/api/new"):
        contract.openapi_document({**contract.route_table(API_ROUTES), "/api/new": ("GET",)})
    with pytest.raises(contract.ContractError, match="/api/teach"):
        contract.openapi_document({p: m for p, m in contract.route_table(API_ROUTES).items() if p != "/api/teach"})
    changed = [dataclasses.replace(r, query=("model", "extra")) if r.path == "/api/predict" else r for r in API_ROUTES]
    with pytest.raises(contract.ContractError, match="extra"):
        contract.openapi_document(changed)


def test_the_settings_schema_follows_the_settings_table(document):
    properties = document["components"]["schemas"]["TrainSettings"]["properties"]
    specs = settings_of(TrainConfig)
    assert list(properties) == list(specs)
    for name, spec in specs.items():
        schema = properties[name]
        typed = schema if spec.kind is str else schema["anyOf"][0]
        assert schema["x-option"] == spec.option and spec.help in schema["description"]
        if spec.kind is tuple:
            typed = typed["items"]
        assert typed["type"] == {int: "integer", float: "number", str: "string", bool: "boolean",
                                 tuple: "integer"}[spec.kind], name
        if spec.choices:
            assert typed["enum"] == list(spec.choices)
        if spec.min is not None:
            assert typed["exclusiveMinimum" if spec.min_open else "minimum"] == spec.min, name
            assert ("minimum" if spec.min_open else "exclusiveMinimum") not in typed
        if spec.max is not None:  # the page's caps (epochs, hidden units) may only lower a maximum
            bound = typed.get("exclusiveMaximum" if spec.max_open else "maximum")
            assert bound is not None and bound <= spec.max, name
    assert properties["learning_rate"]["anyOf"][0] == {"type": "number", "exclusiveMinimum": 0}
    assert properties["epochs"]["anyOf"][0]["maximum"] == 1000


def test_a_new_setting_appears_in_the_document(monkeypatch):
    @dataclasses.dataclass
    class Wider(TrainConfig):
        warmup: float = setting(0.5, "--warmup", "Warm-up fraction.", min=0, max=1, max_open=True)

    monkeypatch.setattr(contract, "TrainConfig", Wider)
    schema = contract.openapi_document(API_ROUTES)["components"]["schemas"]["TrainSettings"]["properties"]["warmup"]
    assert schema["anyOf"][0] == {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
    assert schema["default"] == 0.5 and schema["x-option"] == "--warmup"


def test_every_answer_to_schemathesis_matches_the_document(server, document):
    findings, calls = fuzz(server.url, document, EXAMPLES)
    assert not findings, "\n".join(map(str, findings[:20]))
    generated = [f"{m.upper()} {p}" for p, ops in document["paths"].items() if p.startswith("/api/") for m in ops]
    assert sorted(calls) == sorted(set(generated) - {"GET /api/train/events"})  # the stream: the test below
    assert 100 <= sum(sum(answered.values()) for answered in calls.values()) <= 600, calls
    assert calls["POST /api/train/start"].get(202), calls  # valid settings too, not only refusals (the 200s of
    # the picture routes come from the tour below: a generated body is never a picture)


def test_what_the_page_does_is_answered_as_the_document_says(server, document):
    findings, calls = tour(server.url, document, drawing("seven"))
    assert not findings, "\n".join(map(str, findings[:20]))
    for label in ("POST /api/predict", "POST /api/explain", "POST /api/teach", "POST /api/teach/keep",
                  "POST /api/teach/forget", "GET /api/explain/weights.png", "POST /api/models/select",
                  "GET /api/models/download", "GET /api/train/weights.png", "POST /api/train/stop",
                  "POST /api/evaluate"):
        assert calls[label].get(200), (label, calls[label])
    assert calls["POST /api/train/start"] == {202: 1, 400: 3}, calls  # the run, then the issue's three inputs
    assert calls["GET /api/explain/weights.png"].get(304), calls
    assert calls["GET /"] == calls["HEAD /app.js"] == {200: 1}


def test_the_event_stream_matches_the_document(server, document):
    assert first_event(server.url, document) == []


def test_the_listing_names_the_bad_files_over_http(server):
    listing = requests.get(server.url + "/api/models", timeout=10).json()
    assert {"runs/junk.npz", "folder.npz", "broken.json"} <= {m["id"] for m in listing["models"]} | \
        {s["file"] for s in listing["skipped"]}
    assert "model.npz" in {m["id"] for m in listing["models"] if "error" not in m}
