"""digitnet.export and `digitnet export`: ONNX that onnxruntime runs to digitnet's answers, the textbook's JSON.

ONNX parity is measured on all 10,000 MNIST test images when ../shared/mnist is present (networks
trained here for a few seconds on its training images: CI has no trained model), else skipped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli, synthetic_digits
from digitnet import __version__, checkpoint
from digitnet.data import load_pair, to_float
from digitnet.export import ExportError, to_onnx, to_textbook_json
from digitnet.network import Network

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-5  # the bar: max |onnxruntime - digitnet| over the activations


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def props(model) -> dict:
    return {p.key: json.loads(p.value) for p in model.metadata_props}


def pixels(n: int, seed: int = 0) -> np.ndarray:
    return to_float(synthetic_digits(n, seed)[0].reshape(n, 784))


def trained(images, labels, cost: str, init: str, eta: float, seed: int = 0, steps: int = 600) -> Network:
    """A network taught a little by plain SGD (batch 10): decisive enough that argmax has no near-ties."""
    network = Network([784, 30, 10], cost=cost, init=init, rng=np.random.default_rng(seed))
    x, y = to_float(images[: 10 * steps]), np.eye(10, dtype=np.float32)[labels[: 10 * steps]]
    for start in range(0, len(x), 10):
        network.update_mini_batch(x[start:start + 10], y[start:start + 10], eta)
    return network


# -- ONNX: the graph ------------------------------------------------------------------------------

@pytest.mark.parametrize("cost, last_op", [("quadratic", "Sigmoid"), ("cross-entropy", "Sigmoid"),
                                           ("log-likelihood", "Softmax")])
def test_the_graph_is_gemm_and_sigmoid_per_layer_and_passes_the_checker(cost, last_op):
    network = Network([784, 16, 12, 10], cost=cost, rng=np.random.default_rng(1))
    model = to_onnx(network, {})
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8 and [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Sigmoid", "Gemm", "Sigmoid", "Gemm", last_op, "ArgMax"]
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    assert all({a.name: a.i for a in n.attribute} == {"transB": 1} for n in gemms)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for layer, gemm in enumerate(gemms):
        w, b = weights[gemm.input[1]], weights[gemm.input[2]]
        assert w.shape == network.weights[layer].shape  # the book's (n_out, n_in), used as it is
        np.testing.assert_array_equal(w, network.weights[layer])
        np.testing.assert_array_equal(b, network.biases[layer])
    if last_op == "Softmax":
        assert {a.name: a.i for a in model.graph.node[-2].attribute} == {"axis": 1}
    assert {a.name: a.i for a in model.graph.node[-1].attribute} == {"axis": 1, "keepdims": 0}


def test_the_interface_is_pixels_in_activations_and_digit_out_with_a_dynamic_batch():
    model = to_onnx(Network([784, 20, 10], rng=np.random.default_rng(2)), {})

    def shape(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    (pixels_in,), (activations, digit) = model.graph.input, model.graph.output
    assert (pixels_in.name, pixels_in.type.tensor_type.elem_type, shape(pixels_in)) == \
        ("pixels", onnx.TensorProto.FLOAT, ["batch", 784])
    assert (activations.name, activations.type.tensor_type.elem_type, shape(activations)) == \
        ("activations", onnx.TensorProto.FLOAT, ["batch", 10])
    assert (digit.name, digit.type.tensor_type.elem_type, shape(digit)) == ("digit", onnx.TensorProto.INT64, ["batch"])


@pytest.mark.parametrize("rows", [1, 7])
@pytest.mark.parametrize("cost", ["quadratic", "log-likelihood"])
def test_any_batch_size_gives_digitnets_answers(rows, cost):
    network = Network([784, 20, 10], cost=cost, init="scaled", rng=np.random.default_rng(rows))
    x = pixels(rows, seed=rows)
    activations, digits = session(to_onnx(network, {})).run(None, {"pixels": x})
    assert activations.shape == (rows, 10) and activations.dtype == np.float32
    assert digits.shape == (rows,) and digits.dtype == np.int64
    np.testing.assert_allclose(activations, network.feedforward(x), rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(digits, np.argmax(activations, axis=1))


def test_any_mlp_exports_not_only_digit_readers():
    network = Network([5, 4, 3], cost="cross-entropy", rng=np.random.default_rng(3))
    x = np.random.default_rng(4).random((6, 5), dtype=np.float32)
    activations, digits = session(to_onnx(network)).run(None, {"pixels": x})
    np.testing.assert_allclose(activations, network.feedforward(x), rtol=0, atol=TOLERANCE)
    assert digits.shape == (6,)


def test_a_float64_network_is_written_as_float32():
    network = Network([784, 20, 10], rng=np.random.default_rng(5), dtype="float64")
    model = to_onnx(network, {})
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in model.graph.initializer)
    assert props(model)["dtype"] == "float64" and props(model)["exported_as"] == "float32"
    x = pixels(50)
    activations, _ = session(model).run(None, {"pixels": x})
    np.testing.assert_allclose(activations, network.feedforward(x), rtol=0, atol=TOLERANCE)


def test_the_metadata_holds_the_version_the_settings_and_the_recorded_accuracy_of_those_weights():
    network = Network([784, 20, 10], rng=np.random.default_rng(6))
    metadata = {"hyperparameters": {"learning_rate": 3.0, "hidden_sizes": [20], "seed": 4},
                "test_accuracy": 0.95, "test_accuracy_last_epoch": 0.94}
    best = to_onnx(network, metadata, "best")
    assert props(best) == {"digitnet_version": __version__, "settings": metadata["hyperparameters"],
                           "test_accuracy": 0.95, "weights": "best", "sizes": [784, 20, 10], "cost": "quadratic",
                           "dtype": "float32", "exported_as": "float32", "source": "digitnet checkpoint"}
    assert best.producer_name == "digitnet" and best.producer_version == __version__
    assert props(to_onnx(network, metadata, "last"))["test_accuracy"] == 0.94
    nothing = props(to_onnx(network, {"source": "the textbook's JSON network format"}))
    assert nothing["test_accuracy"] is None and nothing["settings"] == {} and "textbook" in nothing["source"]


def test_without_the_onnx_package_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ExportError, match=r"^ONNX export needs the onnx package: pip install 'digitnet\[onnx\]'$"):
        to_onnx(Network([4, 2], rng=np.random.default_rng(0)))


# -- ONNX: the same answers as digitnet on the 10,000 test images -------------------------------

@pytest.fixture(scope="module")
def mnist_arrays(real_mnist_dir):
    train_images, train_labels = load_pair(real_mnist_dir, "train")
    test_images, test_labels = load_pair(real_mnist_dir, "t10k")
    return train_images, train_labels, to_float(test_images), test_labels


@pytest.mark.parametrize("cost, init, eta", [("quadratic", "normal", 3.0), ("log-likelihood", "scaled", 0.5)])
def test_onnxruntime_gives_digitnets_activations_on_the_10000_test_images(mnist_arrays, cost, init, eta):
    train_images, train_labels, test_x, test_labels = mnist_arrays
    network = trained(train_images, train_labels, cost, init, eta)
    ours = network.feedforward(test_x)
    activations, digits = session(to_onnx(network, {})).run(None, {"pixels": test_x})
    assert activations.shape == (10_000, 10)
    assert float(np.max(np.abs(activations - ours))) <= TOLERANCE
    np.testing.assert_array_equal(digits, np.argmax(ours, axis=1))
    assert np.mean(digits == test_labels) > 0.7  # a network that reads digits, not noise


# -- the textbook's JSON --------------------------------------------------------------------------

def network2_load(path) -> dict:
    """What network2.py's load() does with the file: json.load, the cost class by name, np.array per entry."""
    with open(path) as f:
        data = json.load(f)
    assert data["cost"] in ("QuadraticCost", "CrossEntropyCost")  # getattr(sys.modules[__name__], data["cost"])
    return {"sizes": data["sizes"], "weights": [np.array(w) for w in data["weights"]],
            "biases": [np.array(b) for b in data["biases"]], "cost": data["cost"]}


