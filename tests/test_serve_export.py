"""The page's "Download as ONNX": GET /api/models/download?id=ID&format=onnx and the link in the models list."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from digitnet import checkpoint
from digitnet.network import Network
from digitnet.serve import api
from digitnet.serve.models import Models
from test_serve_api import Running

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture
def server(tmp_path):
    """Two models in the working directory (best and last weights; softmax), served from a thread."""
    best = Network([784, 12, 10], rng=np.random.default_rng(1))
    path = checkpoint.save(tmp_path / "model.npz", Network([784, 12, 10], rng=np.random.default_rng(0)),
                           {"epochs_completed": 2, "best_epoch": 1, "test_accuracy": 0.9}, best_network=best)
    checkpoint.save(tmp_path / "soft max.npz", Network([784, 8, 10], cost="log-likelihood",
                                                       rng=np.random.default_rng(2)), {"epochs_completed": 1})
    (tmp_path / "broken.npz").write_bytes(b"no")
    recogniser = api.Recogniser(checkpoint.load(path), str(path), "best", None)
    running = Running(recogniser, models=Models(recogniser, runs_dir=tmp_path / "runs", workdir=tmp_path))
    running.best, running.work = best, tmp_path
    yield running
    running.stop()


def download(server, model_id, **params):
    return requests.get(server.url + "/api/models/download", params={"id": model_id, **params}, timeout=30)


def test_the_route_converts_the_best_weights_to_a_valid_onnx_attachment(server):
    assert requests.get(server.url + "/api/models", timeout=10).json()["onnx"] is True
    answer = download(server, "model.npz", format="onnx")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="model.onnx"'
    model = onnx.load_from_string(answer.content)
    onnx.checker.check_model(model)
    x = np.random.default_rng(3).random((5, 784), dtype=np.float32)
    session = ort.InferenceSession(answer.content, providers=["CPUExecutionProvider"])
    activations, digits = session.run(None, {"pixels": x})
    np.testing.assert_allclose(activations, server.best.feedforward(x), rtol=0, atol=1e-5)
    softmax = download(server, "soft max.npz", format="onnx")
    assert softmax.headers["Content-Disposition"] == 'attachment; filename="soft_max.onnx"'  # a safe name
    assert [n.op_type for n in onnx.load_from_string(softmax.content).graph.node][-2] == "Softmax"
    assert download(server, "model.npz").content == (server.work / "model.npz").read_bytes()  # the file itself


def test_the_conversion_is_kept_until_the_file_changes(server, monkeypatch):
    from digitnet.export import onnx as exporting

    calls = []
    real = exporting.to_onnx
    monkeypatch.setattr(exporting, "to_onnx", lambda *args: calls.append(1) or real(*args))
    first = download(server, "model.npz", format="onnx").content
    assert download(server, "model.npz", format="onnx").content == first and len(calls) == 1
    replaced = Network([784, 12, 10], rng=np.random.default_rng(4))
    path = checkpoint.save(server.work / "model.npz", replaced, {"epochs_completed": 1})
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)  # a new mtime even on a coarse clock
    again = onnx.load_from_string(download(server, "model.npz", format="onnx").content)
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(again.graph.initializer[0]), replaced.weights[0])
    assert len(calls) == 2


@pytest.mark.parametrize("model_id, params, status, message", [
    ("model.npz", {"format": "pdf"}, 400, "format must be onnx"),
    ("broken.npz", {"format": "onnx"}, 400, "not a valid .npz checkpoint"),
    ("../model.npz", {"format": "onnx"}, 404, "no model"),
    ("nothing.npz", {"format": "onnx"}, 404, "no model"),
])
def test_bad_requests_are_json_errors(server, model_id, params, status, message):
    answer = download(server, model_id, **params)
    assert answer.status_code == status and message in answer.json()["error"]


def test_without_the_onnx_package_the_page_offers_no_onnx_and_the_route_says_why(server, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed: find_spec says None, import fails
    assert requests.get(server.url + "/api/models", timeout=10).json()["onnx"] is False
    answer = download(server, "model.npz", format="onnx")
    assert answer.status_code == 501 and "pip install 'digitnet[onnx]'" in answer.json()["error"]


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="headless Chromium is not installed")
def test_the_models_list_shows_download_as_onnx_beside_download(server):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        browser.get(server.url + "/")
        links = WebDriverWait(browser, 15).until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('li.model')].map(li => [li.dataset.id,"
            " [...li.querySelectorAll('.model-actions a')].map(a => [a.textContent, a.getAttribute('href'), a.download])])"
            ".filter(([id]) => id === 'model.npz' || id === 'broken.npz')") or None)
        rows = dict(links)
        assert rows["model.npz"] == [["Download", "/api/models/download?id=model.npz", "model.npz"],
                                     ["Download as ONNX", "/api/models/download?id=model.npz&format=onnx", "model.onnx"]]
        assert [text for text, _, _ in rows["broken.npz"]] == ["Download"]  # nothing to convert
        assert browser.find_element(By.CSS_SELECTOR, 'li.model[data-id="model.npz"] a.onnx').is_displayed()
    finally:
        browser.quit()
