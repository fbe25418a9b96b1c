"""`digitnet serve` as a command: the line it prints, clean start-up errors, a clean Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import requests

from helpers import run_cli
from digitnet import checkpoint
from digitnet.network import Network

SERVING = re.compile(r"^Serving (?P<model>.+) on (?P<url>http://127\.0\.0\.1:(?P<port>\d+)/) \(Ctrl-C to stop\)$")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return checkpoint.save(tmp_path_factory.mktemp("model") / "model.npz",
                           Network([784, 10, 10], rng=np.random.default_rng(0)), {})


def start(*args, cwd=None) -> tuple[subprocess.Popen, re.Match]:
    process = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", "--port", "0", *map(str, args)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    line = process.stdout.readline().rstrip("\n")
    match = SERVING.match(line)
    if match is None:
        process.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {process.stderr.read()}")
    return process, match


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serves_then_stops_cleanly(model_file, stop):
    process, match = start("--model", model_file)
    try:
        assert match["model"] == str(model_file) and int(match["port"]) > 0
        assert requests.get(match["url"] + "api/model", timeout=10).json()["sizes"] == [784, 10, 10]
    finally:
        process.send_signal(stop)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 128 + stop  # the house's statuses for an interrupted command: 130, 143
    assert "Traceback" not in err and err.strip() == "stopped"


def test_default_model_is_model_npz(model_file, tmp_path):
    (tmp_path / "model.npz").write_bytes(model_file.read_bytes())
    process, match = start(cwd=tmp_path)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=20)
    assert match["model"] == "model.npz"


def test_port_in_use_is_one_line_before_listening(model_file):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--model", model_file, "--port", port, expect=1)
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.mark.parametrize("content, message", [(None, "no such file"), (b"not a checkpoint", "not a valid"),
                                               (b'{"sizes": [784, 10]}', "not a usable JSON network")])
def test_invalid_model_is_one_line(tmp_path, content, message):
    path = tmp_path / "model.npz"
    if content is not None:
        path.write_bytes(content)
    result = run_cli("serve", "--model", path, "--port", 0, expect=1)
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_model_of_the_wrong_shape(tmp_path):
    path = checkpoint.save(tmp_path / "small.npz", Network([10, 3, 10], rng=np.random.default_rng(0)), {})
    result = run_cli("serve", "--model", path, "--port", 0, expect=1)
    assert "784 inputs and 10 outputs" in result.stderr


def test_non_loopback_host_prints_a_warning(model_file, monkeypatch):
    from digitnet.serve import guards
    from digitnet.serve import server as serving

    # Listen on 127.0.0.1 as tests must, but have the command judge it a public address.
    monkeypatch.setattr(guards, "is_loopback", lambda host: False)
    monkeypatch.setattr(serving, "serve_until_stopped", lambda httpd: httpd.close() or 2)
    result = run_cli("serve", "--model", model_file, "--port", 0, expect=130)
    assert "warning: listening on 127.0.0.1: anyone who can reach this machine" in result.stderr
    assert SERVING.match(result.stdout.splitlines()[0])


def test_bad_options_name_the_option(model_file):
    assert "--port" in run_cli("serve", "--model", model_file, "--port", 70000, expect=2).output
    assert "--max-upload" in run_cli("serve", "--model", model_file, "--max-upload", 0, expect=2).output


def test_help_shows_defaults():
    output = run_cli("serve", "--help").output
    for text in ("--model", "model.npz", "--host", "127.0.0.1", "--port", "8000", "--open", "--max-upload",
                 "--weights"):
        assert text in output


def test_package_data_ships_the_page():
    from importlib import resources

    folder = resources.files("digitnet.serve") / "static"
    assert {p.name for p in folder.iterdir()} >= {"index.html", "app.js", "style.css", "favicon.svg"}


def test_open_opens_the_page_in_a_browser(model_file, monkeypatch):
    import webbrowser

    from digitnet.serve import server as serving

    opened = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    monkeypatch.setattr(serving, "serve_until_stopped", lambda httpd: httpd.close() or 2)
    result = run_cli("serve", "--model", model_file, "--port", 0, "--open", expect=130)
    assert opened == [SERVING.match(result.stdout.splitlines()[0])["url"]]


def test_without_model_npz_it_starts_and_offers_to_train(tmp_path):
    process, match = start(cwd=tmp_path)
    try:
        assert match["model"] == "no model yet"
        assert requests.get(match["url"] + "api/model", timeout=10).json()["file"] is None
        settings = requests.get(match["url"] + "api/train/settings", timeout=10).json()
        assert settings["available"] and settings["caps"]["epochs"] >= 1
        assert requests.get(match["url"] + "api/models", timeout=10).json()["runs_dir"] == "runs"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 130 and "offers to train one" in err and "Traceback" not in err


def test_runs_dir_is_an_option_with_its_default():
    output = run_cli("serve", "--help").output
    assert "--runs-dir" in output and "runs" in output
