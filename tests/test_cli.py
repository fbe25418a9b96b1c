"""The `digitnet` command end to end on small synthetic data: train, evaluate, info, errors, Ctrl-C."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import TRAIN_SHORT, run_cli as run, write_mnist
from digitnet import __version__, checkpoint, training
from digitnet.metrics import predicted_digits
from digitnet.data import load_mnist

TRAIN_ARGS = ["--hidden", "10", *TRAIN_SHORT]


def assert_clean_exit(result, code: int):
    """A user-facing failure: the given exit code, a message, and no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.output.strip()


def train(data_dir: Path, out: Path, *extra, expect: int | None = 0):
    return run("train", *TRAIN_ARGS, "--data-dir", data_dir, "--out", out, *extra, expect=expect)


@pytest.fixture(scope="module")
def big_data_dir(tmp_path_factory) -> Path:
    """Synthetic data with more than 10,000 training images (see test_evaluate_test_split_on_small_data)."""
    return write_mnist(tmp_path_factory.mktemp("big") / "mnist", n_train=10100, n_test=300)


@pytest.fixture(scope="module")
def model(big_data_dir, tmp_path_factory) -> tuple[Path, str]:
    """A model trained once by the CLI (10,000 training, 100 validation images); and train's output."""
    out = tmp_path_factory.mktemp("model") / "m.npz"
    result = train(big_data_dir, out)
    return out, result.output


# ---------------------------------------------------------------------------
# train


def test_train_prints_epochs_and_test_accuracy_and_saves_a_loadable_checkpoint(synthetic_data_dir, tmp_path):
    out = tmp_path / "m.npz"
    result = train(synthetic_data_dir, out)
    output = result.output
    assert "training 784-10-10" in output and "on 500 images" in output and str(out) in output
    for epoch in (1, 2):
        assert re.search(rf"^epoch\s+{epoch}/2\s+cost \d+\.\d+\s+validation\s+\d+\.\d\d%", output, re.M), output
    match = re.search(r"test accuracy (\d+\.\d\d)%", output)
    assert match, output
    ckpt = checkpoint.load(out)
    meta = ckpt.metadata
    assert [h["epoch"] for h in ckpt.history] == [1, 2]
    assert meta["epochs_completed"] == 2 and meta["sizes"] == [784, 10, 10]
    assert meta["hyperparameters"]["batch_size"] == 10 and meta["hyperparameters"]["validation_size"] == 100
    # The printed test accuracy is the saved network's, measured independently here.
    mnist = load_mnist(synthetic_data_dir, validation_size=100)
    network = ckpt.best_network or ckpt.network
    measured = float(np.mean(predicted_digits(network, mnist.test.float_images()) == mnist.test.labels))
    assert float(match.group(1)) == pytest.approx(100 * measured, abs=0.006)
    assert meta["test_accuracy"] == pytest.approx(measured)
    assert measured > 0.3  # the synthetic digits are learnable: far above chance after two epochs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "mnist"]  # no temp files left


def test_train_is_reproducible_with_a_seed(synthetic_data_dir, tmp_path):
    train(synthetic_data_dir, tmp_path / "a.npz", "--seed", "5", "-q")
    train(synthetic_data_dir, tmp_path / "b.npz", "--seed", "5", "-q")
    a, b = checkpoint.load(tmp_path / "a.npz"), checkpoint.load(tmp_path / "b.npz")
    for x, y in zip(a.network.weights + a.network.biases, b.network.weights + b.network.biases):
        np.testing.assert_array_equal(x, y)


def test_train_quiet_prints_only_the_result(synthetic_data_dir, tmp_path):
    result = train(synthetic_data_dir, tmp_path / "m.npz", "--quiet")
    assert result.output.startswith("test accuracy") and result.output.count("\n") == 1, result.output


