"""Training from the page, through the API: start, watch (SSE), stop, resume, models, select, download.

Each test gets its own server on 127.0.0.1:0 with training enabled, a runs folder and small
synthetic MNIST files (600 training images; the runs use 100 of them for validation).  The runs are
real `digitnet train --progress json` child processes.
"""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
import requests

from helpers import run_cli, write_mnist
from digitnet import checkpoint, textbook_json
from digitnet.network import Network
from digitnet.serve import training as train_api
from digitnet.serve.models import Models
from digitnet.serve.training import TrainingRuns
from test_serve_api import Running, drawing

SMALL = {"hidden_sizes": [12], "epochs": 2, "validation_size": 100, "seed": 4}
# A run long enough to stop mid-way (a few ms per epoch on 500 images).
LONG = dict(SMALL, epochs=400)


class TrainingServer(Running):
    def __init__(self, tmp_path, data_dir, recogniser=None):
        self.runs_dir = tmp_path / "runs"
        self.workdir = tmp_path / "work"
        self.workdir.mkdir()
        self.training = TrainingRuns(self.runs_dir, data_dir)
        self.models = Models(recogniser, self.runs_dir, self.workdir, data_dir, self.training)
        from digitnet.serve import server as serving

        self.recogniser = recogniser
        self.httpd = serving.start_in_thread(recogniser, models=self.models, training=self.training)
        self.port = self.httpd.port
        self.url = self.httpd.url

    def stop(self):
        self.training.shutdown()
        super().stop()

    def post(self, route, body=None, **kwargs):
        return requests.post(self.url + route, json=body if body is not None else {}, timeout=10, **kwargs)

    def status(self):
        return requests.get(self.url + "/api/train", timeout=10).json()

    def wait(self, condition, seconds=60):
        """Follow the event stream until ``condition(status)``; return that status."""
        deadline = time.monotonic() + seconds
        with requests.get(self.url + "/api/train/events", stream=True, timeout=seconds) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for line in response.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith("data: "):
                    status = json.loads(line[6:])
                    if condition(status):
                        return status
                if time.monotonic() > deadline:
                    break
        raise AssertionError(f"timed out; last status {self.status()}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mnist(tmp_path_factory.mktemp("data") / "mnist")


@pytest.fixture
def server(tmp_path, data_dir):
    running = TrainingServer(tmp_path, data_dir)
    yield running
    running.stop()


def ended(status):
    return not status["running"] and status["state"] not in ("idle", "starting")


def test_a_run_goes_from_start_to_finish_with_every_epoch_pushed(server):
    answer = server.post("/api/train/start", {"settings": SMALL})
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["running"] and started["run"].startswith("runs/") and started["run"].endswith(".npz")
    final = server.wait(ended)
    assert final["state"] == "finished", final["message"]
    assert [e["epoch"] for e in final["history"]] == [1, 2]
    assert all(np.isfinite(e["training_cost"]) and 0 <= e["validation_accuracy"] <= 1 for e in final["history"])
    assert "test accuracy" in final["message"] and final["test_accuracy"] is not None
    saved = checkpoint.load(server.runs_dir / started["run"].split("/", 1)[1])
    assert saved.metadata["epochs_completed"] == 2
    listed = {m["id"]: m for m in requests.get(server.url + "/api/models", timeout=10).json()["models"]}
    assert listed[started["run"]]["epochs_completed"] == 2 and listed[started["run"]]["test_accuracy"] is not None


def test_a_page_that_connects_mid_run_gets_the_status_at_once(server):
    server.post("/api/train/start", {"settings": LONG})
    server.wait(lambda s: s["epochs_completed"] >= 1)
    with requests.get(server.url + "/api/train/events", stream=True, timeout=10) as response:
        first = next(line for line in response.iter_lines(chunk_size=1, decode_unicode=True) if line.startswith("data: "))
    status = json.loads(first[6:])
    assert status["running"] and status["epochs_completed"] >= 1 and len(status["history"]) >= 1
    assert status["elapsed"] >= 0 and status["eta"] is not None
    server.post("/api/train/stop")
    server.wait(ended)


def test_same_settings_and_seed_give_the_weights_of_digitnet_train(server, data_dir, tmp_path):
    started = server.post("/api/train/start", {"settings": SMALL}).json()
    assert server.wait(ended)["state"] == "finished"
    cli_out = tmp_path / "cli.npz"
    run_cli("train", "--hidden", "12", "--epochs", "2", "--validation-size", "100", "--seed", "4",
            "--data-dir", data_dir, "--out", cli_out, "--quiet")
    page, cli = checkpoint.load(server.runs_dir / started["run"].split("/", 1)[1]), checkpoint.load(cli_out)
    for a, b in zip(page.network.weights + page.network.biases, cli.network.weights + cli.network.biases):
        assert np.array_equal(a, b)


def test_one_run_at_a_time_then_stop_keeps_the_epochs_and_resume_is_bit_exact(server, data_dir, tmp_path):
    settings = dict(SMALL, epochs=8, batch_size=1)  # about 0.25 s an epoch: long enough to stop mid-way
    started = server.post("/api/train/start", {"settings": settings}).json()
    again = server.post("/api/train/start", {"settings": SMALL})
    assert again.status_code == 409 and "already" in again.json()["error"]
    server.wait(lambda s: s["epochs_completed"] >= 1)
    assert server.post("/api/train/stop").status_code == 200
    stopped = server.wait(ended)
    assert stopped["state"] == "interrupted" and stopped["resumable"], stopped
    kept = stopped["saved_epoch"]
    assert 1 <= kept < 8 and f"epoch {kept} is saved" in stopped["message"]
    assert server.post("/api/train/stop").status_code == 409  # nothing is running now
    path = server.runs_dir / started["run"].split("/", 1)[1]
    assert checkpoint.load(path).metadata["epochs_completed"] == kept

    resumed = server.post("/api/train/resume", {"id": started["run"]})
    assert resumed.status_code == 202, resumed.text
    final = server.wait(ended, seconds=120)
    assert final["state"] == "finished" and final["epochs_completed"] == 8
    assert [e["epoch"] for e in final["history"]] == list(range(1, 9))

    cli_out = tmp_path / "straight.npz"
    run_cli("train", "--hidden", "12", "--epochs", "8", "--batch-size", "1", "--validation-size", "100",
            "--seed", "4", "--data-dir", data_dir, "--out", cli_out, "--quiet")
    page, cli = checkpoint.load(path), checkpoint.load(cli_out)
    for a, b in zip(page.network.weights + page.network.biases, cli.network.weights + cli.network.biases):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("settings, message", [
    ({"epochs": -1}, "--epochs must be at least 1, got -1"),
    ({"hidden_sizes": [10 ** 9]}, f"--hidden: at most {train_api.MAX_HIDDEN_UNITS} units per layer"),
    ({"hidden_sizes": [30] * 9}, f"at most {train_api.MAX_HIDDEN_LAYERS} hidden layers"),
    ({"epochs": 10 ** 6}, f"--epochs: at most {train_api.MAX_EPOCHS}"),
    ({"learning_rate": "nan"}, "--eta must be a finite number, got nan"),
    ({"learning_rate": "fast"}, "--eta: 'fast' is not a number"),
    ({"cost": "hinge"}, "--cost must be one of quadratic, cross-entropy"),
    ({"hidden_sizes": "30,x"}, "--hidden"),
    ({"rm_rf": 1}, "unknown setting(s): rm_rf"),
    ({"batch_size": True}, "--batch-size must be a whole number"),
])
def test_bad_settings_get_400_and_start_nothing(server, settings, message):
    answer = server.post("/api/train/start", {"settings": settings})
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    assert server.status()["state"] == "idle" and not server.runs_dir.exists()


def test_nan_in_the_json_is_refused_too(server):
    answer = requests.post(server.url + "/api/train/start", data='{"settings": {"learning_rate": NaN}}', timeout=10)
    assert answer.status_code == 400 and "--eta must be a finite number" in answer.json()["error"]


def test_settings_checked_by_problems_get_the_cli_message(server, data_dir):
    answer = server.post("/api/train/start", {"settings": {"patience": 3, "validation_size": 0}})
    cli = run_cli("train", "--patience", "3", "--validation-size", "0", "--data-dir", data_dir, expect=2)
    assert answer.status_code == 400 and answer.json()["error"] in cli.output


def test_settings_the_data_refuses_end_the_run_with_the_cli_message(server):
    server.post("/api/train/start", {"settings": {"batch_size": 5000, "validation_size": 100}})
    final = server.wait(ended)
    assert final["state"] == "failed" and "--batch-size 5000 is larger than the 500 training images" in final["message"]
    assert not final["resumable"]


def test_the_form_description_lists_settings_recipes_and_caps(server):
    described = requests.get(server.url + "/api/train/settings", timeout=10).json()
    names = {s["name"]: s for s in described["settings"]}
    assert names["learning_rate"]["option"] == "--eta" and names["learning_rate"]["default"] == 3.0
    assert set(described["main"]) <= set(names)
    assert described["recipes"][0]["settings"] == {} and len(described["recipes"]) >= 3
    for recipe in described["recipes"]:  # every recipe is a valid request
        train_api.config_from_json({"settings": recipe["settings"]})
    assert described["caps"]["epochs"] == train_api.MAX_EPOCHS


def test_a_killed_trainer_is_reported_and_its_run_resumes(server):
    started = server.post("/api/train/start", {"settings": dict(LONG, batch_size=1)}).json()
    server.wait(lambda s: s["epochs_completed"] >= 1)
    os.kill(server.status()["pid"], signal.SIGKILL)
    final = server.wait(ended)
    assert final["state"] == "killed" and "SIGKILL" in final["message"] and final["resumable"]
    path = server.runs_dir / started["run"].split("/", 1)[1]
    kept = checkpoint.load(path).metadata["epochs_completed"]  # intact: saves are atomic
    assert kept >= 1 and f"epoch {kept} is intact" in final["message"]
    assert requests.get(server.url + "/api/models", timeout=10).status_code == 200  # still serving
    assert server.post("/api/train/resume", {"id": started["run"]}).status_code == 202
    assert server.wait(lambda s: s["epochs_completed"] > kept)["running"]
    server.post("/api/train/stop")
    server.wait(ended)


def test_a_diverging_run_says_so(server):
    server.post("/api/train/start", {"settings": dict(SMALL, learning_rate=1e30)})
    final = server.wait(ended)
    assert final["state"] == "diverged" and "smaller --eta" in final["message"]


def test_predict_with_the_model_being_trained(server):
    assert server.post("/api/train/start", {"settings": SMALL}).status_code == 202
    early = requests.post(server.url + "/api/predict?model=training", data=drawing(), timeout=10)
    final = server.wait(ended)
    if early.status_code != 200:  # before the first epoch is saved
        assert early.status_code == 409 and "first" in early.json()["error"]
    answer = requests.post(server.url + "/api/predict?model=training", data=drawing(), timeout=10)
    assert answer.status_code == 200 and answer.json()["model"] == "training"
    network = checkpoint.load(server.runs_dir / final["run"].split("/", 1)[1]).network
    from digitnet import predict

    assert answer.json()["scores"] == pytest.approx(predict.predict_bytes(network, drawing()).to_dict()["scores"])


def test_without_a_model_the_server_says_so_and_serves_a_run_once_selected(server):
    assert requests.get(server.url + "/api/model", timeout=10).json()["file"] is None
    missing = requests.post(server.url + "/api/predict", data=drawing(), timeout=10)
    assert missing.status_code == 503 and "train one" in missing.json()["error"]
    run = server.post("/api/train/start", {"settings": SMALL}).json()["run"]
    server.wait(ended)
    chosen = server.post("/api/models/select", {"id": run})
    assert chosen.status_code == 200 and chosen.json()["file"] == run.split("/", 1)[1]
    assert requests.post(server.url + "/api/predict", data=drawing(), timeout=10).status_code == 200
    listed = requests.get(server.url + "/api/models", timeout=10).json()["models"]
    assert [m["id"] for m in listed if m["served"]] == [run]


def test_models_lists_the_working_directory_too_and_downloads_by_id_only(server):
    path = checkpoint.save(server.workdir / "mine.npz", Network([784, 7, 10], rng=np.random.default_rng(1)),
                           {"epochs_completed": 1})
    (server.workdir / "broken.npz").write_bytes(b"no")
    listed = {m["id"]: m for m in requests.get(server.url + "/api/models", timeout=10).json()["models"]}
    assert listed["mine.npz"]["sizes"] == [784, 7, 10] and "error" in listed["broken.npz"]
    download = requests.get(server.url + "/api/models/download", params={"id": "mine.npz"}, timeout=10)
    assert download.status_code == 200 and download.content == path.read_bytes()
    assert 'filename="mine.npz"' in download.headers["Content-Disposition"]
    for bad in ("../mine.npz", "/etc/passwd", str(path), "nothing.npz"):
        assert requests.get(server.url + "/api/models/download", params={"id": bad}, timeout=10).status_code == 404
    assert server.post("/api/models/select", {"id": "broken.npz"}).status_code == 400
    assert server.post("/api/models/select", {"id": "../x.npz"}).status_code == 404


def test_the_textbooks_json_networks_are_models_too_and_other_json_files_are_not(server):
    network = Network([784, 6, 10], rng=np.random.default_rng(3))
    (server.workdir / "net.json").write_text(json.dumps(textbook_json.dump(network)))
    (server.workdir / "report.json").write_text('{"accuracy": 0.95}')
    listed = {m["id"]: m for m in requests.get(server.url + "/api/models", timeout=10).json()["models"]}
    assert listed["net.json"]["sizes"] == [784, 6, 10] and "report.json" not in listed
    for model_id, status in (("net.json", 200), ("report.json", 404)):  # nor can it be downloaded
        answer = requests.get(server.url + "/api/models/download", params={"id": model_id}, timeout=10)
        assert answer.status_code == status, model_id
    assert server.post("/api/models/select", {"id": "net.json"}).status_code == 200
    assert requests.get(server.url + "/api/model", timeout=10).json()["sizes"] == [784, 6, 10]


def test_status_versions_grow_across_restarts_so_an_open_page_takes_the_new_servers_answers(tmp_path):
    before = TrainingRuns(tmp_path / "runs").status()["version"]
    time.sleep(0.01)
    assert TrainingRuns(tmp_path / "runs").status()["version"] > before


def test_selecting_switches_new_requests_only(server):
    first = checkpoint.save(server.workdir / "a.npz", Network([784, 7, 10], rng=np.random.default_rng(1)), {})
    checkpoint.save(server.workdir / "b.npz", Network([784, 9, 10], rng=np.random.default_rng(2)), {})
    server.post("/api/models/select", {"id": "a.npz"})
    held = server.models.recogniser  # what a request in flight holds
    assert requests.get(server.url + "/api/model", timeout=10).json()["sizes"] == [784, 7, 10]
    server.post("/api/models/select", {"id": "b.npz"})
    assert requests.get(server.url + "/api/model", timeout=10).json()["sizes"] == [784, 9, 10]
    assert held.network.sizes == [784, 7, 10] and held.model_name == str(first)


def test_state_changing_training_routes_refuse_other_origins(server):
    for route in ("/api/train/start", "/api/train/stop", "/api/train/resume", "/api/models/select"):
        answer = server.post(route, {"settings": SMALL}, headers={"Origin": "http://evil.example"})
        assert answer.status_code == 403, route
    answer = requests.get(server.url + "/api/train", headers={"Host": "evil.example"}, timeout=10)
    assert answer.status_code == 403
    assert server.status()["state"] == "idle"


def test_json_bodies_have_a_size_limit_and_must_be_objects(server):
    big = requests.post(server.url + "/api/train/start", data=b"{" + b" " * 100_000 + b"}", timeout=10)
    assert big.status_code == 413
    assert requests.post(server.url + "/api/train/start", data=b"[1]", timeout=10).status_code == 400
    assert requests.post(server.url + "/api/train/start", data=b"{not json", timeout=10).status_code == 400


def test_shutting_down_stops_a_run_as_ctrl_c_does(server):
    run = server.post("/api/train/start", {"settings": dict(LONG, batch_size=1)}).json()["run"]
    server.wait(lambda s: s["epochs_completed"] >= 1)
    final = server.training.shutdown()
    assert final["state"] == "interrupted" and final["resumable"]
    assert checkpoint.load(server.runs_dir / run.split("/", 1)[1]).metadata["epochs_completed"] >= 1


def test_train_progress_json_prints_one_object_per_line(data_dir, tmp_path):
    result = run_cli("train", "--hidden", "8", "--epochs", "2", "--validation-size", "100", "--data-dir", data_dir,
                     "--out", tmp_path / "m.npz", "--progress", "json")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    assert set(kinds) <= {"start", "untrained", "progress", "epoch", "end"} and kinds[1] == "untrained"
    assert events[0]["settings"]["hidden_sizes"] == [8] and events[0]["epochs"] == 2
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    assert events[-1]["outcome"] == "finished" and events[-1]["test_accuracy"] is not None


def test_a_kill_between_a_save_and_its_event_reports_what_the_file_holds(tmp_path):
    """The child saves epoch 2, then is killed before it says so: the message reads the file."""
    out = tmp_path / "runs" / "run.npz"
    out.parent.mkdir()
    checkpoint.save(out, Network([784, 3, 10], rng=np.random.default_rng(1)), {"epochs_completed": 2})
    runs = TrainingRuns(tmp_path / "runs", log=open(os.devnull, "w"))
    runs._status.update(state="running", running=True, run="runs/run.npz", out=str(out),
                        epochs_completed=1, saved_epoch=1)
    runs._finish(None, -signal.SIGKILL)
    status = runs.status()
    assert status["state"] == "killed" and status["resumable"] and status["saved_epoch"] == 2
    assert "epoch 2 is intact in runs/run.npz" in status["message"]


def test_a_kill_before_any_save_says_nothing_was_saved(tmp_path):
    runs = TrainingRuns(tmp_path / "runs", log=open(os.devnull, "w"))
    runs._status.update(state="running", running=True, run="runs/run.npz", out=str(tmp_path / "runs" / "run.npz"))
    runs._finish(None, -signal.SIGKILL)
    status = runs.status()
    assert status["state"] == "killed" and not status["resumable"] and "no epoch had been saved" in status["message"]


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="Linux's scheduling policies")
def test_the_training_process_runs_on_the_cpu_the_class_leaves_idle(server):
    server.post("/api/train/start", {"settings": LONG})
    pid = server.wait(lambda s: s["epochs_completed"] >= 1)["pid"]
    try:
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE and os.getpriority(os.PRIO_PROCESS, pid) == train_api.NICE
    finally:
        server.post("/api/train/stop")
        server.wait(ended)
