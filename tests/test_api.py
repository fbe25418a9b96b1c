"""The public Python API (digitnet.load, train, load_mnist; digitnet.model.Model) against the command line.

Everything runs on the small synthetic MNIST files of helpers.write_mnist (600
training images, 200 test): the claims are parity claims (the same weights as
`digitnet train`, bit for bit; the same answers as `digitnet predict --json`),
which tiny data checks as well as the real one, in a second.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import TRAIN_SHORT, run_cli, write_mnist

import digitnet
from digitnet import checkpoint, textbook_json
from digitnet.checkpoint import CheckpointError
from digitnet.config import TrainConfig
from digitnet.data import DataError
from digitnet.images import ImageError
from digitnet.model import RUN_KEYWORDS, config_from, keywords
from digitnet.network import Network
from digitnet.runs import SettingsError
from digitnet.settings import by_option, settings_of
from digitnet.training import TrainingDiverged

# The run both sides train: options the command line types, the same as keywords.  Momentum, a distortion
# and a validation split exercise the velocities, the RNG shared with the distortions and the best epoch.
OPTIONS = ["--hidden", "12", "--epochs", "2", "--batch-size", "10", "--validation-size", "100", "--seed", "3",
           "--cost", "cross-entropy", "--eta", "1", "--momentum", "0.5", "--augment", "1"]
KEYWORDS = dict(hidden=12, epochs=2, batch_size=10, validation_size=100, seed=3, cost="cross-entropy", eta=1,
                momentum=0.5, augment="1")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("api") / "mnist")


@pytest.fixture(scope="module")
def cli_model(data_dir) -> Path:
    """`digitnet train` with OPTIONS: the checkpoint the library must reproduce."""
    out = data_dir.parent / "cli.npz"
    run_cli("train", *OPTIONS, "--data-dir", data_dir, "--out", out)
    return out


@pytest.fixture(scope="module")
def seven(data_dir) -> Path:
    path = data_dir.parent / "seven.png"
    image = Image.new("L", (90, 120), 245)
    ImageDraw.Draw(image).line([(20, 25), (70, 25), (40, 100)], fill=10, width=9)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def test_images(data_dir):
    return digitnet.load_mnist(data_dir, validation_size=100).test.images


def arrays(network: Network) -> list[np.ndarray]:
    return network.weights + network.biases


def assert_same_networks(a: Network, b: Network) -> None:
    assert a.sizes == b.sizes and a.cost.name == b.cost.name and a.dtype == b.dtype
    for x, y in zip(arrays(a), arrays(b)):
        np.testing.assert_array_equal(x, y)


def assert_same_runs(path_a: Path, path_b: Path) -> None:
    """Two checkpoints of the same run: every array equal, the same settings and per-epoch numbers."""
    a, b = checkpoint.load(path_a), checkpoint.load(path_b)
    assert_same_networks(a.network, b.network)
    assert_same_networks(a.best_network, b.best_network)
    for x, y in zip(a.velocities[0] + a.velocities[1], b.velocities[0] + b.velocities[1]):
        np.testing.assert_array_equal(x, y)
    assert a.metadata["hyperparameters"] == b.metadata["hyperparameters"]
    timeless = lambda record: {k: v for k, v in record.items() if k != "seconds"}  # noqa: E731
    assert [timeless(h) for h in a.history] == [timeless(h) for h in b.history]
    state_a, state_b = dict(a.metadata["state"]), dict(b.metadata["state"])
    assert timeless(state_a.pop("untrained")) == timeless(state_b.pop("untrained")) and state_a == state_b
    for key in ("test_accuracy", "test_accuracy_last_epoch", "best_epoch", "epochs_completed"):
        assert a.metadata[key] == b.metadata[key], key


# ---------------------------------------------------------------------------
# The package


def test_all_names_exactly_the_three_functions():
    assert digitnet.__all__ == ["load", "train", "load_mnist"]
    namespace = {}
    exec("from digitnet import *", namespace)
    assert {name for name in namespace if not name.startswith("__")} == {"load", "train", "load_mnist"}
    assert {"load", "train", "load_mnist", "__version__"} <= set(dir(digitnet))
    with pytest.raises(AttributeError, match="no attribute 'Model'"):
        digitnet.Model  # noqa: B018 -- private: digitnet.model.Model


def python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_digitnet_imports_no_numpy():
    assert python("import digitnet, sys; print('numpy' in sys.modules)").strip() == "False"


def test_load_and_predict_import_neither_pillow_nor_click_nor_tqdm(cli_model):
    code = (f"import sys, numpy, digitnet; digitnet.load({str(cli_model)!r}).predict(numpy.zeros((3, 784), "
            "numpy.uint8)); print([m for m in ('PIL', 'click', 'tqdm', 'matplotlib') if m in sys.modules])")
    assert python(code).strip() == "[]"


# ---------------------------------------------------------------------------
# load


def test_load_a_checkpoint_gives_its_best_weights_settings_and_history(cli_model):
    ckpt = checkpoint.load(cli_model)
    model = digitnet.load(cli_model)
    assert model.weights_used == "best" and model.network is model.checkpoint.best_network
    assert_same_networks(model.network, ckpt.best_network)
    assert model.settings == TrainConfig.from_dict(ckpt.metadata["hyperparameters"])
    assert model.settings.hidden_sizes == (12,) and model.settings.augment == "shift=1"
    assert [h["epoch"] for h in model.history] == [1, 2]
    assert {"training_cost", "validation_accuracy", "learning_rate"} <= set(model.history[0])
    assert model.test_accuracy == ckpt.metadata["test_accuracy"]
    last = digitnet.load(cli_model, weights="last")
    assert last.weights_used == "last" and last.network is last.checkpoint.network
    assert last.test_accuracy == ckpt.metadata["test_accuracy_last_epoch"]
    assert "784-12-10 cross-entropy cost, best weights" in repr(model)


def test_load_a_textbook_json_network(cli_model, tmp_path, test_images):
    npz = digitnet.load(cli_model)
    path = tmp_path / "network.json"
    path.write_text(json.dumps(textbook_json.dump(npz.network)))
    book = digitnet.load(path)
    assert book.settings is None and book.history == [] and book.test_accuracy is None
    np.testing.assert_array_equal(book.predict_proba(test_images), npz.predict_proba(test_images))


@pytest.mark.parametrize("make, words", [
    (lambda p: p, "no such file"),
    (lambda p: (p.write_text("not a model"), p)[1], "not a valid .npz checkpoint"),
    (lambda p: checkpoint.save(p, Network([20, 5, 3], rng=np.random.default_rng(0)), {}),
     "cannot read 28x28 digits"),
])
def test_load_refuses_what_predict_refuses_with_one_checkpoint_error(tmp_path, make, words):
    path = make(tmp_path / "model.npz")
    with pytest.raises(CheckpointError, match=words) as caught:
        digitnet.load(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    if words == "cannot read 28x28 digits":  # the command's own message for the same file
        assert str(caught.value) in run_cli("predict", "x.png", "--model", path, expect=1).output


def test_load_refuses_unknown_weights(cli_model):
    with pytest.raises(ValueError, match="weights must be 'best' or 'last'"):
        digitnet.load(cli_model, weights="middle")


# ---------------------------------------------------------------------------
# predict, predict_proba and what they accept


def test_predict_uint8_rows_and_float_images_agree(cli_model, test_images):
    model = digitnet.load(cli_model)
    as_floats = (test_images / 255.0).reshape(-1, 28, 28)
    assert model.input_kind(test_images) == "uint8 0-255" and model.input_kind(as_floats) == "float 0-1"
    digits = model.predict(test_images)
    assert digits.shape == (200,) and digits.dtype == np.int64
    np.testing.assert_array_equal(model.predict(as_floats), digits)
    proba = model.predict_proba(test_images)
    assert proba.shape == (200, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), digits)
    np.testing.assert_allclose(model.predict_proba(as_floats), proba, atol=1e-6)
    assert (digits == digitnet.load_mnist(cli_model.parent / "mnist", 100).test.labels).mean() > 0.5
    assert model.predict(test_images[:0]).shape == (0,) and model.predict_proba(test_images[:0]).shape == (0, 10)


@pytest.mark.parametrize("bad, words", [
    (lambda x: x.astype(np.float64), "float64 pixels from 0 to 255; floats must be in [0, 1] (0-255 values? divide"),
    (lambda x: x / 255.0 - 0.5, "floats must be in [0, 1]"),
    (lambda x: x.astype(np.int64), "dtype int64; expected uint8 pixels 0-255 or floats 0-1"),
    (lambda x: x > 0, "dtype bool"),
    (lambda x: np.where(x > 0, np.nan, 0.0), "NaN"),
    (lambda x: x[:, :783], "shape (200, 783); expected (n, 784) or (n, 28, 28)"),
    (lambda x: x[0], "shape (784,), one image: pass a batch of one, x[None]"),
    (lambda x: x[0].reshape(28, 28), "shape (28, 28), one image"),
    (lambda x: x.reshape(-1, 14, 56), "shape (200, 14, 56)"),
])
def test_bad_arrays_are_one_line_value_errors(cli_model, test_images, bad, words):
    model = digitnet.load(cli_model)
    x = bad(test_images)
    for call in (model.predict, model.predict_proba, model.input_kind):
        with pytest.raises(ValueError, match=re.escape(words)) as caught:
            call(x)
        assert "\n" not in str(caught.value)


def test_predict_image_is_the_commands_answer_from_a_path_and_from_bytes(cli_model, seven):
    record = json.loads(run_cli("predict", seven, "--model", cli_model, "--json").stdout)
    model = digitnet.load(cli_model)
    answer = model.predict_image(seven)
    assert answer.to_dict() == record
    from_bytes = model.predict_image(seven.read_bytes())
    assert from_bytes.to_dict() == {k: v for k, v in record.items() if k != "path"}
    assert answer.image.shape == (28, 28) and from_bytes.digit == answer.digit
    np.testing.assert_array_equal(from_bytes.image, answer.image)
    # predict_proba gives the command's confidences for the input it saw
    shares = model.predict_proba(answer.image[None])[0]
    assert round(float(shares[record["digit"]]), 6) == record["confidence"]
    np.testing.assert_allclose(shares, answer.shares, atol=1e-7)


def test_predict_image_refusals(cli_model, tmp_path):
    model = digitnet.load(cli_model)
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(ImageError, match="bad.png"):
        model.predict_image(tmp_path / "bad.png")
    with pytest.raises(ImageError):
        model.predict_image(b"not a picture")
    with pytest.raises(TypeError, match="a file path or the file's bytes"):
        model.predict_image(np.zeros((28, 28)))


# ---------------------------------------------------------------------------
# train


def test_train_equals_the_command_bit_for_bit_in_memory_and_into_a_file(data_dir, cli_model, tmp_path):
    model = digitnet.train(data_dir=data_dir, **KEYWORDS)
    cli = checkpoint.load(cli_model)
    assert model.checkpoint is None and model.weights_used == "best"
    assert_same_networks(model.network, cli.best_network)
    assert model.test_accuracy == cli.metadata["test_accuracy"]
    assert [h["validation_accuracy"] for h in model.history] == [h["validation_accuracy"] for h in cli.history]
    assert_same_runs(model.save(tmp_path / "saved.npz"), cli_model)  # saved as `train --out` writes it

    written = digitnet.train(data_dir=data_dir, out=tmp_path / "out.npz", **KEYWORDS)
    assert_same_runs(tmp_path / "out.npz", cli_model)
    assert written.checkpoint.path == tmp_path / "out.npz"
    assert_same_networks(written.network, cli.best_network)


def test_a_model_trained_in_memory_resumes_on_the_command_line(data_dir, cli_model, tmp_path):
    half = digitnet.train(data_dir=data_dir, **dict(KEYWORDS, epochs=1)).save(tmp_path / "half.npz")
    run_cli("train", "--resume", half, "--epochs", "2", "--data-dir", data_dir)
    assert_same_runs(half, cli_model)


def test_train_writes_only_where_asked_and_keeps_existing_files(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    digitnet.train(data_dir=data_dir, hidden=5, epochs=1, validation_size=100)
    assert list(tmp_path.iterdir()) == []  # no model.npz: a library call writes nothing unless asked
    (tmp_path / "taken.npz").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="taken.npz already exists: choose another out, or pass force=True"):
        digitnet.train(data_dir=data_dir, out="taken.npz", hidden=5, epochs=1, validation_size=100)
    assert (tmp_path / "taken.npz").read_bytes() == b"keep me"
    digitnet.train(data_dir=data_dir, out="taken.npz", force=True, hidden=5, epochs=1, validation_size=100)
    assert checkpoint.load("taken.npz").network.sizes == [784, 5, 10]


def test_keywords_are_the_options_of_train(data_dir):
    table = settings_of(TrainConfig)
    assert len(keywords()) == len(table) and not set(keywords()) & set(RUN_KEYWORDS)
    for keyword, name in keywords().items():
        assert by_option(TrainConfig)["--" + keyword.replace("_", "-")] == name
    import inspect

    parameters = inspect.signature(digitnet.train).parameters
    assert list(parameters) == [*RUN_KEYWORDS, *keywords()] and parameters["hidden"].default == 30
    assert "eta=3.0: Learning rate eta. (x>0)" in digitnet.train.__doc__


@pytest.mark.parametrize("given, field, expected", [
    (dict(hidden=30), "hidden_sizes", (30,)),
    (dict(hidden=[100, 30]), "hidden_sizes", (100, 30)),
    (dict(hidden="100,30"), "hidden_sizes", (100, 30)),
    (dict(hidden=(np.int64(20),)), "hidden_sizes", (20,)),
    (dict(eta=3), "learning_rate", 3.0),
    (dict(epochs=np.int64(5)), "epochs", 5),
    (dict(augment="2"), "augment", "shift=2"),
    (dict(augment=0), "augment", ""),
    (dict(exact_cost=True), "exact_cost", True),
])
def test_values_are_read_as_the_command_reads_them(given, field, expected):
    value = getattr(config_from(given), field)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("given, words", [
    (dict(learning_rate=3.0), "unknown setting 'learning_rate': it is called eta (the option --eta)"),
    (dict(hidden_sizes=[30]), "it is called hidden"),
    (dict(hiden=30), "unknown setting 'hiden'; did you mean hidden?"),
    (dict(batchsize=10), "did you mean batch_size or late_batch_size?"),
    (dict(datadir="data"), "did you mean data_dir?"),
    (dict(zzz=1), "unknown setting 'zzz'; the settings are hidden, epochs, batch_size, eta"),
    (dict(hidden="10,,5"), "--hidden: '10,,5' has an empty part"),
])
def test_unknown_keywords_are_refused_with_what_was_meant(tmp_path, given, words):
    with pytest.raises(ValueError, match=re.escape(words)) as caught:
        digitnet.train(data_dir=tmp_path / "no-data", **given)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("given", [dict(eta=-1), dict(cost="cubic"), dict(epochs=0), dict(dropout=1.0),
                                   dict(hidden=[30, 0]), dict(eta="fast"), dict(exact_cost=1),
                                   dict(patience=2, validation_size=0), dict(augment="wobble=3")])
def test_bad_values_get_the_commands_messages_before_any_data_is_read(tmp_path, given):
    with pytest.raises(ValueError) as caught:
        digitnet.train(data_dir=tmp_path / "no-data", **given)  # not DataError: the settings are checked first
    fields = {keywords()[k]: v for k, v in given.items()}
    fields = {k: float(v) if k == "learning_rate" and isinstance(v, int) else v for k, v in fields.items()}
    if "hidden_sizes" in fields:
        fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
    assert str(caught.value) == "; ".join(TrainConfig(**fields).problems())


def test_settings_that_do_not_fit_the_data_say_so_as_the_command_does(data_dir):
    options = ["--batch-size", "1000", "--validation-size", "100"]
    with pytest.raises(SettingsError) as caught:
        digitnet.train(data_dir=data_dir, batch_size=1000, validation_size=100)
    assert str(caught.value) == "--batch-size 1000 is larger than the 500 training images"
    assert str(caught.value) in run_cli("train", *options, "--data-dir", data_dir, "--out", data_dir / "x.npz",
                                        expect=2).output


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz is missing from .*; run `digitnet download`"):
        digitnet.train(data_dir=tmp_path, epochs=1)


def test_a_diverging_run_raises_with_what_to_try(data_dir, tmp_path):
    settings = dict(hidden=12, epochs=3, validation_size=100, eta=1e5)
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch \d: .*Try a smaller eta \(it was 100000\)"):
        digitnet.train(data_dir=data_dir, **settings)
    with pytest.raises(TrainingDiverged, match="(kept in|nothing was saved).*Try a smaller eta"):
        digitnet.train(data_dir=data_dir, out=tmp_path / "m.npz", **settings)


def test_progress_is_off_by_default_and_a_bar_with_progress_true(data_dir, capfd):
    digitnet.train(data_dir=data_dir, hidden=5, epochs=2, validation_size=100)
    assert capfd.readouterr() == ("", "")
    digitnet.train(data_dir=data_dir, hidden=5, epochs=2, validation_size=100, progress=True)
    out, err = capfd.readouterr()
    assert out == "" and "epoch 1/2" in err and "epoch 2/2" in err and "validation" in err


# ---------------------------------------------------------------------------
# save and load_mnist


def test_save_a_loaded_model_and_refuse_to_overwrite(cli_model, tmp_path):
    model = digitnet.load(cli_model)
    assert_same_runs(model.save(tmp_path / "copy.npz"), cli_model)
    with pytest.raises(FileExistsError, match="copy.npz already exists: choose another path, or pass force=True"):
        model.save(tmp_path / "copy.npz")
    model.save(tmp_path / "copy.npz", force=True)
    with pytest.raises(ValueError, match="digitnet export MODEL --to json"):
        model.save(tmp_path / "copy.json")


def test_load_mnist_gives_the_splits_as_arrays(data_dir, monkeypatch):
    mnist = digitnet.load_mnist(data_dir, validation_size=100)
    for split, n in ((mnist.training, 500), (mnist.validation, 100), (mnist.test, 200)):
        assert split.images.shape == (n, 784) and split.images.dtype == np.uint8
        assert split.labels.shape == (n,) and split.labels.dtype == np.uint8
    monkeypatch.setenv("DIGITNET_DATA_DIR", str(data_dir))
    np.testing.assert_array_equal(digitnet.load_mnist(validation_size=100).test.images, mnist.test.images)


def test_load_mnist_refusals(data_dir, tmp_path):
    with pytest.raises(DataError, match="validation size 10000 must be between 0 and 599"):
        digitnet.load_mnist(data_dir)  # the textbook's 10,000 do not fit in 600 images
    with pytest.raises(ValueError, match="--validation-size must be at least 0, got -1"):
        digitnet.load_mnist(data_dir, validation_size=-1)
    with pytest.raises(DataError, match="run `digitnet download`"):
        digitnet.load_mnist(tmp_path / "empty")