def test_train_uses_the_data_dir_environment_variable(synthetic_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITNET_DATA_DIR", str(synthetic_data_dir))
    run("train", *TRAIN_ARGS, "--out", tmp_path / "m.npz", "-q")
    assert checkpoint.load(tmp_path / "m.npz").metadata["epochs_completed"] == 2


def test_out_exists_without_force_is_refused_and_untouched(synthetic_data_dir, tmp_path):
    out = tmp_path / "m.npz"
    out.write_bytes(b"precious")
    result = train(synthetic_data_dir, out, expect=None)
    assert_clean_exit(result, 1)
    assert "already exists" in result.output and "--force" in result.output
    assert out.read_bytes() == b"precious"
    train(synthetic_data_dir, out, "--force", "-q")
    assert checkpoint.load(out).metadata["epochs_completed"] == 2


@pytest.mark.parametrize("option, value, words", [
    ("--epochs", "0", "'--epochs': 0 is not in the range x>=1"),
    ("--batch-size", "0", "'--batch-size': 0 is not in the range x>=1"),
    ("--hidden", "0", "'--hidden': hidden layer sizes must be at least 1, got 0"),
    ("--hidden", "10,x", "'--hidden': 'x' is not a whole number"),
    ("--hidden", "10,,5", "'--hidden': '10,,5' has an empty part"),
    ("--hidden", "", "'--hidden': '' has an empty part"),
    ("--eta", "-1", "'--eta': -1.0 is not in the range x>0"),
    ("--eta", "0", "'--eta': 0.0 is not in the range x>0"),
    ("--eta", "nan", "--eta must be a finite number, got nan"),
    ("--l2", "inf", "--l2 must be a finite number, got inf"),
    ("--seed", "-1", "'--seed': -1 is not in the range x>=0"),
    ("--patience", "-1", "'--patience': -1 is not in the range x>=0"),
    ("--patience-eta", "-1", "'--patience-eta': -1 is not in the range x>=0"),
    ("--eta-decay", "1", "'--eta-decay': 1.0 is not in the range 0<x<1"),
    ("--validation-size", "-1", "'--validation-size': -1 is not in the range x>=0"),
])
def test_usage_errors_exit_2(synthetic_data_dir, tmp_path, option, value, words):
    result = run("train", "--data-dir", synthetic_data_dir, "--out", tmp_path / "m.npz", option, value, expect=None)
    assert_clean_exit(result, 2)
    assert words in result.output
    assert not (tmp_path / "m.npz").exists()


def test_batch_larger_than_the_training_data_exits_2(synthetic_data_dir, tmp_path):
    result = run("train", "--hidden", "10", "--epochs", "1", "--validation-size", "100", "--batch-size", "501",
                 "--data-dir", synthetic_data_dir, "--out", tmp_path / "m.npz", expect=None)
    assert_clean_exit(result, 2)
    assert "501" in result.output and "500 training images" in result.output
    assert not (tmp_path / "m.npz").exists()
    train(synthetic_data_dir, tmp_path / "m.npz", "--batch-size", "500", "-q")  # exactly the data is fine


def test_broken_data_exits_1_naming_the_file(synthetic_data_dir, tmp_path):
    bad = synthetic_data_dir / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(b"\x1f\x8b\x08 broken")
    result = train(synthetic_data_dir, tmp_path / "m.npz", expect=None)
    assert_clean_exit(result, 1)
    assert str(bad) in result.output


def test_validation_size_too_large_for_the_data_exits_2(synthetic_data_dir, tmp_path):
    """A value that is wrong on the command line is exit 2, even when only the data can tell."""
    result = run("train", "--hidden", "10", "--epochs", "1", "--data-dir", synthetic_data_dir,
                 "--out", tmp_path / "m.npz", expect=None)  # default validation size 10,000 > 600 images
    assert_clean_exit(result, 2)
    assert "--validation-size 10000 leaves no training images (the training file has 600)" in result.output
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------------------
# Divergence


def test_divergence_exits_1_and_suggests_a_smaller_eta(synthetic_data_dir, tmp_path):
    # 1e39 overflows float32: the first update makes the weights infinite.
    out = tmp_path / "m.npz"
    result = train(synthetic_data_dir, out, "--eta", "1e39", expect=None)
    assert_clean_exit(result, 1)
    assert "diverged in epoch 1" in result.output
    assert "smaller --eta" in result.output and "1e+39" in result.output
    assert "nothing was saved" in result.output
    assert not out.exists()


def test_huge_eta_is_reported_as_divergence(synthetic_data_dir, tmp_path):
    result = train(synthetic_data_dir, tmp_path / "m.npz", "--eta", "1e30", expect=None)
    assert result.exit_code == 1
    assert "smaller --eta" in result.output


def test_divergence_after_a_good_epoch_keeps_that_epoch(synthetic_data_dir, tmp_path, monkeypatch):
    real_cost = training.Trainer._cost_and_saturation

    def cost(self, *args):
        return (float("nan"), False) if self.state.epochs_completed == 1 else real_cost(self, *args)

    monkeypatch.setattr(training.Trainer, "_cost_and_saturation", cost)
    out = tmp_path / "m.npz"
    result = train(synthetic_data_dir, out, expect=None)
    assert_clean_exit(result, 1)
    assert "diverged in epoch 2" in result.output and "nan" in result.output
    assert f"the last good epoch is kept in {out}" in result.output
    assert "smaller --eta" in result.output
    ckpt = checkpoint.load(out)
    assert ckpt.metadata["epochs_completed"] == 1 and len(ckpt.history) == 1


# ---------------------------------------------------------------------------
# Ctrl-C


def interrupt_on_call(monkeypatch, n: int):
    real = training.Trainer._sgd_epoch
    calls = []

    def sgd_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(training.Trainer, "_sgd_epoch", sgd_epoch)
    return calls


def test_ctrl_c_after_the_first_epoch_keeps_it_and_exits_130(synthetic_data_dir, tmp_path, monkeypatch):
    interrupt_on_call(monkeypatch, 2)
    out = tmp_path / "m.npz"
    result = train(synthetic_data_dir, out, expect=None)
    assert result.exit_code == 130
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "interrupted" in result.output
    assert f"({1}) is saved in {out}" in result.output
    assert f"--resume {out}" in result.output
    ckpt = checkpoint.load(out)
    assert ckpt.metadata["epochs_completed"] == 1 and [h["epoch"] for h in ckpt.history] == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "mnist"]

    # The message's advice works: the run continues to epoch 2.
    monkeypatch.undo()
    result = run("train", "--resume", out, "--epochs", "2", "--data-dir", synthetic_data_dir)
    assert "resuming after epoch 1" in result.output
    assert [h["epoch"] for h in checkpoint.load(out).history] == [1, 2]


