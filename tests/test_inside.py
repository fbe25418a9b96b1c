"""The numbers behind an answer: saliency against finite differences, contributions, ablation, the taught step."""

from __future__ import annotations

import gc
import hashlib
import json
import weakref

import numpy as np
import pytest

from digitnet import checkpoint, textbook_json
from digitnet.gradcheck import relative_error
from digitnet.inside import LAST, InsideError, check_off, explain, parse_off, teach, weight_atlas, weight_pictures
from digitnet.network import Network, sigmoid, softmax

# (sizes, cost, off): sigmoid output, softmax output, two hidden layers, and units switched off in both layers.
CASES = {
    "sigmoid": ([784, 12, 10], "quadratic", ()),
    "softmax": ([784, 12, 10], "log-likelihood", ()),
    "two-hidden": ([784, 9, 7, 10], "cross-entropy", ()),
    "two-hidden-off": ([784, 9, 7, 10], "cross-entropy", ((1, 2), (1, 5), (2, 0), (2, 3))),
    "softmax-off": ([784, 12, 10], "log-likelihood", ((1, 0), (1, 7))),
}


def make_network(sizes, cost="quadratic", dtype="float64", seed=0) -> Network:
    return Network(sizes, cost=cost, init="scaled", rng=np.random.default_rng(seed), dtype=dtype)


def an_input(seed=1, n=784) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def zeroed_outgoing(network: Network, off) -> list[np.ndarray]:
    """The weights with the outgoing weights of each switched-off unit set to 0 (hidden layer l feeds weights[l])."""
    weights = [w.copy() for w in network.weights]
    for layer, unit in off:
        weights[layer][:, unit] = 0.0
    return weights


def reference_z(network: Network, x: np.ndarray, off=()) -> np.ndarray:
    """z^L for a batch of rows x, written independently of inside.py: zeroed outgoing weights, 1/(1+e^-z)."""
    a = x
    for w, b in zip(zeroed_outgoing(network, off), network.biases):
        z = a @ w.T + b
        a = 1.0 / (1.0 + np.exp(-z))
    return z


def digest(network: Network) -> str:
    h = hashlib.sha256()
    for array in network.weights + network.biases:
        h.update(array.tobytes())
    return h.hexdigest()


# --- saliency ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("digit", [None, 3])
def test_saliency_equals_central_differences(case, digit):
    sizes, cost, off = CASES[case]
    network, x = make_network(sizes, cost), an_input()
    e = explain(network, x, digit=digit, off=off)
    h = 1e-5
    eye = np.eye(784) * h
    plus, minus = reference_z(network, x + eye, off)[:, e.digit], reference_z(network, x - eye, off)[:, e.digit]
    numeric = (plus - minus) / (2 * h)
    assert relative_error(e.saliency, numeric) <= 1e-4
    assert np.abs(e.saliency - numeric).max() <= 1e-4 * np.abs(numeric).max()
    assert e.saliency.shape == (784,) and e.saliency.dtype == np.float64


def test_saliency_of_a_switched_off_unit_is_not_its_sigmoid_slope():
    # With a unit off the saliency differs from the one with it on: the held unit contributes no slope.
    network, x = make_network([784, 12, 10]), an_input()
    on, off = explain(network, x, digit=2), explain(network, x, digit=2, off=[(1, 4)])
    a = on.activations[1][4]
    expected = on.saliency - network.weights[1][2, 4] * a * (1 - a) * network.weights[0][4]
    np.testing.assert_allclose(off.saliency, expected, rtol=1e-10, atol=1e-14)


# --- contributions -------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_contributions_add_up_to_z_and_are_sorted(case):
    sizes, cost, off = CASES[case]
    network, x = make_network(sizes, cost), an_input()
    for digit in range(10):
        e = explain(network, x, digit=digit, off=off)
        z = e.zs[-1][digit]
        scale = np.abs(e.contributions).sum() + abs(e.bias)
        assert abs(e.contributions.sum() + e.bias - z) <= 1e-12 * scale
        np.testing.assert_allclose(z, reference_z(network, x[None], off)[0, digit], rtol=1e-12)
        np.testing.assert_array_equal(e.contributions, network.weights[-1][digit] * e.activations[-2])
        assert e.bias == network.biases[-1][digit]
        assert sorted(e.order.tolist()) == list(range(sizes[-2]))
        assert np.all(np.diff(e.contributions[e.order]) <= 0)


