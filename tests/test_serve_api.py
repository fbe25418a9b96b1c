"""`digitnet serve`'s HTTP side: routes, parity with `predict --json`, and the guards of a local server.

The server runs in a thread on 127.0.0.1, port 0; requests go through `requests` or, for malformed
or slow clients, a raw socket.
"""

from __future__ import annotations

import io
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw

from helpers import run_cli, write_mnist
from digitnet import checkpoint, metrics, predict
from digitnet.serve import guards
from digitnet.data import load_pair
from digitnet.network import Network
from digitnet.serve import api
from digitnet.serve import server as serving
from test_images import png_header_only

MB = 1024 * 1024


def drawing(shape: str = "seven", side: int = 280, mode: str = "RGBA", fmt: str = "PNG") -> bytes:
    """A canvas-like picture of a digit: dark round strokes on white, as the page sends them."""
    image = Image.new(mode, (side, side), "white")
    pen = ImageDraw.Draw(image)
    s = side / 280
    lines = {"seven": [(80, 60), (200, 60), (120, 230)], "one": [(140, 50), (140, 230)],
             "four": [(150, 50), (70, 170), (210, 170)], "zero": None}[shape]
    if lines is None:
        pen.ellipse([90 * s, 50 * s, 190 * s, 230 * s], outline="black", width=int(16 * s))
    else:
        pen.line([(x * s, y * s) for x, y in lines], fill="black", width=int(16 * s), joint="curve")
    if shape == "four":
        pen.line([(170 * s, 110 * s), (170 * s, 240 * s)], fill="black", width=int(16 * s))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    network = Network([784, 20, 10], rng=np.random.default_rng(3))
    metadata = {"epochs_completed": 7, "test_accuracy": 0.5, "hyperparameters": {"learning_rate": 3.0,
                                                                                 "batch_size": 10}}
    return checkpoint.save(tmp_path_factory.mktemp("model") / "model.npz", network, metadata)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mnist(tmp_path_factory.mktemp("data") / "mnist")


class Running:
    """A server answering in a thread (``serving.start_in_thread``) and its base URL."""

    def __init__(self, recogniser, **options):
        self.recogniser = recogniser
        self.httpd = serving.start_in_thread(recogniser, **options)
        self.port = self.httpd.port
        self.url = self.httpd.url

    @property
    def served(self):
        """What the routes work on: .models, .inside, .training."""
        return self.httpd.served

    def stop(self):
        self.httpd.stop()


@pytest.fixture(scope="module")
def server(model_file, data_dir):
    running = Running(api.Recogniser(checkpoint.load(model_file), str(model_file), "best", data_dir),
                      max_upload=MB, timeout=1.0)
    yield running
    running.stop()


def raw(server, data: bytes, shutdown_write: bool = False, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection and return everything the server answers before closing."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as connection:
        connection.sendall(data)
        if shutdown_write:
            connection.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# ---------------------------------------------------------------------------
# The page


@pytest.mark.parametrize("path, kind", [("/", "text/html"), ("/app.js", "text/javascript"),
                                        ("/style.css", "text/css"), ("/favicon.svg", "image/svg+xml")])
def test_static_files(server, path, kind):
    response = requests.get(server.url + path)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(kind)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_page_uses_no_external_resources(server):
    for path in ("/", "/app.js", "/style.css"):
        text = requests.get(server.url + path).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
        assert "@import" not in text and "@font-face" not in text


def test_head_has_no_body(server):
    response = requests.head(server.url + "/")
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["Content-Length"]) > 1000


@pytest.mark.parametrize("path", ["/../setup.cfg", "/%2e%2e/setup.cfg", "/static/app.js", "/index.html",
                                  "/..%2f..%2fetc%2fpasswd", "//etc/passwd", "/static/", "/digitnet/cli.py",
                                  "/app.js/..", "/nothing"])
