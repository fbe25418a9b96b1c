"""Watching a run from the page: epoch 0 and the peeks in the status, the weight pictures of the latest
saved epoch (GET /api/train/weights.png), a Stop that is prompt in slow mode, a resume that switches
slow mode, and a guessing run told in plain words.  Real `digitnet train` children, as test_serve_train."""

from __future__ import annotations

import io

import numpy as np
import requests
from PIL import Image

from digitnet import checkpoint, inside
from digitnet.serve import training as train_api
from test_serve_train import SMALL, data_dir, ended, server  # noqa: F401 -- data_dir and server are fixtures


def run_file(server, status):
    return server.runs_dir / status["run"].split("/", 1)[1]


def test_weights_png_is_404_json_until_an_epoch_is_saved_then_the_latest_epochs_atlas(server):
    missing = requests.get(server.url + "/api/train/weights.png", timeout=10)
    assert missing.status_code == 404 and "no run has saved an epoch" in missing.json()["error"]
    server.post("/api/train/start", {"settings": SMALL})
    final = server.wait(ended)
    answer = requests.get(server.url + "/api/train/weights.png", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/png"
    assert answer.headers["X-Atlas-Columns"] == "4" and answer.headers["X-Epoch"] == "2"  # 12 units: 4 x 3 tiles
    picture = Image.open(io.BytesIO(answer.content))
    assert picture.mode == "L" and picture.size == (4 * 28, 3 * 28)
    expected, _ = inside.weight_atlas(checkpoint.load(run_file(server, final)).network)
    np.testing.assert_array_equal(np.asarray(picture), expected)
    head = requests.head(server.url + "/api/train/weights.png", timeout=10)
    assert head.status_code == 200 and head.headers["X-Epoch"] == "2" and not head.content


def test_the_status_carries_epoch_0_and_the_peeks_labelled_as_a_sample(server):
    server.post("/api/train/start", {"settings": dict(SMALL, peek_every=100)})
    final = server.wait(ended)
    assert final["state"] == "finished" and final["guessing"] == ""
    untrained = final["untrained"]
    assert untrained["epoch"] == 0 and 0 <= untrained["validation_accuracy"] <= 1 and untrained["training_cost"] > 0
    assert [(p["epoch"], p["images"]) for p in final["peeks"]] == [(e, i) for e in (1, 2) for i in (100, 200, 300, 400)]
    assert {p["sample_size"] for p in final["peeks"]} == {100}  # the validation split has 100 images
    assert final["message"].startswith("finished: test accuracy")


def test_a_guessing_run_says_so_instead_of_just_its_accuracy(server):
    server.post("/api/train/start", {"settings": dict(SMALL, learning_rate=1e-4, seed=3)})
    final = server.wait(ended)
    assert final["state"] == "finished" and final["guessing"].startswith("The network is guessing")
    assert final["message"].startswith("finished, but not learning: test accuracy ")
    assert final["guessing"] in final["message"] and "--eta" in final["message"]


def test_stop_is_prompt_in_slow_mode_and_a_resume_may_switch_slow_mode_off(server):
    slow = dict(SMALL, pause_ms=10_000)  # ten seconds after every mini-batch
    server.post("/api/train/start", {"settings": slow})
    server.wait(lambda s: s["progress"] is not None)  # the first mini-batch is done: the child sleeps now
    server.post("/api/train/stop")
    stopped = server.wait(ended, seconds=8)  # well before the pause would have ended by itself
    assert stopped["state"] == "interrupted" and "nothing was saved" in stopped["message"]

    server.post("/api/train/start", {"settings": dict(slow, pause_ms=0, epochs=3)})
    first = server.wait(ended)
    assert first["state"] == "finished"
    refused = server.post("/api/train/resume", {"id": first["run"], "epochs": 4, "settings": {"learning_rate": 1}})
    assert refused.status_code == 400 and "--pause-ms" in refused.json()["error"]
    bad = server.post("/api/train/resume", {"id": first["run"], "epochs": 4, "settings": {"pause_ms": -1}})
    assert bad.status_code == 400 and "--pause-ms must be at least 0" in bad.json()["error"]
    resumed = server.post("/api/train/resume", {"id": first["run"], "epochs": 4, "settings": {"pause_ms": 1}})
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["settings"]["pause_ms"] == 1 and "--pause-ms 1" in resumed.json()["command"]
    final = server.wait(ended)
    assert final["state"] == "finished" and final["epochs_completed"] == 4 and final["untrained"]["epoch"] == 0
    assert checkpoint.load(run_file(server, final)).metadata["hyperparameters"]["pause_ms"] == 1


def test_the_form_description_offers_the_page_and_slow_settings():
    described = train_api.describe()
    options = {s["name"]: s for s in described["settings"]}
    assert described["page"] == {"peek_every": 5000} and described["slow"]["pause_ms"] > 0
    for name in (*described["page"], *described["slow"]):
        assert options[name]["resume_may_change"] and options[name]["default"] == 0
    train_api.config_from_json({"settings": {**described["page"], **described["slow"]}})
