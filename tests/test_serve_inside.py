"""`digitnet serve`'s inside-the-network routes: /api/explain, its weight atlas, /api/teach and its sessions.

Every answer is checked against ``digitnet.inside`` on the same preprocessed input (the one /api/predict
feeds the network), to the last digit; the server runs in a thread on 127.0.0.1, port 0.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading

import numpy as np
import pytest
import requests
from PIL import Image

from helpers import run_cli, write_mnist
from digitnet import checkpoint, inside
from digitnet.network import Network
from digitnet.serve import api
from digitnet.serve import inside as serve_inside
from digitnet.serve.models import Models
from test_serve_api import MB, Running, drawing

SEEN = ("input", "notes")            # what /api/explain adds to Explanation.to_dict()
SESSION = ("session", "steps", "input", "notes")   # what /api/teach adds to TaughtStep.to_dict()


def save_model(path, sizes, seed, cost="cross-entropy", learning_rate=0.5):
    metadata = {"epochs_completed": 3, "test_accuracy": 0.9,
                "hyperparameters": {"learning_rate": learning_rate, "batch_size": 10, "epochs": 3}}
    if learning_rate is None:
        metadata = {}
    return checkpoint.save(path, Network(sizes, cost=cost, rng=np.random.default_rng(seed)), metadata)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mnist(tmp_path_factory.mktemp("data") / "mnist")


@pytest.fixture
def folders(tmp_path):
    """A working directory holding two models (one of two hidden layers) and an empty runs folder."""
    work = tmp_path / "work"
    work.mkdir()
    save_model(work / "model.npz", [784, 20, 10], seed=3)
    save_model(work / "deep.npz", [784, 16, 12, 10], seed=4, cost="quadratic", learning_rate=3.0)
    return work, tmp_path / "runs"


def start(folders, data_dir, name="model.npz", **options):
    work, runs = folders
    path = work / name
    recogniser = api.Recogniser(checkpoint.load(path), str(path), "best", data_dir)
    models = Models(recogniser, runs_dir=runs, workdir=work, data_dir=data_dir)
    return Running(recogniser, models=models, max_upload=MB, timeout=2.0, **options)


@pytest.fixture
def server(folders, data_dir):
    running = start(folders, data_dir)
    yield running
    running.stop()


def served(running) -> Network:
    return running.served.models.recogniser.network


def sessions(running) -> serve_inside.Inside:
    return running.served.inside


def image_of(network, body):
    """The 784 inputs /api/predict feeds the network for these bytes."""
    return api.read_upload(network, body).image


def post(running, route, body=b"", **query):
    return requests.post(running.url + route, data=body, params=query)


def as_json(record: dict) -> dict:
    """The record as the server's JSON encoder writes it, read back (floats round-trip exactly)."""
    return json.loads(json.dumps(record))


def without(answer: dict, keys) -> dict:
    return {k: v for k, v in answer.items() if k not in keys}


# ---------------------------------------------------------------------------
# POST /api/explain


@pytest.mark.parametrize("query", [{}, {"digit": "3"}, {"off": "1:4,1:17"}, {"off": "4,17", "digit": "7"}])
def test_explain_is_inside_explain_to_the_last_digit(server, query):
    body = drawing("four")
    response = post(server, "/api/explain", body, **query)
    assert response.status_code == 200, response.text
    answer = response.json()
    x = image_of(served(server), body)
    expected = inside.explain(served(server), x, digit=query.get("digit"), off=query.get("off", "")).to_dict()
    assert without(answer, SEEN) == as_json(expected)
    assert set(answer) == set(expected) | set(SEEN)


def test_explain_gives_the_input_and_notes_predict_gives(server):
    for body in (drawing("seven"), drawing("zero", side=500, mode="L")):
        explained = post(server, "/api/explain", body).json()
        predicted = post(server, "/api/predict", body).json()
        assert explained["input"] == predicted["input"]
        assert explained["notes"] == predicted.get("warnings", [])
        assert explained["answer"] == predicted["digit"]