def test_ctrl_c_during_the_first_epoch_saves_nothing(synthetic_data_dir, tmp_path, monkeypatch):
    interrupt_on_call(monkeypatch, 1)
    out = tmp_path / "m.npz"
    result = train(synthetic_data_dir, out, expect=None)
    assert result.exit_code == 130
    assert "nothing was saved" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["mnist"]


# ---------------------------------------------------------------------------
# evaluate


def test_evaluate_json(model, big_data_dir):
    path, train_output = model
    result = run("evaluate", path, "--data-dir", big_data_dir, "--json")
    report = json.loads(result.output)  # exactly one JSON object, nothing else on stdout
    assert isinstance(report, dict)
    assert report["total"] == 300 and report["split"] == "test" and report["weights"] == "best"
    assert 0.0 <= report["accuracy"] <= 1.0
    assert report["correct"] == round(report["accuracy"] * report["total"])
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == report["total"]
    assert np.trace(matrix) == report["correct"]
    per_class = report["per_class"]
    assert [row["digit"] for row in per_class] == list(range(10))
    for d, row in enumerate(per_class):
        assert row["support"] == matrix[d].sum()
        assert row["recall"] == (pytest.approx(matrix[d, d] / matrix[d].sum()) if matrix[d].sum() else None)
        assert row["precision"] == (pytest.approx(matrix[d, d] / matrix[:, d].sum()) if matrix[:, d].sum()
                                    else None)
    # The same model measured independently, and as train reported it.
    ckpt = checkpoint.load(path)
    test = load_mnist(big_data_dir).test
    predicted = predicted_digits(ckpt.best_network, test.float_images())
    assert report["correct"] == int(np.sum(predicted == test.labels))
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(test.labels, minlength=10))
    assert f"test accuracy {report['accuracy']:.2%}" in train_output