def test_explain_defaults_to_the_answer_and_reads_28x28():
    network, x = make_network([784, 12, 10]), an_input()
    e = explain(network, x)
    assert e.digit == e.answer == int(np.argmax(network.feedforward(x[None])[0]))
    np.testing.assert_allclose(e.outputs, network.feedforward(x[None])[0], rtol=1e-13)
    assert explain(network, x.reshape(28, 28)).to_dict() == e.to_dict()
    assert np.array_equal(e.activations[0], x) and e.activations[0] is not x


def test_to_dict_is_the_contract_shape():
    network, x = make_network([784, 9, 7, 10], "cross-entropy"), an_input()
    e = explain(network, x, digit=4, off="2:1")
    d = e.to_dict(top=3)
    assert list(d) == ["digit", "answer", "outputs", "z", "bias", "off", "contributions", "layers", "saliency"]
    assert d["digit"] == 4 and d["off"] == [[2, 1]] and len(d["outputs"]) == 10 and len(d["saliency"]) == 784
    assert d["z"] == e.zs[-1][4] and d["bias"] == e.bias
    assert [c["unit"] for c in d["contributions"]] == e.order[:3].tolist()
    for c in d["contributions"]:
        assert c["activation"] == e.activations[-2][c["unit"]] and c["contribution"] == e.contributions[c["unit"]]
    shapes = [(layer["layer"], len(layer["z"]), len(layer["activation"])) for layer in d["layers"]]
    assert shapes == [(1, 9, 9), (2, 7, 7)]
    assert d["layers"][1]["activation"][1] == 0.0
    assert json.loads(json.dumps(d, allow_nan=False)) == d          # plain Python floats, nothing rounded
    assert len(e.to_dict()["contributions"]) == 7 and e.to_dict(top=0)["contributions"] == []
    for bad in (-1, "x", 2.5):
        with pytest.raises(InsideError, match="--top"):
            e.to_dict(top=bad)


# --- ablation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_off_equals_zeroed_outgoing_weights_and_on_again_is_bit_for_bit(dtype):
    network, x = make_network([784, 9, 7, 10], "cross-entropy", dtype=dtype), an_input()
    original = explain(network, x).to_dict()
    off = ((1, 3), (2, 0), (2, 6))
    e = explain(network, x, off=off)
    zeroed = Network(network.sizes, zeroed_outgoing(network, off), network.biases, cost="cross-entropy",
                     dtype="float64")
    np.testing.assert_allclose(e.outputs, zeroed.feedforward(x[None])[0], rtol=1e-12)
    assert e.off == off and all(e.activations[layer][unit] == 0.0 for layer, unit in off)
    assert e.answer == int(np.argmax(e.outputs))
    assert explain(network, x, off=()).to_dict() == original
    assert explain(network, x, off="").to_dict() == original


def test_a_bare_unit_is_the_last_hidden_layer():
    network, x = make_network([784, 9, 7, 10]), an_input()
    assert explain(network, x, off="3,5").off == ((2, 3), (2, 5))
    assert explain(network, x, off=[3, 5]).to_dict() == explain(network, x, off="2:3,2:5").to_dict()


# --- parse_off / check_off and the other guards ----------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ("1:4,1:17", ((1, 4), (1, 17))),
    ([[1, 4], [1, 17]], ((1, 4), (1, 17))),
    ([(1, 17), (1, 4), (1, 4)], ((1, 4), (1, 17))),
    (" 1:4 , 1:4 ,", ((1, 4),)),
    ("4,17", ((LAST, 4), (LAST, 17))),
    ([4, 17], ((LAST, 4), (LAST, 17))),
    (np.array([[2, 1]]), ((2, 1),)),
    ("", ()), ([], ()), (None, ()), ((), ()),
])
def test_parse_off_accepts(given, expected):
    assert parse_off(given) == expected