def test_explain_two_digits_side_by_side_says_so_like_predict(server):
    image = Image.new("L", (560, 280), 255)
    for left in (0, 280):
        image.paste(Image.open(io.BytesIO(drawing("one", mode="L"))), (left, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    explained = post(server, "/api/explain", buffer.getvalue()).json()
    predicted = post(server, "/api/predict", buffer.getvalue()).json()
    assert explained["notes"] and explained["notes"] == predicted["warnings"]


def test_explain_parity_with_the_cli_json(server, folders, tmp_path):
    work, _ = folders
    picture = tmp_path / "four.png"
    picture.write_bytes(drawing("four"))
    cli = json.loads(run_cli("explain", picture, "--model", work / "model.npz", "--off", "1:2", "--json").stdout)
    api_answer = post(server, "/api/explain", picture.read_bytes(), off="1:2").json()
    assert without(cli, ("image",)) == api_answer


def test_switching_units_off_changes_the_answer_as_inside_says(server):
    body = drawing("four")
    x = image_of(served(server), body)
    everything = post(server, "/api/explain", body).json()
    top = [c["unit"] for c in everything["contributions"][:3]]
    off = ",".join(f"1:{k}" for k in top)
    ablated = post(server, "/api/explain", body, off=off).json()
    assert ablated["off"] == sorted([1, k] for k in top)
    assert ablated["outputs"] != everything["outputs"]
    assert ablated["z"] < everything["z"]  # the three largest pushes towards the answer are gone
    assert ablated["outputs"] == as_json(inside.explain(served(server), x, off=off).to_dict())["outputs"]
    assert all(c["contribution"] == 0 for c in ablated["contributions"] if c["unit"] in top)
    again = post(server, "/api/explain", body, off="").json()
    assert again == everything  # all back on: the same answer, bit for bit


def test_explain_two_hidden_layers(folders, data_dir):
    running = start(folders, data_dir, "deep.npz")
    try:
        body = drawing("seven")
        answer = post(running, "/api/explain", body, off="1:3,2:5").json()
        x = image_of(served(running), body)
        assert without(answer, SEEN) == as_json(inside.explain(served(running), x, off="1:3,2:5").to_dict())
        assert [layer["layer"] for layer in answer["layers"]] == [1, 2]
    finally:
        running.stop()


# ---------------------------------------------------------------------------
# GET /api/explain/weights.png


def test_weight_atlas_png(server):
    response = requests.get(server.url + "/api/explain/weights.png")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    pixels, columns = inside.weight_atlas(served(server))
    assert response.headers["X-Atlas-Columns"] == str(columns) == "5"
    picture = Image.open(io.BytesIO(response.content))
    assert picture.mode == "L"
    np.testing.assert_array_equal(np.asarray(picture), pixels)
    assert response.headers["Cache-Control"] == "no-cache"
    again = requests.get(server.url + "/api/explain/weights.png", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert requests.head(server.url + "/api/explain/weights.png").headers["ETag"] == response.headers["ETag"]


def test_weight_atlas_of_a_taught_copy(server):
    body = drawing("four")
    taught = post(server, "/api/teach", body, label="9", eta="50").json()
    response = requests.get(server.url + "/api/explain/weights.png", params={"session": taught["session"]})
    assert response.status_code == 200
    copy = sessions(server)._sessions[taught["session"]].network
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), inside.weight_atlas(copy)[0])
    served_png = requests.get(server.url + "/api/explain/weights.png")
    assert served_png.headers["ETag"] != response.headers["ETag"]


# ---------------------------------------------------------------------------
# POST /api/teach, keep, forget


def test_teach_twice_continues_the_session_and_moves_towards_the_label(server):
    body = drawing("four")
    x = image_of(served(server), body)
    first = post(server, "/api/teach", body, label="9").json()
    assert first["steps"] == 1 and first["eta"] == 0.5  # the checkpoint's training --eta
    step = inside.teach(served(server), x, 9, 0.5)
    assert without(first, SESSION) == as_json(step.to_dict())
    second = post(server, "/api/teach", body, label="9", session=first["session"]).json()
    assert second["session"] == first["session"] and second["steps"] == 2
    assert without(second, SESSION) == as_json(inside.teach(step.network, x, 9, 0.5).to_dict())
    assert second["before"]["outputs"] == first["after"]["outputs"]
    assert second["after"]["outputs"][9] > second["before"]["outputs"][9] > first["before"]["outputs"][9]
    assert second["cost_after"] < first["cost_before"]
    assert second["input"] == post(server, "/api/predict", body).json()["input"]
    explained = post(server, "/api/explain", body, session=first["session"]).json()
    copy = inside.teach(step.network, x, 9, 0.5).network
    assert without(explained, SEEN) == as_json(inside.explain(copy, x).to_dict())


def test_teach_eta_defaults_to_3_without_a_recorded_one(folders, data_dir):
    save_model(folders[0] / "bare.npz", [784, 10, 10], seed=5, learning_rate=None)
    running = start(folders, data_dir, "bare.npz")
    try:
        assert post(running, "/api/teach", drawing("one"), label="1").json()["eta"] == 3.0
        assert post(running, "/api/teach", drawing("one"), label="1", eta="0.25").json()["eta"] == 0.25
    finally:
        running.stop()


def test_keep_writes_a_loadable_checkpoint_listed_by_the_models(server, folders):
    work, runs = folders
    body = drawing("four")
    first = post(server, "/api/teach", body, label="9").json()
    post(server, "/api/teach", body, label="9", eta="1.5", session=first["session"])
    kept = requests.post(server.url + "/api/teach/keep", json={"session": first["session"]})
    assert kept.status_code == 200, kept.text
    assert kept.json() == {"name": "taught-model-1.npz", "id": "runs/taught-model-1.npz", "steps": 2}
    saved = checkpoint.load(runs / "taught-model-1.npz")
    copy = sessions(server)._sessions[first["session"]].network
    for mine, theirs in zip(saved.network.weights + saved.network.biases, copy.weights + copy.biases):
        np.testing.assert_array_equal(mine, theirs)
    assert saved.metadata["taught"] == {"from": "model.npz", "weights": "last", "steps": 2, "labels": [9, 9],
                                        "etas": [0.5, 1.5]}
    assert saved.network.cost.name == "cross-entropy" and "test_accuracy" not in saved.metadata
    again = requests.post(server.url + "/api/teach/keep", json={"session": first["session"]}).json()
    assert again["name"] == "taught-model-2.npz"
    listed = {m["id"]: m for m in requests.get(server.url + "/api/models").json()["models"]}
    assert listed["runs/taught-model-1.npz"]["taught"] == {"from": "model.npz", "steps": 2, "labels": [9, 9]}
    assert listed["runs/taught-model-1.npz"]["resumable"] is False
    assert listed["model.npz"]["taught"] is None
    chosen = requests.post(server.url + "/api/models/select", json={"id": "runs/taught-model-1.npz"})
    assert chosen.status_code == 200 and chosen.json()["file"] == "taught-model-1.npz"
    # Taught again from the taught one, it keeps the origin's stem: taught-model-3, not taught-taught-...
    third = post(server, "/api/teach", body, label="9").json()
    assert requests.post(server.url + "/api/teach/keep", json={"session": third["session"]}).json()["name"] == "taught-model-3.npz"


def test_forget_drops_the_session(server):
    taught = post(server, "/api/teach", drawing("four"), label="2").json()
    forgotten = requests.post(server.url + "/api/teach/forget", json={"session": taught["session"]})
    assert forgotten.status_code == 200 and forgotten.json() == {"forgotten": True}
    assert sessions(server).sessions() == []
    gone = post(server, "/api/explain", drawing("four"), session=taught["session"])
    assert gone.status_code == 400 and "forgotten" in gone.json()["error"]
    assert requests.post(server.url + "/api/teach/forget", json={"session": taught["session"]}).json() == {"forgotten": False}


def test_the_ninth_session_drops_the_least_recently_used(server):
    body = drawing("seven")
    ids = [post(server, "/api/teach", body, label="1").json()["session"] for _ in range(8)]
    post(server, "/api/explain", body, session=ids[0])  # used again: now the second is the oldest
    ninth = post(server, "/api/teach", body, label="1").json()["session"]
    assert sessions(server).sessions() == [*ids[2:], ids[0], ninth]
    dropped = post(server, "/api/explain", body, session=ids[1])
    assert dropped.status_code == 400 and "at most 8" in dropped.json()["error"]
    assert len(set(ids + [ninth])) == 9 and all(len(sid) >= 16 for sid in ids)


def test_the_memory_bound_drops_the_oldest_and_refuses_what_cannot_fit(server):
    body = drawing("seven")
    size = serve_inside.network_bytes(served(server))
    sessions(server).max_bytes = int(2.5 * size)
    ids = [post(server, "/api/teach", body, label="1").json()["session"] for _ in range(3)]
    assert sessions(server).sessions() == ids[1:]
    sessions(server).max_bytes = size - 1
    refused = post(server, "/api/teach", body, label="1")
    assert refused.status_code == 507 and "MB" in refused.json()["error"]


def test_a_model_switch_invalidates_the_sessions(server):
    body = drawing("four")
    first = post(server, "/api/teach", body, label="9").json()
    second = post(server, "/api/teach", body, label="3").json()
    assert requests.post(server.url + "/api/models/select", json={"id": "deep.npz"}).status_code == 200
    for route, query in (("/api/explain", {"session": first["session"]}),
                         ("/api/teach", {"session": first["session"], "label": "9"})):
        refused = post(server, route, body, **query)
        assert refused.status_code == 409 and "no longer serves" in refused.json()["error"], route
    kept = requests.post(server.url + "/api/teach/keep", json={"session": second["session"]})
    assert kept.status_code == 409
    fresh = post(server, "/api/teach", body, label="9").json()
    assert fresh["steps"] == 1 and sessions(server).sessions() == [fresh["session"]]
    assert len(fresh["bp2"]) == 2  # taught from the new model, 784-16-12-10


def test_teaching_never_changes_the_model_file_or_the_served_weights(server, folders):
    work, _ = folders
    network = served(server)

    def fingerprint():
        digest = hashlib.sha256((work / "model.npz").read_bytes())
        for array in network.weights + network.biases:
            digest.update(array.tobytes())
        return digest.hexdigest()

    before = fingerprint()
    body = drawing("four")
    session = None
    for i in range(30):
        answer = post(server, "/api/teach", body, label=str(i % 10), eta="20",
                      **({"session": session} if session and i % 3 else {})).json()
        session = answer["session"]
    requests.post(server.url + "/api/teach/keep", json={"session": session})
    post(server, "/api/explain", body)
    assert fingerprint() == before
    assert served(server) is network


def test_one_session_taught_by_many_requests_at_once_counts_every_step(server):
    body = drawing("four")
    sid = post(server, "/api/teach", body, label="4").json()["session"]

    def teach(_):
        return post(server, "/api/teach", body, label="4", session=sid).json()["steps"]

    threads = [threading.Thread(target=teach, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session = sessions(server)._sessions[sid]
    assert session.steps == 9 and len(session.labels) == 9


# ---------------------------------------------------------------------------
# Bad fields and the guards /api/predict has


@pytest.mark.parametrize("route, query, field", [
    ("/api/explain", {"digit": "12"}, "digit"), ("/api/explain", {"digit": "x"}, "digit"),
    ("/api/explain", {"off": "1:99"}, "off"), ("/api/explain", {"off": "3:1"}, "off"),
    ("/api/explain", {"off": "a:b"}, "off"), ("/api/explain", {"session": "../etc"}, "session"),
    ("/api/explain", {"session": "nobody"}, "session"),
    ("/api/teach", {}, "label"), ("/api/teach", {"label": "10"}, "label"),
    ("/api/teach", {"label": "1", "eta": "0"}, "eta"), ("/api/teach", {"label": "1", "eta": "nan"}, "eta"),
    ("/api/teach", {"label": "1", "eta": "1e9"}, "eta"), ("/api/teach", {"label": "1", "eta": "fast"}, "eta"),
    ("/api/teach", {"label": "1", "session": "x" * 100}, "session"),
])
def test_bad_fields_are_one_line_json_400s_naming_the_field(server, route, query, field):
    response = post(server, route, drawing("four"), **query)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith(field) and "\n" not in message and "--" not in message


@pytest.mark.parametrize("body", [b"not json", b"[1]", b"{}", b'{"session": 4}', b'{"session": "nobody"}'])
def test_bad_keep_and_forget_bodies(server, body):
    for route in ("/api/teach/keep", "/api/teach/forget"):
        response = requests.post(server.url + route, data=body)
        if route.endswith("forget") and body == b'{"session": "nobody"}':
            assert response.json() == {"forgotten": False}
            continue
        assert response.status_code == 400 and "\n" not in response.json()["error"], (route, body)


def test_the_guards_of_predict(server):
    for route in ("/api/explain", "/api/teach?label=1"):
        over = requests.post(server.url + route, data=b"x" * (MB + 1))
        assert over.status_code == 413 and "limit" in over.json()["error"]
        foreign = requests.post(server.url + route, data=drawing("four"), headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        host = requests.post(server.url + route, data=drawing("four"), headers={"Host": "evil.example"})
        assert host.status_code == 403
        empty = requests.post(server.url + route, data=b"")
        assert empty.status_code == 400 and "empty body" in empty.json()["error"]
        garbage = requests.post(server.url + route, data=b"\x89PNG\r\n\x1a\n garbage")
        assert garbage.json() == requests.post(server.url + "/api/predict", data=b"\x89PNG\r\n\x1a\n garbage").json()
    assert requests.get(server.url + "/api/teach").status_code == 405
    assert requests.post(server.url + "/api/explain/weights.png").status_code == 405


def test_without_a_model_the_routes_answer_503_like_predict(tmp_path):
    running = Running(None, models=Models(None, runs_dir=tmp_path / "runs", workdir=tmp_path))
    try:
        predicted = requests.post(running.url + "/api/predict", data=drawing("four"))
        for answer in (requests.post(running.url + "/api/explain", data=drawing("four")),
                       requests.post(running.url + "/api/teach?label=4", data=drawing("four")),
                       requests.get(running.url + "/api/explain/weights.png"),
                       requests.post(running.url + "/api/teach/keep", json={"session": "abc"})):
            assert answer.status_code == predicted.status_code == 503
            assert answer.json() == predicted.json()
    finally:
        running.stop()


def test_a_network_without_hidden_layers_has_no_atlas_but_is_explained(folders, data_dir):
    save_model(folders[0] / "flat.npz", [784, 10], seed=6)
    running = start(folders, data_dir, "flat.npz")
    try:
        atlas = requests.get(running.url + "/api/explain/weights.png")
        assert atlas.status_code == 409 and "no first hidden layer" in atlas.json()["error"]
        assert post(running, "/api/explain", drawing("four")).status_code == 200
        assert post(running, "/api/teach", drawing("four"), label="4").json()["bp2"] == []
    finally:
        running.stop()
