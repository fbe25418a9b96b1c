"""Downloads against a real HTTP server on 127.0.0.1 (mirrors, retries, checksums, atomic files),
checksum files, and `--from` imports.

Every test talks only to a ThreadingHTTPServer started here (port 0) or to a
port nothing listens on; nothing reaches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import signal
import socket
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import idx_bytes, synthetic_digits, write_mnist
from test_data import TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from digitnet import data, download as fetching
from digitnet.cli import main
from digitnet.data import DataError, load_mnist
from digitnet.download import download, download_file, import_files, read_checksums

FILES = data.FILES
FAST = {"backoff": 0, "progress": False}


def synthetic_files() -> dict[str, bytes]:
    train_images, train_labels = synthetic_digits(120, seed=1)
    test_images, test_labels = synthetic_digits(40, seed=2)
    arrays = dict(zip(FILES, (train_images, train_labels, test_images, test_labels)))
    return {name: gzip.compress(idx_bytes(array), mtime=0) for name, array in arrays.items()}


CONTENT = synthetic_files()
CHECKSUMS = {name: hashlib.sha256(body).hexdigest() for name, body in CONTENT.items()}


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client hanging up mid-body (as these tests make it do) is expected


class Server:
    """An HTTP server whose behaviour each test sets: ``server.handle = fn(request, mirror, name)``.

    Paths are /<mirror>/<file name>; ``requests`` counts (mirror, name) pairs.
    """

    def __init__(self):
        self.requests: Counter = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.handle = serve
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                _, mirror, name = self.path.split("/", 2)
                with outer.lock:
                    outer.requests[(mirror, name)] += 1
                outer.handle(self, mirror, name)

            def log_message(self, *args):
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, mirror: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mirror}/"

    def count(self, mirror: str, name: str | None = None) -> int:
        return sum(n for (m, f), n in self.requests.items() if m == mirror and name in (None, f))

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def send(request, body: bytes, status: int = 200, length: int | None = None, close: bool = False):
    request.send_response(status)
    request.send_header("Content-Type", "application/octet-stream")
    request.send_header("Content-Length", str(len(body) if length is None else length))
    if close:
        request.send_header("Connection", "close")
        request.close_connection = True
    request.end_headers()
    request.wfile.write(body)
    request.wfile.flush()


def send_half(request, body: bytes):
    """Headers promising all of ``body``, then only its first half: a mirror that stalls mid-file."""
    request.send_response(200)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body[: len(body) // 2])
    request.wfile.flush()


def patch_temp_file_writes(monkeypatch, write):
    """Route every write to a download's temporary ``.part`` file through ``write(file, block)``."""
    real_open = open

    class TempFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, block):
            return write(self.f, block)

    def fake_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return TempFile(f) if str(path).endswith(".part") and "w" in mode else f

    monkeypatch.setattr("builtins.open", fake_open)


def serve(request, mirror, name):
    """The well-behaved mirror: the synthetic files, 404 for anything else."""
    if name in CONTENT:
        send(request, CONTENT[name])
    else:
        send(request, b"not found", status=404)