@pytest.mark.parametrize("given", ["a", "1:", ":4", "1:-2", "0:3", "1:2:3", "1.5", "-4", True, [[1, 2, 3]],
                                   [None], {"1": 4}, 4, "1:4;1:5"])
def test_parse_off_refuses_with_one_line(given):
    with pytest.raises(InsideError, match="^--off") as caught:
        parse_off(given)
    assert "\n" not in str(caught.value)


def test_check_off_resolves_and_refuses():
    one, two = make_network([784, 30, 10]), make_network([784, 9, 7, 10])
    assert check_off(one, "4,17") == ((1, 4), (1, 17))
    assert check_off(two, "3,1:8") == ((1, 8), (2, 3))
    assert check_off(one, ((1, 29),)) == ((1, 29),)
    for network, given, message in [
        (one, "1:30", "--off 1:30: hidden layer 1 has 30 units (0..29)"),
        (one, "30", "--off 30: hidden layer 1 has 30 units (0..29)"),
        (two, "2:7", "--off 2:7: hidden layer 2 has 7 units (0..6)"),
        (one, "2:1", "--off 2:1: the network has 1 hidden layer (1..1)"),
        (two, "3:1", "--off 3:1: the network has 2 hidden layers (1..2)"),
        (make_network([784, 10]), "1", "--off 1: a 784-10 network has no hidden units"),
    ]:
        with pytest.raises(InsideError) as caught:
            check_off(network, given)
        assert str(caught.value) == message
    with pytest.raises(InsideError, match="^--off 1:30"):
        explain(one, an_input(), off="1:30")


@pytest.mark.parametrize("digit", [10, -1, "x", True, 2.5, "12", [4]])
def test_a_bad_digit_names_the_option(digit):
    with pytest.raises(InsideError, match=r"^--digit must be a digit 0\.\.9"):
        explain(make_network([784, 5, 10]), an_input(), digit=digit)


def test_digits_as_typed_are_accepted():
    network, x = make_network([784, 5, 10]), an_input()
    assert explain(network, x, digit="7").digit == explain(network, x, digit=np.int64(7)).digit == 7


@pytest.mark.parametrize("x, message", [
    (np.zeros(783), "the input has 783 values; this network takes 784 (28x28 pixels)"),
    (np.full(784, np.nan), "the input has values that are not finite numbers"),
    (["a"] * 784, "the input must be 784 numbers (pixels in [0, 1])"),
    ([[0.0] * 3, [0.0]], "the input must be 784 numbers (pixels in [0, 1])"),
])
def test_a_bad_input_is_one_message(x, message):
    network = make_network([784, 5, 10])
    for call in (lambda: explain(network, x), lambda: teach(network, x, 1, 1.0)):
        with pytest.raises(InsideError) as caught:
            call()
        assert str(caught.value) == message


@pytest.mark.parametrize("label", [10, -1, "nine", False, None])
def test_a_bad_label_names_the_field(label):
    with pytest.raises(InsideError, match=r"^label must be a digit 0\.\.9"):
        teach(make_network([784, 5, 10]), an_input(), label, 1.0)


@pytest.mark.parametrize("eta", [0, -1.0, float("nan"), float("inf"), "abc", True, None, "1e400"])
def test_a_bad_eta_names_the_field(eta):
    with pytest.raises(InsideError, match="^eta must be a finite positive number"):
        teach(make_network([784, 5, 10]), an_input(), 1, eta)


# --- the taught step -----------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes, cost", [([784, 20, 10], "quadratic"), ([784, 20, 10], "cross-entropy"),
                                         ([784, 20, 10], "log-likelihood"), ([784, 9, 7, 10], "quadratic")])