def book_feedforward(book: dict, a: np.ndarray) -> np.ndarray:
    """network2.py's feedforward for one example, a column (784, 1)."""
    for b, w in zip(book["biases"], book["weights"]):
        a = 1.0 / (1.0 + np.exp(-(np.dot(w, a) + b)))
    return a


@pytest.mark.parametrize("cost, book_cost", [("quadratic", "QuadraticCost"), ("cross-entropy", "CrossEntropyCost")])
def test_the_json_is_network2s_format_and_reads_back_to_identical_weights(tmp_path, cost, book_cost):
    network = Network([784, 16, 12, 10], cost=cost, rng=np.random.default_rng(7))
    document = to_textbook_json(network)
    assert list(document) == ["sizes", "weights", "biases", "cost"] and document["cost"] == book_cost
    assert type(document["weights"][0][0][0]) is float and type(document["biases"][0][0]) is list
    path = tmp_path / "net.json"
    path.write_text(json.dumps(document))

    again = checkpoint.load(path).network
    assert again.sizes == network.sizes and again.cost.name == cost
    for ours, theirs in zip(network.weights + network.biases, again.weights + again.biases):
        assert theirs.dtype == ours.dtype and np.array_equal(theirs, ours)  # float32 -> JSON -> float32, exact

    book = network2_load(path)
    assert book["sizes"] == network.sizes
    assert [w.shape for w in book["weights"]] == [(16, 784), (12, 16), (10, 12)]
    assert [b.shape for b in book["biases"]] == [(16, 1), (12, 1), (10, 1)]  # columns, as the book keeps them
    assert all(w.dtype == np.float64 and np.array_equal(w, ours) for w, ours in zip(book["weights"], network.weights))
    x = pixels(3)
    book_answers = np.hstack([book_feedforward(book, row.reshape(784, 1).astype(np.float64)) for row in x]).T
    np.testing.assert_allclose(book_answers, network.feedforward(x), rtol=0, atol=1e-5)