def not_found(request, mirror, name):
    send(request, b"<html>404</html>", status=404)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """A proxy from the environment must not take 127.0.0.1 traffic elsewhere."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def dead_url():
    """A URL on a port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def clean(directory: Path) -> list[str]:
    """Names left in the data directory (temp files are dot-files ending in .part)."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def assert_no_temp_files(directory: Path):
    assert not [name for name in clean(directory) if name.endswith(".part") or name.startswith(".")], \
        clean(directory)


def assert_complete(directory: Path):
    for name in FILES:
        assert (directory / name).read_bytes() == CONTENT[name]
    assert_no_temp_files(directory)


# ---------------------------------------------------------------------------
# The happy path


def test_download_fetches_and_verifies_all_four(server, tmp_path):
    target = tmp_path / "data"
    reports = download(target, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    assert [r.name for r in reports] == list(FILES)
    assert all(r.action == "downloaded" and r.source == server.url("m1") + r.name for r in reports)
    assert all(r.official is False for r in reports)
    assert_complete(target)
    assert clean(target) == sorted(FILES)
    assert all(server.count("m1", name) == 1 for name in FILES)
    mnist = load_mnist(target, validation_size=20)
    assert (len(mnist.training), len(mnist.validation), len(mnist.test)) == (100, 20, 40)


def test_mirror_url_without_trailing_slash(server, tmp_path):
    url = download_file(FILES[1], tmp_path, [server.url("m1").rstrip("/")], CHECKSUMS, **FAST)
    assert url == server.url("m1") + FILES[1]
    assert (tmp_path / FILES[1]).read_bytes() == CONTENT[FILES[1]]


def test_existing_files_are_not_downloaded_again(server, tmp_path):
    target = tmp_path / "data"
    download(target, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    reports = download(target, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    assert all(r.action == "present" for r in reports)
    assert sum(server.requests.values()) == 4


def test_decompressed_files_count_as_present(server, tmp_path):
    target = write_mnist(tmp_path / "data", 60, 20, gz=False)
    reports = download(target, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    assert all(r.action == "present" for r in reports)
    assert sum(server.requests.values()) == 0


def test_force_downloads_again(server, tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / FILES[0]).write_bytes(b"an old copy")
    reports = download(target, mirrors=[server.url("m1")], checksums=CHECKSUMS, force=True, **FAST)
    assert all(r.action == "downloaded" for r in reports)
    assert server.count("m1") == 4
    assert_complete(target)


def test_only_missing_files_are_fetched(server, tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / FILES[2]).write_bytes(CONTENT[FILES[2]])
    reports = download(target, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    assert [r.action for r in reports] == ["downloaded", "downloaded", "present", "downloaded"]
    assert server.count("m1", FILES[2]) == 0
    assert_complete(target)


def test_ensure_data_downloads_only_when_something_is_missing(server, tmp_path):
    target = tmp_path / "data"
    fetched = fetching.ensure_data(target, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    assert sorted(r.name for r in fetched) == sorted(FILES)
    assert fetching.ensure_data(target, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST) == []
    assert server.count("m1") == 4


def test_a_file_without_a_checksum_is_refused_before_any_request(server, tmp_path):
    table = dict(CHECKSUMS)
    del table[FILES[3]]
    with pytest.raises(DataError, match=FILES[3]):
        download_file(FILES[3], tmp_path, [server.url("m1")], table, **FAST)
    assert sum(server.requests.values()) == 0


def test_official_checksums_are_used_by_default(server, tmp_path):
    # The synthetic files are not MNIST: against the official table every mirror "fails".
    with pytest.raises(DataError, match="checksum mismatch"):
        download(tmp_path / "data", mirrors=[server.url("m1")], **FAST)
    assert clean(tmp_path / "data") == []


# ---------------------------------------------------------------------------
# Falling back from one mirror to the next


def test_404_on_the_first_mirror_falls_back_to_the_second(server, tmp_path):
    server.handle = lambda req, mirror, name: (not_found if mirror == "m1" else serve)(req, mirror, name)
    reports = download(tmp_path, mirrors=[server.url("m1"), server.url("m2")], checksums=CHECKSUMS,
                       retries=3, **FAST)
    assert all(r.source.startswith(server.url("m2")) for r in reports)
    assert all(server.count("m1", name) == 1 for name in FILES)  # a 404 is not retried
    assert_complete(tmp_path)


def test_checksum_mismatch_on_the_first_mirror_falls_back(server, tmp_path):
    def handle(request, mirror, name):
        if mirror == "m1":
            send(request, CONTENT[name][:-1] + bytes([CONTENT[name][-1] ^ 1]))  # one bit off
        else:
            serve(request, mirror, name)

    server.handle = handle
    url = download_file(FILES[0], tmp_path, [server.url("m1"), server.url("m2")], CHECKSUMS, retries=3, **FAST)
    assert url == server.url("m2") + FILES[0]
    assert server.count("m1") == 1  # a wrong file is not fetched again from the same mirror
    assert (tmp_path / FILES[0]).read_bytes() == CONTENT[FILES[0]]
    assert clean(tmp_path) == [FILES[0]]


def test_checksum_mismatch_everywhere_leaves_nothing(server, tmp_path):
    server.handle = lambda req, mirror, name: send(req, b"an html error page with status 200")
    with pytest.raises(DataError) as excinfo:
        download_file(FILES[1], tmp_path, [server.url("m1"), server.url("m2")], CHECKSUMS, **FAST)
    assert str(excinfo.value).count("checksum mismatch") == 2
    assert clean(tmp_path) == []


# ---------------------------------------------------------------------------
# Retries on the same mirror


def test_5xx_then_success_retries_the_same_mirror(server, tmp_path):
    def handle(request, mirror, name):
        if server.count(mirror, name) <= 2:
            send(request, b"busy", status=503)
        else:
            serve(request, mirror, name)

    server.handle = handle
    url = download_file(FILES[0], tmp_path, [server.url("m1"), server.url("m2")], CHECKSUMS, retries=2, **FAST)
    assert url == server.url("m1") + FILES[0]
    assert server.count("m1", FILES[0]) == 3 and server.count("m2") == 0
    assert clean(tmp_path) == [FILES[0]]


def test_5xx_beyond_the_retries_moves_on(server, tmp_path):
    def handle(request, mirror, name):
        if mirror == "m1":
            send(request, b"oops", status=500)
        else:
            serve(request, mirror, name)

    server.handle = handle
    url = download_file(FILES[0], tmp_path, [server.url("m1"), server.url("m2")], CHECKSUMS, retries=2, **FAST)
    assert url.startswith(server.url("m2"))
    assert server.count("m1") == 3 and server.count("m2") == 1


def test_backoff_sleeps_between_retries(server, tmp_path, monkeypatch):
    sleeps = []
    monkeypatch.setattr(fetching.time, "sleep", sleeps.append)
    server.handle = lambda req, mirror, name: send(req, b"oops", status=502)
    with pytest.raises(DataError):
        download_file(FILES[0], tmp_path, [server.url("m1")], CHECKSUMS, retries=3, backoff=0.25, progress=False)
    assert sleeps == [0.25, 0.5, 1.0]  # exponential, and none after the last attempt
    assert server.count("m1") == 4


def truncated_once(server):
    def handle(request, mirror, name):
        body = CONTENT[name]
        if server.count(mirror, name) == 1:
            send(request, body[: len(body) // 2], length=len(body), close=True)
        else:
            send(request, body)

    return handle


def test_truncated_body_is_retried_and_succeeds(server, tmp_path):
    server.handle = truncated_once(server)
    url = download_file(FILES[0], tmp_path, [server.url("m1")], CHECKSUMS, retries=1, **FAST)
    assert url == server.url("m1") + FILES[0]
    assert server.count("m1", FILES[0]) == 2
    assert (tmp_path / FILES[0]).read_bytes() == CONTENT[FILES[0]]
    assert clean(tmp_path) == [FILES[0]]


def test_truncated_body_without_retries_fails_over(server, tmp_path):
    def handle(request, mirror, name):
        body = CONTENT[name]
        if mirror == "m1":
            send(request, body[: len(body) // 2], length=len(body), close=True)
        else:
            send(request, body)

    server.handle = handle
    url = download_file(FILES[0], tmp_path, [server.url("m1"), server.url("m2")], CHECKSUMS, retries=0, **FAST)
    assert url == server.url("m2") + FILES[0]
    assert server.count("m1") == 1 and server.count("m2") == 1
    assert (tmp_path / FILES[0]).read_bytes() == CONTENT[FILES[0]]
    assert clean(tmp_path) == [FILES[0]]


def test_always_truncated_fails_and_says_so(server, tmp_path):
    def handle(request, mirror, name):
        body = CONTENT[name]
        send(request, body[:100], length=len(body), close=True)

    server.handle = handle
    with pytest.raises(DataError) as excinfo:
        download_file(FILES[0], tmp_path, [server.url("m1")], CHECKSUMS, retries=1, **FAST)
    message = str(excinfo.value)
    assert server.url("m1") + FILES[0] in message
    assert "after 2 attempts" in message
    assert any(word in message for word in ("truncated", "broke off", "connection")), message
    assert clean(tmp_path) == []


def test_read_timeout_on_a_slow_mirror_falls_back(server, tmp_path):
    def handle(request, mirror, name):
        if mirror == "slow":
            server.stop.wait(2.0)  # longer than the read timeout; cut short when the server stops
            if server.stop.is_set():
                return
        serve(request, mirror, name)

    server.handle = handle
    url = download_file(FILES[1], tmp_path, [server.url("slow"), server.url("m2")], CHECKSUMS,
                        retries=1, timeout=(2.0, 0.2), **FAST)
    assert url == server.url("m2") + FILES[1]
    assert server.count("slow") == 2  # a timeout is retried on the same mirror
    assert clean(tmp_path) == [FILES[1]]


def test_read_timeout_is_reported(server, tmp_path):
    def handle(request, mirror, name):
        server.stop.wait(2.0)

    server.handle = handle
    with pytest.raises(DataError) as excinfo:
        download_file(FILES[1], tmp_path, [server.url("slow")], CHECKSUMS, retries=0, timeout=(2.0, 0.2), **FAST)
    assert "timed out" in str(excinfo.value)
    assert clean(tmp_path) == []


def test_stall_in_the_middle_of_the_body(server, tmp_path):
    def handle(request, mirror, name):
        body = CONTENT[name]
        if mirror == "stall":
            request.send_response(200)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body[:50])
            request.wfile.flush()
            server.stop.wait(2.0)
            return
        send(request, body)

    server.handle = handle
    url = download_file(FILES[1], tmp_path, [server.url("stall"), server.url("m2")], CHECKSUMS,
                        retries=0, timeout=(2.0, 0.2), **FAST)
    assert url.startswith(server.url("m2"))
    assert clean(tmp_path) == [FILES[1]]
    server.handle = lambda req, mirror, name: handle(req, "stall", name)
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError) as excinfo:
        download_file(FILES[1], tmp_path / "sub", [server.url("stall")], CHECKSUMS,
                      retries=0, timeout=(2.0, 0.2), **FAST)
    assert f"{server.url('stall')}{FILES[1]}: read timed out\n" in str(excinfo.value)


def test_a_gz_served_with_content_encoding_gzip_is_stored_as_sent(server, tmp_path):
    """Some servers label .gz files "Content-Encoding: gzip"; the checksum is of the .gz itself."""
    def handle(request, mirror, name):
        body = CONTENT[name]
        request.send_response(200)
        request.send_header("Content-Type", "application/x-gzip")
        request.send_header("Content-Encoding", "gzip")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    server.handle = handle
    download(tmp_path, mirrors=[server.url("m1")], checksums=CHECKSUMS, retries=0, **FAST)
    assert_complete(tmp_path)
    assert server.count("m1") == 4


def test_a_single_attempt_is_not_called_after_1_attempts(server, tmp_path):
    server.handle = lambda req, mirror, name: send(req, b"x", status=500)
    with pytest.raises(DataError) as excinfo:
        download_file(FILES[0], tmp_path, [server.url("m1")], CHECKSUMS, retries=0, **FAST)
    assert f"{server.url('m1')}{FILES[0]}: HTTP 500\n" in str(excinfo.value)


# ---------------------------------------------------------------------------
# Every mirror failing


def test_every_mirror_failing_is_one_error_naming_each(server, tmp_path, dead_url):
    def handle(request, mirror, name):
        send(request, b"x", status=404 if mirror == "gone" else 500)

    server.handle = handle
    mirrors = [server.url("gone"), server.url("broken"), dead_url]
    target = tmp_path / "data"
    with pytest.raises(DataError) as excinfo:
        download(target, mirrors=mirrors, checksums=CHECKSUMS, retries=1, **FAST)
    message = str(excinfo.value)
    name = FILES[0]
    assert f"{server.url('gone')}{name}: HTTP 404" in message
    assert f"{server.url('broken')}{name}: HTTP 500 (after 2 attempts)" in message
    assert f"{dead_url}{name}: connection failed" in message
    assert "offline" in message and "--from" in message and str(target) in message
    assert clean(target) == []


def test_no_mirrors_at_all(tmp_path):
    with pytest.raises(DataError, match="no mirrors given"):
        download_file(FILES[0], tmp_path, [], CHECKSUMS, **FAST)


def test_a_failure_on_the_second_file_keeps_the_first(server, tmp_path):
    def handle(request, mirror, name):
        (serve if name == FILES[0] else not_found)(request, mirror, name)

    server.handle = handle
    with pytest.raises(DataError, match=FILES[1]):
        download(tmp_path, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    assert clean(tmp_path) == [FILES[0]]
    assert (tmp_path / FILES[0]).read_bytes() == CONTENT[FILES[0]]


def test_failed_force_download_keeps_the_old_file(server, tmp_path):
    (tmp_path / FILES[0]).write_bytes(CONTENT[FILES[0]])
    server.handle = not_found
    with pytest.raises(DataError):
        download(tmp_path, mirrors=[server.url("m1")], checksums=CHECKSUMS, force=True, **FAST)
    assert clean(tmp_path) == [FILES[0]]
    assert (tmp_path / FILES[0]).read_bytes() == CONTENT[FILES[0]]


# ---------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_mid_download_leaves_no_partial_file(server, tmp_path):
    """A real SIGINT while the second file is half received (the server sends half, then signals)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs the default SIGINT handler in the main thread")
    sent_half = threading.Event()

    def handle(request, mirror, name):
        body = CONTENT[name]
        if name != FILES[1]:
            return send(request, body)
        send_half(request, body)
        sent_half.set()
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, while the client waits for the rest
        server.stop.wait(2.0)

    server.handle = handle
    with pytest.raises(KeyboardInterrupt):
        download(tmp_path, mirrors=[server.url("m1"), server.url("m2")], checksums=CHECKSUMS,
                 timeout=(2.0, 5.0), **FAST)
    assert sent_half.is_set()
    assert clean(tmp_path) == [FILES[0]]  # the first file, complete; nothing of the second
    assert (tmp_path / FILES[0]).read_bytes() == CONTENT[FILES[0]]
    assert server.count("m2") == 0  # Ctrl-C is not a mirror failure