def test_teach_is_update_mini_batch_on_a_batch_of_one(sizes, cost):
    network = make_network(sizes, cost, dtype="float32")
    x, label, eta = an_input().astype(np.float32), 7, 3.0
    before = digest(network)
    step = teach(network, x, label, eta)
    assert digest(network) == before                              # the given network is never changed
    y = np.zeros((1, 10), np.float32)
    y[0, label] = 1.0
    reference = Network(sizes, [w.copy() for w in network.weights], [b.copy() for b in network.biases],
                        cost=cost, dtype="float32")
    nabla_b, nabla_w = reference.backprop(x[None], y)
    assert len(step.deltas) == len(sizes) - 1
    for mine, theirs in zip(step.deltas, reference.last_deltas(1)):
        assert mine.tobytes() == theirs[0].tobytes()              # BP1 (last) and BP2 as backprop's buffers
    assert step.nabla_b_norms == [float(np.linalg.norm(g)) for g in nabla_b]     # BP3
    assert step.nabla_w_norms == [float(np.linalg.norm(g)) for g in nabla_w]     # BP4
    assert step.outputs_before.tobytes() == reference.last_outputs(1)[0].tobytes()
    reference.update_mini_batch(x[None], y, eta)
    for mine, theirs in zip(step.network.weights + step.network.biases, reference.weights + reference.biases):
        assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes()
    assert step.outputs_after.tobytes() == step.network.feedforward(x[None])[0].tobytes()
    assert step.cost_before == network.cost.value(step.outputs_before[None], y)
    assert step.cost_after == network.cost.value(step.outputs_after[None], y)
    assert step.network.cost is network.cost and step.network.sizes == sizes
    assert not any(np.shares_memory(a, b) for a, b in zip(step.network.weights, network.weights))


def test_bp1_is_the_costs_own_delta():
    network, x = make_network([784, 20, 10], "quadratic", dtype="float64"), an_input()
    step = teach(network, x, 2, 0.5)
    a, y = step.outputs_before, np.eye(10)[2]
    np.testing.assert_allclose(step.deltas[-1], (a - y) * a * (1 - a), rtol=1e-12)   # quadratic: sigma' stays
    a1 = sigmoid(network.weights[0] @ x + network.biases[0])
    np.testing.assert_allclose(step.deltas[0], (network.weights[1].T @ step.deltas[-1]) * a1 * (1 - a1), rtol=1e-12)
    entropy = teach(make_network([784, 20, 10], "cross-entropy", dtype="float64"), x, 2, 0.5)
    np.testing.assert_allclose(entropy.deltas[-1], entropy.outputs_before - y, rtol=1e-12)


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy", "log-likelihood"])
def test_teaching_the_true_label_lowers_the_cost_and_moves_the_answer(cost):
    network, x = make_network([784, 20, 10], cost, dtype="float32"), an_input()
    step = teach(network, x, 5, 0.05)
    assert step.cost_after < step.cost_before
    assert step.outputs_after[5] > step.outputs_before[5]
    again = teach(step.network, x, 5, "0.05")                       # teach the taught copy again, eta as typed
    assert again.cost_after < again.cost_before and digest(step.network) != digest(again.network)


def test_taught_step_to_dict_is_the_contract_shape():
    network, x = make_network([784, 9, 7, 10], "cross-entropy", dtype="float32"), an_input()
    step = teach(network, x, 3, 2.0)
    d = step.to_dict()
    assert list(d) == ["label", "eta", "before", "after", "cost_before", "cost_after", "bp1", "bp2", "bp3", "bp4"]
    assert d["label"] == 3 and d["eta"] == 2.0
    assert d["before"]["answer"] == int(np.argmax(step.outputs_before)) and len(d["after"]["outputs"]) == 10
    assert d["bp1"]["delta"] == step.deltas[-1].tolist() and d["bp1"]["norm"] == float(np.linalg.norm(step.deltas[-1]))
    assert [(b["layer"], len(b["delta"])) for b in d["bp2"]] == [(1, 9), (2, 7)]
    assert d["bp2"][0]["norm"] == float(np.linalg.norm(step.deltas[0]))
    assert d["bp3"] == step.nabla_b_norms and d["bp4"] == step.nabla_w_norms and len(d["bp4"]) == 3
    assert json.loads(json.dumps(d, allow_nan=False)) == d


# --- weight pictures -----------------------------------------------------------------------------------