def test_evaluate_prints_a_table(model, big_data_dir):
    path, _ = model
    report = json.loads(run("evaluate", path, "--data-dir", big_data_dir, "--json").output)
    output = run("evaluate", path, "--data-dir", big_data_dir).output
    assert f"accuracy {report['accuracy']:.2%} ({report['correct']:,}/300)" in output
    assert "digit  precision  recall  support" in output
    assert "confusion matrix" in output
    rows = [line.split() for line in output.splitlines() if re.match(r"^\s{3}\d  ", line)]
    assert len(rows) == 10
    assert [list(map(int, r[1:])) for r in rows] == report["confusion_matrix"]


def test_evaluate_validation_split(model, big_data_dir):
    path, _ = model
    report = json.loads(run("evaluate", path, "--data-dir", big_data_dir, "--split", "validation", "--json").output)
    assert report["split"] == "validation" and report["total"] == 100  # the model's own validation size
    ckpt = checkpoint.load(path)
    assert report["accuracy"] == pytest.approx(ckpt.metadata["best_validation_accuracy"])


def test_evaluate_last_weights(model, big_data_dir):
    path, _ = model
    report = json.loads(run("evaluate", path, "--data-dir", big_data_dir, "--weights", "last", "--json").output)
    ckpt = checkpoint.load(path)
    assert report["weights"] == "last"
    assert report["accuracy"] == pytest.approx(ckpt.metadata["test_accuracy_last_epoch"])


def test_evaluate_test_split_on_small_data(synthetic_data_dir, tmp_path):
    train(synthetic_data_dir, tmp_path / "m.npz", "-q")
    result = run("evaluate", tmp_path / "m.npz", "--data-dir", synthetic_data_dir, "--json", expect=None)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total"] == 200


def test_evaluate_a_network_that_cannot_read_digits_is_one_error_line(synthetic_data_dir, tmp_path):
    # a textbook JSON file of another task (2-3) used to end in numpy's matmul traceback
    from digitnet.network import Network

    path = checkpoint.save(tmp_path / "small.npz", Network([10, 3, 10], rng=np.random.default_rng(0)), metadata={})
    result = run("evaluate", path, "--data-dir", synthetic_data_dir, expect=1)
    assert result.output.strip() == (f"Error: {path}: a 10-3-10 network cannot read 28x28 digits "
                                      "(it needs 784 inputs and 10 outputs)")


def test_evaluate_validation_split_on_small_data(synthetic_data_dir, tmp_path):
    train(synthetic_data_dir, tmp_path / "m.npz", "-q")
    report = json.loads(run("evaluate", tmp_path / "m.npz", "--data-dir", synthetic_data_dir,
                            "--split", "validation", "--json").output)
    assert report["total"] == 100


def test_evaluate_a_missing_model(tmp_path, synthetic_data_dir):
    result = run("evaluate", tmp_path / "absent.npz", "--data-dir", synthetic_data_dir, expect=None)
    assert_clean_exit(result, 1)
    assert str(tmp_path / "absent.npz") in result.output and "no such file" in result.output