def test_keyboard_interrupt_inside_the_body_loop_leaves_no_partial_file(server, tmp_path, monkeypatch):
    writes = []

    def write(f, block):  # the second write is where Ctrl-C lands
        writes.append(len(block))
        if len(writes) == 2:
            raise KeyboardInterrupt
        return f.write(block)

    monkeypatch.setattr(fetching, "CHUNK_BYTES", 64)  # several blocks per file, so the interrupt is mid-file
    patch_temp_file_writes(monkeypatch, write)
    with pytest.raises(KeyboardInterrupt):
        download_file(FILES[0], tmp_path, [server.url("m1"), server.url("m2")], CHECKSUMS, **FAST)
    monkeypatch.undo()
    assert writes == [64, 64]
    assert clean(tmp_path) == []
    assert server.count("m2") == 0  # Ctrl-C is not a mirror failure


def test_keyboard_interrupt_after_writing_leaves_no_temp_file(server, tmp_path, monkeypatch):
    real_fetch = fetching._fetch

    def fetch_then_interrupt(session, url, tmp, *args, **kwargs):
        real_fetch(session, url, tmp, *args, **kwargs)
        assert tmp.read_bytes() == CONTENT[FILES[3]]  # complete and verified, but not yet in place
        raise KeyboardInterrupt

    monkeypatch.setattr(fetching, "_fetch", fetch_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        download_file(FILES[3], tmp_path, [server.url("m1")], CHECKSUMS, **FAST)
    assert clean(tmp_path) == []


def test_unwritable_data_dir_is_a_data_error(server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="data directory"):
        download(blocker / "data", mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)


# ---------------------------------------------------------------------------
# The `digitnet download` command


def write_sums(path: Path, table: dict[str, str]) -> Path:
    path.write_text("".join(f"{digest}  {name}\n" for name, digest in table.items()))
    return path


def test_cli_download_from_a_local_mirror(server, tmp_path):
    sums = write_sums(tmp_path / "SHA256SUMS", CHECKSUMS)
    target = tmp_path / "data"
    result = CliRunner().invoke(main, ["download", "--mirror", server.url("m1"), "--checksums", str(sums),
                                       "--data-dir", str(target), "--quiet"])
    assert result.exit_code == 0, result.output
    for name in FILES:
        assert f"{name}: downloaded from {server.url('m1')}{name}, checksum verified" in result.output
    assert f"MNIST is ready in {target}" in result.output
    assert_complete(target)
    again = CliRunner().invoke(main, ["download", "--mirror", server.url("m1"), "--checksums", str(sums),
                                      "--data-dir", str(target), "--quiet"])
    assert again.exit_code == 0 and again.output.count("already present") == 4
    assert server.count("m1") == 4


def test_cli_download_tries_mirrors_in_order(server, tmp_path, dead_url, monkeypatch):
    monkeypatch.setattr(fetching, "download_file", _fast(fetching.download_file))
    sums = write_sums(tmp_path / "SHA256SUMS", CHECKSUMS)
    result = CliRunner().invoke(main, ["download", "--mirror", dead_url, "--mirror", server.url("m2"),
                                       "--checksums", str(sums), "--data-dir", str(tmp_path / "d"), "-q"])
    assert result.exit_code == 0, result.output
    assert_complete(tmp_path / "d")


def test_cli_download_with_a_dead_mirror_exits_1_without_traceback(tmp_path, dead_url, monkeypatch):
    monkeypatch.setattr(fetching, "download_file", _fast(fetching.download_file))
    sums = write_sums(tmp_path / "SHA256SUMS", CHECKSUMS)
    target = tmp_path / "data"
    result = CliRunner().invoke(main, ["download", "--mirror", dead_url, "--checksums", str(sums),
                                       "--data-dir", str(target), "--quiet"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "Error: could not download" in result.output
    assert dead_url in result.output and "offline" in result.output
    assert clean(target) == []


def _fast(download_file):
    """download_file without the back-off sleeps (the CLI does not expose them)."""
    def wrapper(*args, **kwargs):
        kwargs["backoff"] = 0
        return download_file(*args, **kwargs)
    return wrapper


def test_cli_download_with_a_bad_checksums_file(tmp_path):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("not a checksum line\n")
    result = CliRunner().invoke(main, ["download", "--checksums", str(sums), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "line 1" in result.output and "Traceback" not in result.output


def test_cli_download_from_a_local_folder(tmp_path):
    source = write_mnist(tmp_path / "mnist-like", 60, 20)
    target = tmp_path / "data"
    result = CliRunner().invoke(main, ["download", "--from", str(source), "--data-dir", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.count("does NOT match the official checksum (valid IDX, imported anyway)") == 4
    for name in FILES:
        assert (target / name).read_bytes() == (source / name).read_bytes()
    assert len(load_mnist(target, validation_size=10).test) == 20


def test_cli_download_from_with_matching_checksums(tmp_path):
    source = write_mnist(tmp_path / "mnist-like", 60, 20)
    table = {name: hashlib.sha256((source / name).read_bytes()).hexdigest() for name in FILES}
    sums = write_sums(tmp_path / "SHA256SUMS", table)
    result = CliRunner().invoke(main, ["download", "--from", str(source), "--checksums", str(sums),
                                       "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert result.output.count(f"matches the checksum in {sums}") == 4
    assert "official" not in result.output


def test_cli_download_from_a_broken_folder(tmp_path):
    source = write_mnist(tmp_path / "mnist-like", 60, 20)
    (source / FILES[1]).write_bytes(gzip.compress(idx_bytes(np.zeros(59, np.uint8))))
    target = tmp_path / "data"
    result = CliRunner().invoke(main, ["download", "--from", str(source), "--data-dir", str(target)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "60 images" in result.output and "59 labels" in result.output
    assert clean(target) == []


def test_cli_download_from_the_shared_copy(tmp_path, real_mnist_dir):
    """The offline copy in ../shared/mnist imports (its checksums are its own, not the official ones)."""
    target = tmp_path / "data"
    result = CliRunner().invoke(main, ["download", "--from", str(real_mnist_dir), "--data-dir", str(target),
                                       "--checksums", str(real_mnist_dir / "SHA256SUMS")])
    assert result.exit_code == 0, result.output
    assert result.output.count(f"matches the checksum in {real_mnist_dir / 'SHA256SUMS'}") == 4
    assert clean(target) == sorted(FILES)


# ---------------------------------------------------------------------------
# A mirror that accepts the connection and then sends nothing


def stalls_after_headers(server, stalling=("stall",)):
    """Mirrors in ``stalling`` send 200 and their headers, then nothing (until the server stops)."""
    def handle(request, mirror, name):
        if mirror not in stalling:
            return serve(request, mirror, name)
        request.send_response(200)
        request.send_header("Content-Length", str(len(CONTENT[name])))
        request.end_headers()
        request.wfile.flush()
        server.stop.wait(10)

    return handle


def test_a_stalled_mirror_is_asked_for_one_file_then_tried_last(server, tmp_path):
    server.handle = stalls_after_headers(server)
    reports = download(tmp_path, mirrors=[server.url("stall"), server.url("m2")], checksums=CHECKSUMS,
                       retries=5, timeout=0.3, **FAST)
    assert_complete(tmp_path)
    # The request log: one stall retried once, for the first file only; the rest straight from m2.
    assert server.count("stall", FILES[0]) == 2 and server.count("stall") == 2
    assert all(server.count("m2", name) == 1 for name in FILES)
    assert reports[0].failures == [f"{server.url('stall')}{FILES[0]}: read timed out (after 2 attempts)"]
    assert all(r.source.startswith(server.url("m2")) and not r.failures for r in reports[1:])


def test_cli_download_past_a_stalled_mirror_with_a_short_timeout(server, tmp_path):
    server.handle = stalls_after_headers(server)
    sums = write_sums(tmp_path / "SHA256SUMS", CHECKSUMS)
    target = tmp_path / "data"
    result = CliRunner().invoke(main, ["download", "--mirror", server.url("stall"), "--mirror", server.url("m2"),
                                       "--checksums", str(sums), "--data-dir", str(target), "--timeout", "0.3",
                                       "-q"])
    assert result.exit_code == 0, result.output
    assert_complete(target)
    assert server.count("stall") <= 2  # at most two files' worth of attempts (here: one file, two tries)
    assert f"note: {server.url('stall')}{FILES[0]}: read timed out (after 2 attempts)" in result.output
    assert result.output.count("checksum verified") == 4


def test_a_mirror_refusing_every_connection_is_tried_last_after_the_first_file(server, tmp_path):
    def handle(request, mirror, name):
        if mirror == "refuse":  # hang up without a word, as a refusing proxy does
            request.close_connection = True
            return
        serve(request, mirror, name)

    server.handle = handle
    download(tmp_path, mirrors=[server.url("refuse"), server.url("m2")], checksums=CHECKSUMS, retries=2, **FAST)
    assert_complete(tmp_path)
    assert server.count("refuse", FILES[0]) == 3 and server.count("refuse") == 3  # the usual retries, once


def test_a_404_does_not_demote_a_mirror_that_serves_the_other_files(server, tmp_path):
    def handle(request, mirror, name):
        if mirror == "m1" and name == FILES[0]:
            return not_found(request, mirror, name)
        serve(request, mirror, name)

    server.handle = handle
    reports = download(tmp_path, mirrors=[server.url("m1"), server.url("m2")], checksums=CHECKSUMS, **FAST)
    assert_complete(tmp_path)
    assert [r.source.split("/")[3] for r in reports] == ["m2", "m1", "m1", "m1"]
    assert server.count("m2") == 1


def test_a_stall_is_retried_once_however_many_retries(server, tmp_path):
    server.handle = stalls_after_headers(server)
    with pytest.raises(DataError) as excinfo:
        download_file(FILES[3], tmp_path, [server.url("stall")], CHECKSUMS, retries=9, timeout=0.2, **FAST)
    assert server.count("stall") == 2
    assert "read timed out (after 2 attempts)" in str(excinfo.value)
    assert clean(tmp_path) == []


def test_mirror_order_demotes_to_the_back_and_keeps_the_rest():
    order = fetching.MirrorOrder(["a", "b", "c"])
    seen = []
    for mirror in order:  # demoting during a pass does not skip or repeat anyone
        seen.append(mirror)
        if mirror == "a":
            order.demote("a")
    assert seen == ["a", "b", "c"] and list(order) == ["b", "c", "a"]


def test_download_timeout_option_is_documented():
    result = CliRunner().invoke(main, ["download", "--help"])
    assert "--timeout SECONDS" in result.output and "default: 15" in result.output
    assert fetching.DEFAULT_TIMEOUT == 15.0


# ---------------------------------------------------------------------------
# A full or read-only disk


def test_a_full_disk_names_the_file_and_the_size_and_leaves_no_temp_file(server, tmp_path, monkeypatch):
    def full_disk(f, block):
        raise OSError(28, "No space left on device")

    patch_temp_file_writes(monkeypatch, full_disk)
    sums = write_sums(tmp_path / "SHA256SUMS", CHECKSUMS)
    target = tmp_path / "data"
    result = CliRunner().invoke(main, ["download", "--mirror", server.url("m1"), "--mirror", server.url("m2"),
                                       "--checksums", str(sums), "--data-dir", str(target), "-q"])
    monkeypatch.undo()
    assert result.exit_code == 1 and "Traceback" not in result.output
    from digitnet.atomic import human_size

    size = human_size(len(CONTENT[FILES[0]]))  # the Content-Length
    assert (f"Error: cannot write {target / FILES[0]}: no space left on device "
            f"(needs about {size}") in result.output
    assert clean(target) == []
    assert server.count("m2") == 0  # a full disk is not the mirror's fault


def test_a_read_only_data_dir_fails_before_any_request(server, read_only_folder):
    folder = read_only_folder
    with pytest.raises(OSError) as excinfo:
        download(folder, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    assert str(excinfo.value).startswith(f"cannot write into {folder}: ")
    assert sum(server.requests.values()) == 0


def test_a_data_dir_under_proc_fails_before_any_request(server):
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    result = CliRunner().invoke(main, ["download", "--mirror", server.url("m1"), "--data-dir", "/proc/self/mnist"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot create data directory /proc/self/mnist: folder /proc/self does not accept new files" \
        in result.output
    assert sum(server.requests.values()) == 0


def test_a_complete_read_only_data_dir_is_still_fine(server, read_only_folder):
    folder = read_only_folder
    folder.chmod(0o755)
    for name in FILES:
        (folder / name).write_bytes(CONTENT[name])
    folder.chmod(0o555)
    reports = download(folder, mirrors=[server.url("m1")], checksums=CHECKSUMS, **FAST)
    assert all(r.action == "present" for r in reports)


# ---------------------------------------------------------------------------
# Checksum files


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


def test_read_checksums_sha256sum_format(tmp_path):
    a, b, c = "a" * 64, "0123456789abcdef" * 4, "F" * 64
    path = tmp_path / "SHA256SUMS"
    path.write_text(f"# a comment\n\n{a}  train-images-idx3-ubyte.gz\n"
                    f"{b} *t10k-labels-idx1-ubyte.gz\n"
                    f"{c}  some/dir/train-labels-idx1-ubyte.gz\n")
    assert read_checksums(path) == {
        "train-images-idx3-ubyte.gz": a,
        "t10k-labels-idx1-ubyte.gz": b,
        "train-labels-idx1-ubyte.gz": "f" * 64,
    }


def test_read_checksums_of_the_shared_copy_matches_its_files():
    shared = Path(__file__).resolve().parents[2] / "shared" / "mnist"
    if not (shared / "SHA256SUMS").is_file():
        pytest.skip("no ../shared/mnist/SHA256SUMS")
    table = read_checksums(shared / "SHA256SUMS")
    assert set(table) == set(data.FILES)
    assert table["t10k-labels-idx1-ubyte.gz"] == sha256(shared / "t10k-labels-idx1-ubyte.gz")


@pytest.mark.parametrize("line", ["abc  train-images-idx3-ubyte.gz",          # too short
                                  "g" * 64 + "  train-images-idx3-ubyte.gz",  # not hex
                                  "a" * 64,                                   # no file name
                                  "a" * 65 + "  x.gz"])                       # too long
def test_read_checksums_bad_lines(tmp_path, line):
    path = tmp_path / "sums"
    path.write_text("b" * 64 + "  ok.gz\n" + line + "\n")
    with pytest.raises(DataError) as excinfo:
        read_checksums(path)
    assert str(path) in str(excinfo.value) and "line 2" in str(excinfo.value)


def test_read_checksums_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read checksums"):
        read_checksums(tmp_path / "absent")


def test_read_checksums_of_a_binary_file_says_it_is_not_text(tmp_path):
    # --checksums given the .gz itself by mistake: no "'utf-8' codec can't decode byte 0x8b"
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)))
    with pytest.raises(DataError) as excinfo:
        read_checksums(path)
    assert str(excinfo.value) == (f"checksums file {path} is not text "
                                  "(expected sha256sum's format: <hex>  <name> per line)")


# ---------------------------------------------------------------------------
# --from imports


def test_import_files_copies_a_valid_set_and_flags_unofficial_checksums(tmp_path):
    source = write_mnist(tmp_path / "source", 120, 30)
    target = tmp_path / "data"
    reports = import_files(source, target)
    assert sorted(r.name for r in reports) == sorted(data.FILES)
    assert all(r.action == "imported" for r in reports)
    assert all(r.official is False for r in reports)  # synthetic files are not the official MNIST
    for name in data.FILES:
        assert (target / name).read_bytes() == (source / name).read_bytes()
    assert not list(target.glob("*.part"))
    assert len(load_mnist(target, validation_size=20).training) == 100


def test_import_files_reports_official_when_checksums_match(tmp_path):
    source = write_mnist(tmp_path / "source", 60, 20)
    table = {name: sha256(source / name) for name in data.FILES}
    table[TEST_LABELS] = "0" * 64
    reports = {r.name: r for r in import_files(source, tmp_path / "data", checksums=table)}
    assert reports[TRAIN_IMAGES].official is True
    assert reports[TEST_LABELS].official is False


def test_import_files_takes_decompressed_files(tmp_path):
    source = write_mnist(tmp_path / "source", 60, 20, gz=False)
    reports = import_files(source, tmp_path / "data")
    assert all(r.action == "imported" and r.official is None for r in reports)
    assert len(load_mnist(tmp_path / "data", validation_size=10).test) == 20


def test_import_files_refuses_a_broken_set_and_copies_nothing(tmp_path):
    source = write_mnist(tmp_path / "source", 60, 20)
    # The last file in copy order is the broken one: nothing before it may be copied either.
    (source / TEST_LABELS).write_bytes(gzip.compress(idx_bytes(np.full(20, 11, np.uint8))))
    target = tmp_path / "data"
    with pytest.raises(DataError) as excinfo:
        import_files(source, target)
    assert str(source / TEST_LABELS) in str(excinfo.value)
    assert snapshot(target) == {}


def test_import_files_refuses_a_missing_file(tmp_path):
    source = write_mnist(tmp_path / "source", 60, 20)
    (source / TRAIN_LABELS).unlink()
    with pytest.raises(DataError, match=TRAIN_LABELS):
        import_files(source, tmp_path / "data")
    assert snapshot(tmp_path / "data") == {}


def test_import_files_from_a_non_folder(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        import_files(tmp_path / "absent", tmp_path / "data")


def test_import_files_does_not_overwrite_a_differing_file_without_force(tmp_path):
    source = write_mnist(tmp_path / "source", 60, 20)
    target = write_mnist(tmp_path / "data", 80, 30)
    before = snapshot(target)
    with pytest.raises(DataError) as excinfo:
        import_files(source, target)
    assert "--force" in str(excinfo.value)
    assert snapshot(target) == before  # not even the files before the conflicting one
    reports = import_files(source, target, force=True)
    assert all(r.action == "imported" for r in reports)
    assert snapshot(target) == snapshot(source)


def test_import_files_does_not_overwrite_when_only_the_last_file_differs(tmp_path):
    source = write_mnist(tmp_path / "source", 60, 20)
    target = tmp_path / "data"
    target.mkdir()
    (target / TEST_LABELS).write_bytes(gzip.compress(idx_bytes(np.zeros(20, np.uint8))))
    before = snapshot(target)
    with pytest.raises(DataError, match="already exists"):
        import_files(source, target)
    assert snapshot(target) == before


def test_import_files_twice_reports_present(tmp_path):
    source = write_mnist(tmp_path / "source", 60, 20)
    import_files(source, tmp_path / "data")
    reports = import_files(source, tmp_path / "data")
    assert all(r.action == "present" for r in reports)


def test_import_into_itself_is_harmless(tmp_path):
    source = write_mnist(tmp_path / "data", 60, 20)
    before = snapshot(source)
    reports = import_files(source, source)
    assert all(r.action == "present" for r in reports)
    assert snapshot(source) == before


def test_import_of_decompressed_files_does_not_leave_an_old_gz_in_charge(tmp_path):
    # load_mnist prefers the .gz: a decompressed import beside an old .gz would be silently ignored.
    source = write_mnist(tmp_path / "source", 60, 20, gz=False)
    target = write_mnist(tmp_path / "data", 80, 30)
    before = snapshot(target)
    with pytest.raises(DataError, match="--force"):
        import_files(source, target)
    assert snapshot(target) == before
    import_files(source, target, force=True)
    assert not list(target.glob("*.gz"))
    mnist = load_mnist(target, validation_size=10)
    assert (len(mnist.training), len(mnist.test)) == (50, 20)