def test_only_the_fixed_files_are_served(server, path):
    answer = raw(server, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    status, body = status_and_json(answer)
    assert status == 404 and "error" in body


def test_every_module_the_page_imports_is_served_as_javascript(server):
    import re

    html = requests.get(server.url + "/").text
    pending, seen = re.findall(r'<script type="module" src="(/[\w.-]+\.js)">', html), set()
    assert pending == ["/app.js"]
    while pending:
        path = pending.pop()
        seen.add(path)
        response = requests.get(server.url + path)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/javascript"), path
        assert "https://" not in response.text and "//cdn" not in response.text, path
        pending += [f"/{name}" for name in re.findall(r'from "\./([\w.-]+\.js)"', response.text)
                    if f"/{name}" not in seen]
    assert len(seen) > 2  # the entry module and the modules it imports


# ---------------------------------------------------------------------------
# The API


def test_predict_answers_like_predict_json(server, model_file, tmp_path):
    for name, body in (("seven.png", drawing("seven")), ("four.jpg", drawing("four", mode="RGB", fmt="JPEG")),
                       ("zero.png", drawing("zero", side=500, mode="L"))):
        (tmp_path / name).write_bytes(body)
        response = requests.post(server.url + "/api/predict", data=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        cli = json.loads(run_cli("predict", tmp_path / name, "--model", model_file, "--json").stdout)
        assert answer["digit"] == cli["digit"]
        assert answer["confidence"] == cli["confidence"]   # the same rounding: exactly equal
        assert answer["scores"] == cli["scores"]
        grid = np.array(answer["input"])
        assert grid.shape == (28, 28) and grid.min() >= 0 and grid.max() <= 1 and grid.max() > 0.9
        expected = predict.predict_bytes(server.recogniser.network, body)
        np.testing.assert_allclose(grid, expected.image.reshape(28, 28), atol=1e-4)
        # The route's text (Prediction.to_json) is json.dumps of the answer's dict, to the byte.
        assert response.content == json.dumps(expected.to_dict(with_input=True), separators=(",", ":")).encode()
        assert response.headers["Cache-Control"] == "no-store"


def test_predict_says_when_the_picture_does_not_look_like_a_digit(server, model_file, tmp_path):
    """/api/predict carries predict --json's verdict: "looks_like_a_digit", and "doubt" when false."""
    picture = Image.new("RGBA", (280, 280), "white")
    ImageDraw.Draw(picture).line([(70, 70), (210, 210)], fill="black", width=20)
    ImageDraw.Draw(picture).line([(210, 70), (70, 210)], fill="black", width=20)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    (tmp_path / "x.png").write_bytes(buffer.getvalue())
    answer = requests.post(server.url + "/api/predict", data=buffer.getvalue()).json()
    cli = json.loads(run_cli("predict", tmp_path / "x.png", "--model", model_file, "--json").stdout)
    assert answer["looks_like_a_digit"] is False and answer["doubt"] == cli["doubt"]
    assert answer["doubt"].startswith("two crossing strokes")
    seven = requests.post(server.url + "/api/predict", data=drawing("seven")).json()
    assert seven["looks_like_a_digit"] is True and "doubt" not in seven


def test_model_info(server):
    info = requests.get(server.url + "/api/model").json()
    assert info["file"] == "model.npz" and info["sizes"] == [784, 20, 10]
    assert info["cost"] == "quadratic" and info["dtype"] == "float32"
    assert info["epochs"] == 7 and info["test_accuracy"] == 0.5 and info["learning_rate"] == 3.0
    assert info["test_data"] is True and info["max_upload"] == MB


def test_model_info_of_a_textbook_json_network(tmp_path, data_dir):
    from test_textbook_json import network2_file

    path = network2_file(tmp_path / "net.json", Network([784, 9, 10], rng=np.random.default_rng(0)))
    recogniser = api.Recogniser(checkpoint.load(path), str(path), "best", data_dir)
    info = recogniser.model_info()
    assert info["sizes"] == [784, 9, 10] and info["cost"] == "cross-entropy"
    assert "network2.py" in info["format"] and info["epochs"] is None and info["test_accuracy"] is None


def test_evaluate_measures_the_test_split(server, data_dir):
    response = requests.post(server.url + "/api/evaluate")
    assert response.status_code == 200, response.text
    result = response.json()
    images, labels = load_pair(data_dir, "t10k")
    from digitnet.data import Split

    expected = metrics.accuracy(server.recogniser.network, Split("test", images, labels))
    assert result["total"] == 200 and result["accuracy"] == pytest.approx(expected)


def test_evaluate_runs_one_at_a_time(server):
    assert server.recogniser._evaluating.acquire()
    try:
        response = requests.post(server.url + "/api/evaluate")
    finally:
        server.recogniser._evaluating.release()
    assert response.status_code == 409 and "already running" in response.json()["error"]


def test_evaluate_without_test_files_says_so(model_file, tmp_path):
    running = Running(api.Recogniser(checkpoint.load(model_file), str(model_file), "best", tmp_path / "empty"))
    try:
        assert requests.get(running.url + "/api/model").json()["test_data"] is False
        response = requests.post(running.url + "/api/evaluate")
        assert response.status_code == 503
        assert "digitnet download" in response.json()["error"] and "--data-dir" in response.json()["error"]
    finally:
        running.stop()


def test_a_model_that_cannot_read_digits_is_refused(tmp_path):
    path = checkpoint.save(tmp_path / "small.npz", Network([10, 3, 10], rng=np.random.default_rng(0)), {})
    with pytest.raises(api.ModelError, match="784 inputs and 10 outputs"):
        api.Recogniser(checkpoint.load(path), str(path))


# ---------------------------------------------------------------------------
# Errors: JSON, the right status, the same messages as `predict`


def test_unusable_pictures_get_predicts_messages(server, tmp_path, model_file):
    blank = io.BytesIO()
    Image.new("L", (100, 100), 255).save(blank, "PNG")
    cases = {"garbage.png": b"\x89PNG\r\n\x1a\n garbage", "notes.txt": b"just text", "blank.png": blank.getvalue(),
             "bomb.png": png_header_only(40000, 40000)}
    for name, body in cases.items():
        (tmp_path / name).write_bytes(body)
        response = requests.post(server.url + "/api/predict", data=body)
        assert response.status_code == 400, name
        cli = json.loads(run_cli("predict", tmp_path / name, "--model", model_file, "--json", expect=1).stdout)
        assert response.json() == {"error": cli["error"]}, name


def test_empty_body(server):
    response = requests.post(server.url + "/api/predict", data=b"")
    assert response.status_code == 400 and "empty body" in response.json()["error"]


def test_upload_over_the_limit_is_refused_before_reading(server):
    # Only the headers are sent: the 413 must come from Content-Length alone.
    answer = raw(server, (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {2 * MB}\r\n\r\n"
                          ).encode())
    status, body = status_and_json(answer)
    assert status == 413 and "--max-upload" in body["error"]
    assert requests.get(server.url + "/api/model").status_code == 200


@pytest.mark.parametrize("headers, status", [("", 411), ("Content-Length: -5\r\n", 400),
                                             ("Content-Length: lots\r\n", 400)])
def test_bad_content_length(server, headers, status):
    answer = raw(server, f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    assert status_and_json(answer)[0] == status


def test_body_shorter_than_its_content_length(server):
    answer = raw(server, b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n\x89PNG",
                 shutdown_write=True)
    status, body = status_and_json(answer)
    assert status == 400 and "Content-Length" in body["error"]


def test_a_stalled_client_is_dropped_and_others_are_served(server):
    with socket.create_connection(("127.0.0.1", server.port)) as stalled:
        stalled.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n\x89PNG")
        # While it stalls, others are answered ...
        assert requests.post(server.url + "/api/predict", data=drawing()).status_code == 200
        # ... and after the timeout (1 s in this fixture) the server hangs up on it.
        stalled.settimeout(10)
        start = time.monotonic()
        assert stalled.recv(65536) == b""
        assert time.monotonic() - start < 9


@pytest.mark.parametrize("request_bytes", [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x02\x00\x01",
                                           b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"])
def test_malformed_http_gets_an_error_and_the_server_goes_on(server, request_bytes):
    answer = raw(server, request_bytes, shutdown_write=True)
    assert answer == b"" or int(answer.split()[1]) >= 400
    assert b"Traceback" not in answer
    assert requests.get(server.url + "/api/model").status_code == 200


def test_unknown_route_and_wrong_method(server):
    assert requests.get(server.url + "/api/nothing").status_code == 404
    response = requests.get(server.url + "/api/predict")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert "error" in response.json()
    assert requests.put(server.url + "/").status_code == 405
    assert requests.delete(server.url + "/api/model").status_code == 405
    assert requests.options(server.url + "/api/predict").status_code == 405


def test_unexpected_errors_are_a_json_500_without_traceback(server, monkeypatch, capfd):
    def broken():
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr(server.recogniser, "model_info", broken)
    response = requests.get(server.url + "/api/model")
    assert response.status_code == 500
    assert "error" in response.json() and "Traceback" not in response.text and "unforeseen" not in response.text
    assert "RuntimeError: something unforeseen" in capfd.readouterr().err  # logged on the server's stderr
    monkeypatch.undo()
    assert requests.get(server.url + "/api/model").status_code == 200


# ---------------------------------------------------------------------------
# Another web site must not drive it


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "192.168.1.5:8000", "127.0.0.1.evil.example"])
def test_foreign_host_header_is_refused(server, host):
    response = requests.get(server.url + "/api/model", headers={"Host": host})
    assert response.status_code == 403 and "localhost" in response.json()["error"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "app.localhost"])
def test_loopback_host_names_are_accepted(server, host):
    response = requests.get(server.url + "/api/model", headers={"Host": f"{host}:{server.port}"})
    assert response.status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1"])
def test_cross_origin_posts_are_refused(server, origin):
    for route in ("/api/predict", "/api/evaluate"):
        response = requests.post(server.url + route, data=drawing(), headers={"Origin": origin})
        assert response.status_code == 403 and "cross-origin" in response.json()["error"]


def test_same_origin_posts_are_answered(server):
    response = requests.post(server.url + "/api/predict", data=drawing(), headers={"Origin": server.url})
    assert response.status_code == 200


def test_no_cors_headers(server):
    for response in (requests.get(server.url + "/api/model", headers={"Origin": "http://evil.example"}),
                     requests.options(server.url + "/api/predict", headers={"Origin": "http://evil.example"}),
                     requests.post(server.url + "/api/predict", data=drawing())):
        assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_loopback_names():
    assert all(map(guards.is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "localhost", "LOCALHOST", "a.localhost"]))
    assert not any(map(guards.is_loopback, ["0.0.0.0", "::", "192.168.0.2", "example.com", "localhost.evil.com"]))
    assert guards.host_name("localhost:80") == "localhost" and guards.host_name("[::1]:80") == "::1"


# ---------------------------------------------------------------------------
# Many clients at once


def test_64_concurrent_clients_get_their_own_answers(server):
    shapes = ["seven", "one", "four", "zero"]
    bodies = {shape: drawing(shape) for shape in shapes}
    expected = {shape: predict.predict_bytes(server.recogniser.network, body).to_dict(with_input=True)
                for shape, body in bodies.items()}

    def ask(i):
        shape = shapes[i % len(shapes)]
        response = requests.post(server.url + "/api/predict", data=bodies[shape], timeout=60)
        return shape, response.status_code, response.json()

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(ask, range(64)))
    for shape, status, answer in results:
        assert status == 200 and answer == expected[shape]