@pytest.mark.parametrize("content", [b"", b"garbage" * 50, b"PK\x03\x04broken"])
def test_evaluate_a_bad_checkpoint(tmp_path, synthetic_data_dir, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    result = run("evaluate", bad, "--data-dir", synthetic_data_dir, expect=None)
    assert_clean_exit(result, 1)
    assert str(bad) in result.output


# ---------------------------------------------------------------------------
# info


def test_info(model):
    path, _ = model
    output = run("info", path).output
    ckpt = checkpoint.load(path)
    assert output.startswith(f"{path}: 784-10-10 sigmoid network, quadratic cost, float32")
    completed = re.search(r"^  epochs completed +2 of 2$", output, re.M)
    batch = re.search(r"^  --batch-size +10$", output, re.M)  # option names, one column for every key
    assert completed and batch, output
    assert completed.group().index("2 of 2") == batch.group().index("10")
    history = [line.split() for line in output.splitlines() if re.match(r"^\s+[12]\s+\d+\.\d{5}\s", line)]
    assert [int(h[0]) for h in history] == [1, 2]
    assert [float(h[1]) for h in history] == [pytest.approx(h["training_cost"], abs=1e-5) for h in ckpt.history]
    assert "versions" in output and "numpy" in output
    # Accuracies one way, in percent.
    assert re.search(r"^  best epoch\s+\d \(validation \d+\.\d\d%\)$", output, re.M), output
    assert re.search(r"^  test accuracy\s+\d+\.\d\d% \(last epoch \d+\.\d\d%\)$", output, re.M), output


def test_info_json(model):
    path, _ = model
    meta = json.loads(run("info", path, "--json").output)
    assert meta == checkpoint.load(path).metadata


def test_info_writes_the_files_control_characters_as_escapes(tmp_path):
    """A crafted checkpoint's text cannot clear, recolour or redraw the terminal info prints on."""
    from digitnet.network import Network

    path = checkpoint.save(tmp_path / "crafted.npz", Network([4, 3, 2], rng=np.random.default_rng(0)),
                           metadata={"dataset": "\x1b[2J\x1b[31mred\rover", "saved_at": "now\u202e"})
    output = run("info", path).output
    assert "\x1b" not in output and "\r" not in output and "\u202e" not in output
    assert "\\x1b[2J\\x1b[31mred\\rover" in output and "now\\u202e" in output


def test_info_a_bad_checkpoint(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    assert_clean_exit(run("info", bad, expect=None), 1)
    assert_clean_exit(run("info", tmp_path / "absent.npz", expect=None), 1)
    result = run("info", tmp_path, expect=1)  # a folder is a file problem, like any other bad model
    assert result.output == f"Error: {tmp_path} is a folder, not a checkpoint file\n"


# ---------------------------------------------------------------------------
# --version, --help, python -m


def test_version():
    result = run("--version")
    assert result.output.strip() == f"digitnet, version {__version__}"
    assert run("-V").output == result.output


def test_help_lists_the_commands():
    output = run("--help").output
    for command in ("download", "train", "evaluate", "info"):
        assert re.search(rf"^\s+{command}\s", output, re.M), output
    assert run("-h").output == output


def test_train_help_shows_the_defaults():
    output = " ".join(run("train", "--help").output.split())  # undo line wrapping
    for default in ("[default: 30]", "[default: 30; x>=1]", "[default: 10; x>=1]", "[default: 3.0; x>0]",
                    "[default: 0; x>=0]", "[default: quadratic]", "[default: normal]", "[default: 10000; x>=0]",
                    "[default: float32]", "[default: 0.5; 0<x<1]", "[default: 0]", "[default: 0.0; 0<=x<1]"):
        assert default in output, default
    assert "$DIGITNET_DATA_DIR" in output


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "digitnet", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "train" in result.stdout
    version = subprocess.run([sys.executable, "-m", "digitnet", "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.stdout.strip() == f"digitnet, version {__version__}"


def test_unknown_command_exits_2():
    result = run("fly", expect=None)
    assert result.exit_code == 2 and "No such command" in result.output


# ---------------------------------------------------------------------------
# The real MNIST (skipped when ../shared/mnist is absent)


def test_one_epoch_on_real_mnist(real_mnist_dir, tmp_path):
    out = tmp_path / "real.npz"
    result = run("train", "--hidden", "10", "--epochs", "1", "--data-dir", real_mnist_dir, "--out", out)
    assert "on 50,000 images" in result.output
    report = json.loads(run("evaluate", out, "--data-dir", real_mnist_dir, "--json").output)
    assert report["total"] == 10000
    assert report["accuracy"] > 0.75  # one epoch of 784-10-10 reaches about 87%
    assert f"test accuracy {report['accuracy']:.2%}" in result.output