def test_a_log_likelihood_network_is_refused_for_json_in_one_line():
    with pytest.raises(ExportError) as refused:
        to_textbook_json(Network([784, 10, 10], cost="log-likelihood", rng=np.random.default_rng(0)))
    message = str(refused.value)
    assert "\n" not in message and "log-likelihood" in message and "QuadraticCost and CrossEntropyCost" in message


# -- `digitnet export` ----------------------------------------------------------------------------

@pytest.fixture
def models(tmp_path, monkeypatch):
    """A quadratic checkpoint with best and last weights and a log-likelihood one, in the working directory."""
    monkeypatch.chdir(tmp_path)
    last = Network([784, 20, 10], rng=np.random.default_rng(8))
    best = Network([784, 20, 10], rng=np.random.default_rng(9))
    meta = {"hyperparameters": {"learning_rate": 3.0}, "best_epoch": 2, "epochs_completed": 3,
            "test_accuracy": 0.9, "test_accuracy_last_epoch": 0.8}
    checkpoint.save(tmp_path / "model.npz", last, meta, best_network=best)
    checkpoint.save(tmp_path / "soft.npz", Network([784, 20, 10], cost="log-likelihood",
                                                   rng=np.random.default_rng(10)), {"epochs_completed": 1})
    return {"best": best, "last": last}


def read_onnx(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    return model


def first_weights(model) -> np.ndarray:
    return onnx.numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "weights_1"))


