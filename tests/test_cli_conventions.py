"""The rules every command follows (README, "Conventions"): how a model is named, exit codes,
where errors go, closed pipes, data folders, help texts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import TRAIN_SHORT, run_cli as run, write_mnist
from digitnet import checkpoint, data, download as fetching
from digitnet.cli import main

MODEL_COMMANDS = ["evaluate", "info", "report", "predict", "explain"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data dir, model): a 2-epoch model on synthetic data."""
    folder = tmp_path_factory.mktemp("trained")
    data_dir = write_mnist(folder / "mnist")
    model = folder / "m.npz"
    run("train", "--hidden", "8", *TRAIN_SHORT, "--data-dir", data_dir, "--out", model, "-q")
    return data_dir, model


def digitnet(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "digitnet", *map(str, args)], **kwargs)


# ---------------------------------------------------------------------------
# Naming the model


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_every_model_command_takes_dash_m_and_shows_the_default(command):
    help_text = " ".join(run(command, "--help").output.split())
    assert "-m, --model PATH" in help_text and "[default: model.npz]" in help_text


@pytest.mark.parametrize("command", ["evaluate", "info", "report"])
def test_positional_model_and_dash_m_are_the_same(command, trained, tmp_path):
    data_dir, model = trained
    extra = {"evaluate": ["--data-dir", data_dir, "--json"], "info": ["--json"],
             "report": ["--data-dir", data_dir, "--out", tmp_path / "report"]}[command]
    a = run(command, model, *extra).output
    b = run(command, "-m", model, *extra).output
    assert a == b
    result = run(command, model, "--model", tmp_path / "other.npz", *extra, expect=2)
    assert "two models named" in result.output


def test_the_default_model_is_model_npz(trained, tmp_path, monkeypatch):
    data_dir, model = trained
    monkeypatch.chdir(tmp_path)
    result = run("info", expect=1)
    assert result.output == ("Error: model.npz: no such file; train one with `digitnet train`, "
                             "or name another with -m/--model PATH\n")
    (tmp_path / "model.npz").write_bytes(model.read_bytes())
    assert run("info").output.startswith("model.npz: 784-8-10")


@pytest.mark.parametrize("name", ["model.npz", "network.json", "MODEL.NPZ"])
def test_predict_says_did_you_mean_model(trained, tmp_path, name):
    _, model = trained
    given = tmp_path / name
    given.write_bytes(b"{}")
    result = run("predict", "--model", model, given, expect=2)
    assert f"{given} looks like a model, not an image: did you mean --model {given}?" in result.output


# ---------------------------------------------------------------------------
# Exit codes and where errors go


@pytest.mark.parametrize("args", [
    ["train", "--seed", "-1"], ["gradcheck", "--seed", "-1"], ["train", "--hidden", "10,,5"],
    ["gradcheck", "--sizes", "6,,3"], ["train", "--patience", "-1"], ["evaluate", "--split", "all"],
    ["predict"], ["train", "--epochs", "many"], ["fly"], ["download", "--mirror", "notaurl"],
    ["download", "--mirror", "ftp://example.org/mnist/"], ["download", "--mirror", "http://"],
    ["download", "--mirror", "http://example.org:99999/"], ["download", "--mirror", "http://exa mple.org/"],
])
def test_command_line_mistakes_exit_2_with_one_error_line(args, tmp_path):
    takes_data = args[0] in ("train", "gradcheck", "download")
    result = run(*args, "--data-dir", tmp_path / "none", expect=2) if takes_data else run(*args, expect=2)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("args", [
    ["serve", "--max-upload", "nan"], ["serve", "--max-upload", "inf"], ["gradcheck", "--epsilon", "nan"],
    ["gradcheck", "--epsilon", "inf"], ["download", "--timeout", "nan"], ["download", "--timeout", "inf"],
])
def test_nan_and_inf_are_refused_by_every_float_option(args, tmp_path):
    # nan passes a FloatRange's "x>0" (every comparison with nan is false) and used to crash serve
    result = run(*args, "--data-dir", tmp_path / "none", expect=2)
    assert f"Invalid value for '{args[1]}': {args[2]} is not a finite number." in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "none").exists()


def test_errors_go_to_stderr_and_results_to_stdout(trained, tmp_path):
    data_dir, model = trained
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "absent.npz")])
    assert result.exit_code == 1 and result.stdout == "" and result.stderr.startswith("Error: ")
    result = CliRunner().invoke(main, ["evaluate", str(model), "--data-dir", str(data_dir)])
    assert result.exit_code == 0 and result.stderr == "" and "accuracy" in result.stdout


def test_a_missing_file_is_exit_1_in_every_command(tmp_path):
    missing = tmp_path / "absent.npz"
    for args in (["train", "--resume", missing], ["evaluate", missing], ["info", missing],
                 ["report", missing], ["predict", "--model", missing, tmp_path]):
        assert run(*args, expect=1).output == f"Error: {missing}: no such file\n", args


# ---------------------------------------------------------------------------
# Closed pipes (real processes: `digitnet ... | head -1`)