def atlas_pixel(w: np.ndarray) -> np.ndarray:
    scale = np.abs(w).max()
    return np.rint(127.5 + 127.5 * w / (scale if scale else 1.0)).astype(np.uint8)


@pytest.mark.parametrize("hidden, columns, rows", [(30, 6, 5), (10, 4, 3), (1, 1, 1), (16, 4, 4), (17, 5, 4)])
def test_weight_atlas_tiles_and_pixels(hidden, columns, rows):
    network = make_network([784, hidden, 10])
    network.weights[0][0] = 0.0                                     # a unit of zeros is all 128
    image, got_columns = weight_atlas(network)
    assert got_columns == columns and image.shape == (rows * 28, columns * 28) and image.dtype == np.uint8
    for k in range(rows * columns):
        tile = image[(k // columns) * 28:(k // columns + 1) * 28, (k % columns) * 28:(k % columns + 1) * 28]
        expected = atlas_pixel(network.weights[0][k].reshape(28, 28)) if k < hidden else np.full((28, 28), 128)
        np.testing.assert_array_equal(tile, expected)
    assert (image[:28, :28] == 128).all()
    if hidden > 1:
        second = image[:28, 28:56] if columns > 1 else image[28:56, :28]
        assert second.max() == 255 or second.min() == 0


def test_weight_pictures_are_the_incoming_weights_and_cached():
    network = make_network([784, 12, 10], dtype="float32")
    pictures = weight_pictures(network)
    assert pictures.shape == (12, 28, 28) and pictures.dtype == np.float32
    np.testing.assert_array_equal(pictures, network.weights[0].reshape(12, 28, 28))
    assert weight_pictures(network) is pictures and weight_atlas(network) is weight_atlas(network)
    assert not pictures.flags.writeable
    network.weights[0] *= 2                                         # trained in place: the cache notices
    assert weight_pictures(network) is not pictures
    np.testing.assert_array_equal(weight_pictures(network), network.weights[0].reshape(12, 28, 28))
    ref = weakref.ref(network)
    del network, pictures
    gc.collect()
    assert ref() is None                                            # the cache does not keep a network alive


def test_explain_follows_a_network_changed_in_place():
    network, x = make_network([784, 12, 10], dtype="float32"), an_input()
    first = explain(network, x).outputs
    network.biases[-1] += 1.0
    assert not np.array_equal(explain(network, x).outputs, first)


@pytest.mark.parametrize("sizes", [[784, 10], [100, 5, 10]])
def test_weight_pictures_need_a_hidden_layer_reading_pixels(sizes):
    with pytest.raises(InsideError, match="no first hidden layer"):
        weight_pictures(make_network(sizes))


# --- the networks digitnet loads -----------------------------------------------------------------------

def test_a_textbook_json_network(tmp_path):
    original = make_network([784, 16, 10], "cross-entropy", dtype="float32")
    path = tmp_path / "net.json"
    path.write_text(json.dumps(textbook_json.dump(original)))
    network, _ = checkpoint.load(path).weights()
    x = an_input()
    e = explain(network, x, off="3")
    assert e.off == ((1, 3),)
    assert abs(e.contributions.sum() + e.bias - e.zs[-1][e.digit]) <= 1e-12 * np.abs(e.contributions).sum()
    json.dumps(e.to_dict(top=5), allow_nan=False)
    step = teach(network, x, 1, 0.5)
    assert step.cost_after < step.cost_before and weight_atlas(network)[1] == 4


def test_a_softmax_network_explains_z_not_a():
    network, x = make_network([784, 12, 10], "log-likelihood"), an_input()
    e = explain(network, x)
    np.testing.assert_allclose(e.outputs, softmax(e.zs[-1][None])[0], rtol=1e-13)
    assert abs(e.outputs.sum() - 1.0) < 1e-12
    # The saliency is dz^L_j/dx, before the softmax: (w^1)^T (w^2_j (.) sigma'(z^1)) for one hidden layer.
    a = e.activations[1]
    np.testing.assert_allclose(e.saliency, network.weights[0].T @ (network.weights[1][e.digit] * a * (1 - a)),
                               rtol=1e-10)