def test_export_writes_model_onnx_beside_the_model_from_the_best_weights(models):
    result = run_cli("export", "model.npz")
    assert result.output.startswith("model.onnx: model.npz's 784-20-10 network (best validation epoch 2) as ONNX")
    model = read_onnx("model.onnx")
    np.testing.assert_array_equal(first_weights(model), models["best"].weights[0])
    assert props(model)["test_accuracy"] == 0.9 and props(model)["weights"] == "best"
    run_cli("export", "-m", "model.npz", "--weights", "last", "--out", "last.onnx")
    np.testing.assert_array_equal(first_weights(read_onnx("last.onnx")), models["last"].weights[0])
    assert props(read_onnx("last.onnx"))["test_accuracy"] == 0.8


def test_an_existing_out_is_replaced_only_with_force(models):
    Path("model.onnx").write_text("mine")
    result = run_cli("export", "model.npz", expect=1)
    assert result.output == ("Error: model.onnx already exists: choose another --out, "
                             "or pass --force to replace it\n")
    assert Path("model.onnx").read_text() == "mine"
    run_cli("export", "model.npz", "--force")
    read_onnx("model.onnx")


def test_json_by_name_or_by_the_suffix_of_out(models):
    run_cli("export", "model.npz", "--to", "json")
    np.testing.assert_array_equal(checkpoint.load("model.json").network.weights[0], models["best"].weights[0])
    result = run_cli("export", "model.npz", "--out", "book.json")
    assert "in the textbook's JSON" in result.output and json.loads(Path("book.json").read_text())["sizes"] == [784, 20, 10]


@pytest.mark.parametrize("args, message", [
    (["--out", "model.txt"], "Invalid value for --out: model.txt does not end in .onnx"),
    (["--to", "json", "--out", "x.onnx"], "Invalid value for --out: x.onnx does not end in .json"),
    (["--to", "bogus"], "Invalid value for '--to'"),
])
def test_mistakes_on_the_command_line_exit_2(models, args, message):
    result = run_cli("export", "model.npz", *args, expect=2)
    assert message in result.output and not list(Path().glob("*.onnx")) and not list(Path().glob("x*"))


def test_the_model_itself_is_never_the_output(models):
    run_cli("export", "model.npz", "--to", "json")
    result = run_cli("export", "model.json", "--to", "json", "--force", expect=2)
    assert "Error: model.json is MODEL itself: name another file with --out" in result.output


def test_a_network_the_format_cannot_hold_or_an_unreadable_model_is_one_line_and_exit_1(models):
    result = run_cli("export", "soft.npz", "--to", "json", expect=1)
    assert result.output.startswith("Error: soft.npz: a log-likelihood network (softmax output layer) cannot be written")
    assert result.output.endswith("(--to onnx)\n") and result.output.count("\n") == 1
    assert not Path("soft.json").exists()
    run_cli("export", "soft.npz")  # ONNX holds it
    assert [n.op_type for n in read_onnx("soft.onnx").graph.node][-2] == "Softmax"

    Path("junk.npz").write_bytes(b"not a checkpoint")
    result = run_cli("export", "junk.npz", expect=1)
    assert result.output.startswith("Error: junk.npz: not a valid .npz checkpoint") and result.output.count("\n") == 1
    result = run_cli("export", "missing.npz", expect=1)
    assert result.output == "Error: missing.npz: no such file\n"


def test_without_the_onnx_package_the_command_says_how_to_install_it(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = run_cli("export", "model.npz", expect=1)
    assert result.output == "Error: --to onnx needs the onnx package: pip install 'digitnet[onnx]'\n"
    run_cli("export", "model.npz", "--to", "json")  # the JSON needs no extra


def test_a_folder_that_refuses_the_file_fails_before_the_work_and_leaves_nothing(models, read_only_folder):
    result = run_cli("export", "model.npz", "--out", read_only_folder / "m.onnx", expect=1)
    assert result.output.startswith(f"Error: cannot write {read_only_folder / 'm.onnx'}:")
    assert list(read_only_folder.iterdir()) == []


def test_help_names_the_formats_and_the_defaults():
    result = run_cli("export", "--help")
    for text in ("--to [onnx|json]", "--out FILE", "--force", "--weights [best|last]", '"pixels"', "network2.py"):
        assert text in result.output
