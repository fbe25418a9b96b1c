"""`digitnet serve`'s connections on uvicorn: idle and slow clients, the parser's refusals, JSON
errors below the app, chunked bodies, and event streams that hold no thread.

Each server here runs on 127.0.0.1:0 in a thread (``serving.start_in_thread``) with short deadlines,
so that the cut-offs happen within the test; no test asserts on wall time.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from helpers import write_mnist
from digitnet import checkpoint
from digitnet.network import Network
from digitnet.serve import api
from digitnet.serve import server as serving
from digitnet.serve.models import Models
from digitnet.serve.training import TrainingRuns
from test_serve_api import MB, drawing, raw, status_and_json

HOST = "Host: 127.0.0.1\r\n"
CLOSE = "Connection: close\r\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mnist(tmp_path_factory.mktemp("data") / "mnist")


@pytest.fixture(scope="module")
def recogniser(tmp_path_factory, data_dir):
    path = checkpoint.save(tmp_path_factory.mktemp("model") / "model.npz",
                           Network([784, 12, 10], rng=np.random.default_rng(5)), {})
    return api.Recogniser(checkpoint.load(path), str(path), "best", data_dir)


@pytest.fixture(scope="module")
def server(recogniser):
    running = serving.start_in_thread(recogniser, max_upload=MB, timeout=0.5, keepalive=0.5)
    yield running
    running.stop()


def closes_within(connection: socket.socket, seconds: float) -> bool:
    """Whether the server hangs up on ``connection`` within ``seconds`` (reading what it sends)."""
    connection.settimeout(seconds)
    try:
        while connection.recv(65536):
            pass
    except socket.timeout:
        return False
    except ConnectionResetError:
        pass
    return True


def test_fifty_idle_sockets_do_not_keep_a_new_client_waiting(server):
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    halfway = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
    try:
        for connection in halfway:
            connection.sendall(b"GET /api/model HTTP/1.1\r\nHo")
        time.sleep(0.1)  # all accepted, none complete
        for _ in range(3):
            assert requests.get(server.url + "/api/model", timeout=5).status_code == 200
        # The idle ones are closed after the keep-alive time (0.5 s here), the half-sent after the deadline.
        assert all(closes_within(connection, 10) for connection in idle + halfway)
    finally:
        for connection in idle + halfway:
            connection.close()


def test_a_header_trickle_is_cut_off_at_the_deadline(server):
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(b"GET /api/model HTTP/1.1\r\n")
        sent = 0
        for sent in range(1, 101):  # a header byte every 0.1 s: the 0.5 s deadline cuts it after about 5
            try:
                slow.sendall(b"X")
            except OSError:
                break
            if closes_within(slow, 0.1):
                break
        assert sent < 100
    assert requests.get(server.url + "/api/model", timeout=5).status_code == 200


@pytest.mark.parametrize("length", ["\u00b2", "1_1", "+11", "11, 11", "0x0b", " "])
def test_content_lengths_int_would_take_are_refused_by_the_parser(server, length):
    request = f"POST /api/predict HTTP/1.1\r\n{HOST}Content-Length: {length}\r\n\r\nhello world".encode()
    status, body = status_and_json(raw(server, request))
    assert status == 400 and "malformed" in body["error"]


def test_duplicated_or_conflicting_lengths_are_refused(server):
    for headers in ("Content-Length: 11\r\nContent-Length: 11\r\n", "Content-Length: 5\r\nContent-Length: 11\r\n",
                    "Content-Length: 11\r\nTransfer-Encoding: chunked\r\n"):
        answer = raw(server, f"POST /api/predict HTTP/1.1\r\n{HOST}{headers}\r\nhello world".encode())
        head = answer.partition(b"\r\n\r\n")[0].lower()
        assert status_and_json(answer)[0] == 400 and b"content-security-policy" in head


def test_an_upgrade_with_a_body_is_refused_and_one_without_is_answered(server):
    """The parser stops at an Upgrade; a body after it would never reach the app (a reviewer's find)."""
    upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\n"
    refused = raw(server, f"POST /api/predict HTTP/1.1\r\n{HOST}{upgrade}Content-Length: 3\r\n\r\nabc".encode())
    status, body = status_and_json(refused)
    assert status == 400 and "does not upgrade" in body["error"]
    answered = raw(server, f"GET /api/model HTTP/1.1\r\n{HOST}{upgrade}{CLOSE}\r\n".encode())
    assert answered.startswith(b"HTTP/1.1 200")


def test_a_get_with_a_body_is_not_answered_as_a_second_request(server):
    hidden = f"GET /api/nothing HTTP/1.1\r\n{HOST}\r\n".encode()
    request = (f"GET /api/model HTTP/1.1\r\n{HOST}Content-Length: {len(hidden)}\r\n\r\n".encode() + hidden
               + f"GET /api/models HTTP/1.1\r\n{HOST}Connection: close\r\n\r\n".encode())
    answer = raw(server, request)
    assert answer.count(b"HTTP/1.1 ") == 2 and b" 404 " not in answer
    assert answer.startswith(b"HTTP/1.1 200") and b"\r\n\r\nHTTP/1.1 200" not in answer[:20]


@pytest.mark.parametrize("request_bytes, status", [
    (f"GET /api/nothing HTTP/1.1\r\n{HOST}{CLOSE}\r\n", 404),
    (f"GET /api/model/ HTTP/1.1\r\n{HOST}{CLOSE}\r\n", 404),
    (f"GET /%2e%2e/setup.cfg HTTP/1.1\r\n{HOST}{CLOSE}\r\n", 404),
    (f"DELETE /api/predict HTTP/1.1\r\n{HOST}{CLOSE}\r\n", 405),
    (f"POST /api/predict HTTP/1.1\r\n{HOST}Content-Length: {2 * MB}\r\n\r\n", 413),
    (f"POST /api/models/select HTTP/1.1\r\n{HOST}Content-Length: {65 * 1024}\r\n\r\n", 413),
    (f"GET /api/model HTTP/1.1\r\n{HOST}X-Big: {'a' * 70000}\r\n\r\n", 431),
    ("GET /api/model HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403),
    ("GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403),
    ("NOT HTTP AT ALL\r\n\r\n", 400),
])
def test_every_error_is_json_with_the_security_headers(server, request_bytes, status):
    answer = raw(server, request_bytes.encode())  # refused before any body is read: closed at once
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    code, body = status_and_json(answer)
    assert code == status and body["error"]
    assert "content-type: application/json" in head and "content-security-policy:" in head
    assert "access-control-" not in head


def test_deeply_nested_json_is_a_400_not_a_500(server):
    for route in ("/api/models/select", "/api/teach/forget"):
        response = requests.post(server.url + route, data=b"[" * 20000, timeout=10)
        assert response.status_code == 400 and response.json()["error"] == "the body is not JSON"


def test_a_chunked_upload_is_read_and_one_over_the_limit_cut_off(server, recogniser):
    def chunked(body: bytes, size: int = 4096) -> bytes:
        parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
        return b"".join(parts) + b"0\r\n\r\n"

    head = f"POST /api/predict HTTP/1.1\r\n{HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
    status, body = status_and_json(raw(server, head + chunked(drawing())))
    assert status == 200 and body == recogniser.predict(drawing())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(head)
        sent = 0
        try:
            while sent < 3 * MB:  # the server answers 413 and hangs up once it is past the 1 MB limit
                connection.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
                sent += 0x10000
        except OSError:
            pass
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status, body = status_and_json(answer)
    assert status == 413 and "--max-upload" in body["error"]


# ---------------------------------------------------------------------------
# Event streams


def open_streams(port: int, count: int) -> list[socket.socket]:
    streams = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(f"GET /api/train/events HTTP/1.1\r\n{HOST}\r\n".encode())
        connection.setblocking(False)
        streams.append(connection)
    return streams


def read_events(streams: list[socket.socket], until, seconds: float = 60) -> list[list[dict]]:
    """Every event each stream receives, read with one selector, until ``until(events of a stream)``
    holds for all of them."""
    received = {connection: b"" for connection in streams}
    selector = selectors.DefaultSelector()
    for connection in streams:
        selector.register(connection, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds

    def events(data: bytes) -> list[dict]:
        return [json.loads(line[6:]) for line in data.decode().split("\n") if line.startswith("data: ")]

    while time.monotonic() < deadline and not all(until(events(data)) for data in received.values()):
        for key, _ in selector.select(0.5):
            received[key.fileobj] += key.fileobj.recv(65536)
    selector.close()
    return [events(received[connection]) for connection in streams]


def test_45_event_streams_hold_no_thread_and_each_gets_every_epoch(tmp_path, data_dir, recogniser):
    training = TrainingRuns(tmp_path / "runs", data_dir)
    models = Models(recogniser, tmp_path / "runs", tmp_path, data_dir, training)
    running = serving.start_in_thread(recogniser, models=models, training=training)
    streams = open_streams(running.port, 45)  # more than the thread pool's 40 tokens
    try:
        first = read_events(streams, lambda events: len(events) >= 1, seconds=30)
        assert all(events and events[0]["state"] == "idle" for events in first)
        # While all 45 are open, requests that need the thread pool are answered.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: requests.post(running.url + "/api/predict", data=drawing(), timeout=20),
                                    range(8)))
        assert all(answer.status_code == 200 for answer in answers)
        started = requests.post(running.url + "/api/train/start", timeout=10,
                                json={"settings": {"hidden_sizes": [8], "epochs": 3, "validation_size": 100}})
        assert started.status_code == 202, started.text
        seen = read_events(streams, lambda events: any(e["state"] == "finished" for e in events))
        for events in seen:
            finished = [e for e in events if e["state"] == "finished"]
            assert finished and [h["epoch"] for h in finished[-1]["history"]] == [1, 2, 3]
            epochs = sorted({e["epochs_completed"] for e in events})
            assert epochs[-1] == 3
    finally:
        for connection in streams:
            connection.close()
        training.shutdown()
        running.stop()
    assert not running._thread.is_alive()


def test_stopping_ends_open_event_streams(tmp_path, data_dir, recogniser):
    training = TrainingRuns(tmp_path / "runs", data_dir)
    running = serving.start_in_thread(recogniser, models=Models(recogniser, tmp_path / "runs", tmp_path, data_dir,
                                                                training), training=training)
    streams = open_streams(running.port, 3)
    try:
        read_events(streams, lambda events: len(events) >= 1, seconds=30)
        running.stop()
        assert not running._thread.is_alive()
        for connection in streams:
            connection.setblocking(True)
            assert closes_within(connection, 10)
    finally:
        for connection in streams:
            connection.close()
        training.shutdown()


class FakeRuns:
    """What TrainingEvents reads of a TrainingRuns: status(), wait_for_change(), closed."""

    def __init__(self):
        import threading

        self.closed = False
        self.version = 1
        self.changed = threading.Condition()

    def status(self):
        with self.changed:
            return {"state": "idle", "version": self.version}

    def change(self):
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def wait_for_change(self, seen, timeout):
        with self.changed:
            if self.changed.wait_for(lambda: self.version != seen or self.closed, timeout):
                return {"state": "running", "version": self.version}
        return None


def test_a_quiet_stream_gets_comment_lines_then_the_change():
    import asyncio

    from digitnet.serve.events import TrainingEvents

    runs = FakeRuns()
    events = TrainingEvents(runs, keepalive=0.05)

    async def follow():
        received = []
        async for chunk in events.stream():
            received.append(chunk)
            if chunk.startswith(b":") and len(received) == 3:
                asyncio.get_running_loop().call_soon(runs.change)  # from the loop: the watcher thread sees it
            if b'"running"' in chunk:
                events.close()
        return received

    received = asyncio.run(asyncio.wait_for(follow(), 30))
    assert received[0] == b'data: {"state":"idle","version":1}\n\n'
    assert received[1] == received[2] == b": still here\n\n"
    assert received[-1] == b'data: {"state":"running","version":2}\n\n'


def test_uploads_queue_among_themselves_and_leave_threads_for_the_other_routes(recogniser, monkeypatch):
    import threading

    running = serving.start_in_thread(recogniser)  # --workers 0: at most 4 uploads at once
    release, lock = threading.Event(), threading.Lock()
    inside, most = [0], [0]

    def slow_predict(body):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        release.wait(20)
        with lock:
            inside[0] -= 1
        return b'{"digit":7}'

    monkeypatch.setattr(recogniser, "predict_json", slow_predict)
    try:
        with ThreadPoolExecutor(12) as pool:
            asked = [pool.submit(requests.post, running.url + "/api/predict", data=b"x", timeout=30) for _ in range(12)]
            time.sleep(0.3)  # all 12 sent: 4 computing, 8 queued
            assert requests.get(running.url + "/api/model", timeout=10).status_code == 200
            assert requests.get(running.url + "/api/models", timeout=10).status_code == 200
            release.set()
            assert all(future.result().status_code == 200 for future in asked)
        assert most[0] == 4
    finally:
        release.set()
        running.stop()