def test_a_trickling_body_runs_into_the_deadline(model_file, data_dir):
    running = Running(api.Recogniser(checkpoint.load(model_file), str(model_file), "best", data_dir), timeout=0.5)
    try:
        with socket.create_connection(("127.0.0.1", running.port)) as slow:
            slow.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
            slow.settimeout(0.1)
            closed = False
            for _ in range(100):  # one byte every 0.1 s: never silent for the 0.5 s timeout
                try:
                    slow.sendall(b"x")
                    if slow.recv(1) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
            assert closed  # dropped after about 0.5 s + 1000 / 65536 s, long before the 1000 bytes
        assert requests.get(running.url + "/api/model").status_code == 200
    finally:
        running.stop()


def test_expect_100_continue(server):
    big = f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {2 * MB}\r\nExpect: 100-continue\r\n\r\n"
    status, body = status_and_json(raw(server, big.encode()))
    assert status == 413 and "--max-upload" in body["error"]
    small = drawing()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(small)}\r\n"
                           "Expect: 100-continue\r\nConnection: close\r\n\r\n".encode())
        assert connection.recv(64).startswith(b"HTTP/1.1 100 Continue")
        connection.sendall(small)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert status_and_json(answer[answer.index(b"HTTP/1.1 200"):])[0] == 200


def test_warnings_come_through_like_predicts(server, model_file, tmp_path):
    image = Image.new("L", (400, 200), 255)
    pen = ImageDraw.Draw(image)
    pen.line([(60, 30), (60, 170)], fill=0, width=14)                       # a 1 ...
    pen.line([(220, 40), (340, 40), (260, 170)], fill=0, width=14)          # ... well apart from a 7
    image.save(tmp_path / "seventeen.png")
    answer = requests.post(server.url + "/api/predict", data=(tmp_path / "seventeen.png").read_bytes()).json()
    cli = json.loads(run_cli("predict", tmp_path / "seventeen.png", "--model", model_file, "--json").stdout)
    assert answer["warnings"] == cli["warnings"] and "side by side" in answer["warnings"][0]