def test_evaluate_into_a_closed_pipe_ends_quietly(trained):
    data_dir, model = trained
    process = digitnet("evaluate", model, "--data-dir", data_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader leaves before the first line: every write meets EPIPE
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert stderr == ""


def test_head_reads_the_first_line(trained):
    data_dir, model = trained
    pipeline = subprocess.run(f"{sys.executable} -m digitnet info {model} | head -1", shell=True,
                              capture_output=True, text=True, timeout=120)
    assert pipeline.stdout.startswith(f"{model}: 784-8-10") and pipeline.stderr == ""


def test_train_into_a_closed_pipe_finishes_its_run_silently(trained, tmp_path):
    data_dir, _ = trained
    out = tmp_path / "m.npz"
    process = digitnet("train", "--hidden", "8", "--epochs", "3", "--batch-size", "10", "--validation-size", "100",
                       "--data-dir", data_dir, "--out", out, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, stderr
    assert "Error" not in stderr and "Broken pipe" not in stderr and "Exception" not in stderr
    meta = checkpoint.load(out).metadata
    assert meta["epochs_completed"] == 3 and meta["test_accuracy"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary files


def test_an_error_still_reaches_stderr_when_stdout_is_closed(tmp_path):
    process = digitnet("info", tmp_path / "absent.npz", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    assert process.stderr.read().decode() == f"Error: {tmp_path / 'absent.npz'}: no such file\n"
    assert process.wait(timeout=60) == 1


# ---------------------------------------------------------------------------
# Data folders


def test_evaluate_on_the_test_split_needs_only_the_test_files(trained, tmp_path, monkeypatch):
    data_dir, model = trained
    only_test = tmp_path / "only-test"
    only_test.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (only_test / name).write_bytes((data_dir / name).read_bytes())
    monkeypatch.setattr(fetching, "download_file", lambda *a, **k: pytest.fail("tried to download"))
    report = json.loads(run("evaluate", model, "--data-dir", only_test, "--json").output)
    assert report["total"] == 200
    assert sorted(p.name for p in only_test.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_the_validation_split_needs_the_training_files(trained, tmp_path, monkeypatch):
    data_dir, model = trained
    wanted = []

    def refuse(name, *args, **kwargs):
        wanted.append(name)
        raise data.DataError(f"{name}: no mirror answered")

    monkeypatch.setattr(fetching, "download_file", refuse)
    empty = tmp_path / "empty"
    empty.mkdir()
    run("evaluate", model, "--data-dir", empty, "--split", "validation", expect=1)
    assert wanted == ["train-images-idx3-ubyte.gz"]


@pytest.mark.parametrize("args", [["evaluate"], ["train", "--epochs", "1"], ["download"]])
def test_a_mistyped_data_dir_is_not_left_behind(trained, tmp_path, monkeypatch, args):
    _, model = trained
    monkeypatch.setattr(fetching, "download_file",
                        lambda name, *a, **k: (_ for _ in ()).throw(data.DataError(f"{name}: offline")))
    typo = tmp_path / "dtaa" / "mnist"
    command = [*args, model] if args == ["evaluate"] else [*args, "--out", tmp_path / "m.npz"] \
        if args[0] == "train" else args
    result = run(*command, "--data-dir", typo, expect=1)
    assert "offline" in result.output
    assert not (tmp_path / "dtaa").exists()
    assert not (tmp_path / "m.npz").exists()


def test_a_data_dir_that_existed_is_kept_even_when_the_download_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(fetching, "download_file",
                        lambda name, *a, **k: (_ for _ in ()).throw(data.DataError(f"{name}: offline")))
    existing = tmp_path / "data"
    existing.mkdir()
    run("download", "--data-dir", existing, expect=1)
    assert existing.is_dir()


# ---------------------------------------------------------------------------
# Help


def test_top_level_help_fits_every_command_description():
    result = CliRunner().invoke(main, ["--help"], terminal_width=80)
    lines = result.output.split("Commands:")[1].strip().splitlines()
    assert len(lines) >= 7
    for line in lines:
        assert not line.rstrip().endswith("..."), line
        assert len(line) <= 80


@pytest.mark.parametrize("command", ["train", "gradcheck", "predict"])
def test_numeric_options_show_their_range(command):
    help_text = " ".join(run(command, "--help").output.split())
    ranges = {"train": ["--epochs INTEGER RANGE", "--batch-size INTEGER RANGE", "--eta FLOAT RANGE",
                        "x>=1", "x>0"],
              "gradcheck": ["--seed INTEGER RANGE", "x>=0"], "predict": ["--top-k INTEGER RANGE", "1<=x<=10"]}
    for text in ranges[command]:
        assert text in help_text, text


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_ctrl_c_in_a_command_that_only_reads_exits_130(command, trained, tmp_path, monkeypatch):
    # click on its own prints "Aborted!" and exits 1, which the README's table does not list
    from digitnet import checkpoint

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "load", interrupted)
    data_dir, model = trained
    args = [tmp_path / "a.png"] if command == "predict" else ["--data-dir", data_dir]
    result = run(command, *args, "-m", model, expect=130)
    assert "interrupted (Ctrl-C)" in result.output
    assert "Aborted" not in result.output
