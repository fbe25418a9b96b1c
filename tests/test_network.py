"""The network's math: sigmoid, BP1-BP4 against finite differences, the vectorized update."""

import numpy as np
import pytest

from digitnet.gradcheck import check_network, random_problem
from digitnet.gradcheck import Options
from digitnet.network import CrossEntropyCost, LogLikelihoodCost, Network, QuadraticCost, sigmoid, softmax

COSTS = ["quadratic", "cross-entropy", "log-likelihood"]


def test_sigmoid_matches_definition_and_never_overflows():
    z = np.linspace(-30, 30, 101)
    assert np.allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-12, atol=1e-15)
    with np.errstate(all="raise"):
        extreme = sigmoid(np.array([-1e4, 1e4], dtype=np.float32))
    assert extreme.tolist() == [0.0, 1.0]


def test_sigmoid_in_place():
    z = np.array([0.0, 2.0])
    out = sigmoid(z, out=z)
    assert out is z and z[0] == 0.5


@pytest.mark.parametrize("cost", COSTS)
@pytest.mark.parametrize("sizes", [[5, 3], [6, 5, 4, 3], [4, 6, 5, 4, 2]])
def test_backprop_agrees_with_central_differences(cost, sizes):
    network, x, y = random_problem(sizes, batch_size=4, cost=cost, seed=len(sizes))
    for check in check_network(network, x, y):
        assert check.relative_error < 1e-6, check


def test_a_wrong_bp1_fails_the_gradient_check():
    # Quadratic cost with cross-entropy's BP1 (the sigma' factor dropped): the check must notice.
    network, x, y = random_problem([6, 5, 4, 3], batch_size=4, cost="quadratic")
    network.cost = type("WrongQuadratic", (QuadraticCost,), {"delta": staticmethod(CrossEntropyCost.delta)})
    assert max(c.relative_error for c in check_network(network, x, y)) > 1e-2


def test_a_one_percent_gradient_error_fails_the_gradient_check(monkeypatch):
    network, x, y = random_problem([6, 5, 4, 3], batch_size=4, cost="cross-entropy")
    original = Network.backprop

    def skewed(self, x, y, *args):
        nabla_b, nabla_w = original(self, x, y, *args)
        nabla_w[0] *= 1.01
        return nabla_b, nabla_w

    monkeypatch.setattr(Network, "backprop", skewed)
    results = check_network(network, x, y)
    assert not results[0].ok and all(r.ok for r in results[1:])


@pytest.mark.parametrize("cost", COSTS)
def test_batch_gradient_is_sum_of_per_example_gradients(cost):
    network, x, y = random_problem([7, 6, 3], batch_size=5, cost=cost, seed=3)
    nabla_b, nabla_w = [g.copy() for g in network.backprop(x, y)[0]], [g.copy() for g in network.backprop(x, y)[1]]
    sum_b = [np.zeros_like(b) for b in nabla_b]
    sum_w = [np.zeros_like(w) for w in nabla_w]
    for i in range(len(x)):
        b, w = network.backprop(x[i:i + 1], y[i:i + 1])
        for acc, g in zip(sum_b + sum_w, list(b) + list(w)):
            acc += g
    for got, want in zip(nabla_b + nabla_w, sum_b + sum_w):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_update_mini_batch_equals_average_of_per_example_updates():
    network, x, y = random_problem([7, 6, 3], batch_size=5, cost="quadratic", seed=4)
    eta = 0.7
    expected_w = [w.copy() for w in network.weights]
    expected_b = [b.copy() for b in network.biases]
    for i in range(len(x)):
        b, w = network.backprop(x[i:i + 1], y[i:i + 1])
        for target, g in zip(expected_w + expected_b, list(w) + list(b)):
            target -= eta / len(x) * g
    network.update_mini_batch(x, y, eta)
    for got, want in zip(network.weights + network.biases, expected_w + expected_b):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_l2_weight_decay_shrinks_weights_not_biases():
    network, x, y = random_problem([4, 3, 2], batch_size=2, cost="quadratic")
    twin = Network(network.sizes, [w.copy() for w in network.weights], [b.copy() for b in network.biases],
                   dtype=np.float64)
    decay = 0.9
    twin.update_mini_batch(x, y, 0.5)
    network.update_mini_batch(x, y, 0.5, weight_decay=decay)
    # (decay * w - step) vs (w - step): the difference is (decay - 1) * w_before.
    for w_decayed, w_plain, b_decayed, b_plain in zip(network.weights, twin.weights, network.biases, twin.biases):
        np.testing.assert_array_equal(b_decayed, b_plain)
        assert not np.allclose(w_decayed, w_plain)


def test_cross_entropy_delta_is_output_minus_target():
    a = np.array([[0.2, 0.9]])
    y = np.array([[0.0, 1.0]])
    out, scratch = np.empty_like(a), np.empty_like(a)
    np.testing.assert_allclose(CrossEntropyCost.delta(a, y, out, scratch), a - y)
    np.testing.assert_allclose(QuadraticCost.delta(a, y, out, scratch), (a - y) * a * (1 - a))


def test_costs_values():
    a = np.array([[0.5, 0.5]])
    y = np.array([[0.0, 1.0]])
    assert QuadraticCost.value(a, y) == pytest.approx(0.25)
    assert CrossEntropyCost.value(a, y) == pytest.approx(2 * np.log(2))


def test_feedforward_shapes_and_dtype():
    network = Network([784, 30, 10], rng=np.random.default_rng(0))
    out = network.feedforward(np.zeros((3, 784), dtype=np.uint8))
    assert out.shape == (3, 10) and out.dtype == np.float32


def test_same_seed_same_initial_weights_in_both_dtypes():
    a = Network([784, 30, 10], rng=np.random.default_rng(5), dtype=np.float32)
    b = Network([784, 30, 10], rng=np.random.default_rng(5), dtype=np.float64)
    np.testing.assert_array_equal(a.weights[0], b.weights[0].astype(np.float32))


def test_scaled_init_has_variance_one_over_n_in():
    network = Network([784, 100, 10], init="scaled", rng=np.random.default_rng(0), dtype=np.float64)
    assert network.weights[0].std() == pytest.approx(1 / np.sqrt(784), rel=0.02)


@pytest.mark.parametrize("kwargs", [dict(sizes=[784]), dict(sizes=[784, 0, 10]),
                                    dict(sizes=[4, 2], cost="hinge"), dict(sizes=[4, 2], init="zeros"),
                                    dict(sizes=[4, 2], weights=[np.zeros((3, 4))], biases=[np.zeros(2)])])
def test_invalid_networks_are_refused(kwargs):
    with pytest.raises(ValueError):
        Network(**kwargs)


# ---------------------------------------------------------------------------
# Chapter 3: softmax and log-likelihood, dropout


def test_softmax_is_a_distribution_and_never_overflows():
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]])
    a = softmax(z.copy())
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    np.testing.assert_allclose(a[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    np.testing.assert_allclose(a[1], [0.5, 0.5, 0.0])
    z32 = np.array([[88.0, 89.0]], dtype=np.float32)
    with np.errstate(all="raise"):
        assert softmax(z32, out=z32) is z32 and np.isfinite(z32).all()


def test_log_likelihood_network_outputs_probabilities():
    network = Network([6, 5, 4], cost="log-likelihood", init="scaled", rng=np.random.default_rng(0))
    out = network.feedforward(np.random.default_rng(1).random((7, 6)))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    assert LogLikelihoodCost.output == "softmax" and QuadraticCost.output == CrossEntropyCost.output == "sigmoid"


def test_log_likelihood_cost_value_and_delta():
    a = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    y = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert LogLikelihoodCost.value(a, y) == pytest.approx(-np.log(0.7) - np.log(0.1))
    np.testing.assert_allclose(LogLikelihoodCost.delta(a, y, np.empty_like(a), None), a - y)


@pytest.mark.parametrize("cost", COSTS)
@pytest.mark.parametrize("options", [Options(dropout=0.5), Options(dropout=0.2, l2=3.0, n=50),
                                     Options(l1=2.0, n=50)], ids=str)
def test_dropout_and_regularisation_gradients_agree_with_central_differences(cost, options):
    network, x, y = random_problem([6, 5, 4, 3], batch_size=4, cost=cost, seed=5)
    results = check_network(network, x, y, options=options)
    assert results and all(r.ok for r in results), results


def test_a_dropout_mask_left_out_of_bp2_fails_the_gradient_check(monkeypatch):
    """The mask is one more factor in BP2: a backprop that forgets it (here, in the step to
    the first hidden layer) must fail the check."""
    network, x, y = random_problem([6, 5, 4, 3], batch_size=4, cost="cross-entropy", seed=5)
    original = Network.backprop

    def forgetful(self, x, y, dropout=0.0, rng=None):
        nabla_b, nabla_w = original(self, x, y, dropout, rng)
        ws = self._buffers(len(x))
        a1 = ws.activations[1]
        delta1 = (ws.deltas[1] @ self.weights[1]) * a1 * (1 - a1)  # no (.) mask
        nabla_w[0][...] = delta1.T @ x
        nabla_b[0][...] = delta1.sum(axis=0)
        return nabla_b, nabla_w

    monkeypatch.setattr(Network, "backprop", forgetful)
    assert all(r.ok for r in check_network(network, x, y))  # without dropout it is right
    results = check_network(network, x, y, options=Options(dropout=0.5))
    assert not results[0].ok and not results[1].ok


def test_dropout_masks_are_inverted_and_drop_about_p():
    network = Network([20, 400, 3], init="scaled", rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((50, 20)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.zeros(50, int)]
    network.backprop(x, y, 0.3, np.random.default_rng(2))
    mask = network._buffers(50).masks[0]
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.7)}
    assert np.mean(mask == 0) == pytest.approx(0.3, abs=0.02)
    # Dropped units pass nothing on, kept ones pass a / (1 - p).
    ws = network._buffers(50)
    np.testing.assert_allclose(ws.dropped[0], ws.activations[1] * mask)


def test_no_dropout_at_test_time_and_same_mask_for_same_seed():
    network = Network([6, 8, 3], init="scaled", rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((4, 6))
    y = np.eye(3)[[0, 1, 2, 0]]
    first = [g.copy() for g in network.backprop(x, y, 0.5, np.random.default_rng(9))[1]]
    again = network.backprop(x, y, 0.5, np.random.default_rng(9))[1]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    before = network.feedforward(x).copy()
    network.backprop(x, y, 0.5, np.random.default_rng(10))
    np.testing.assert_array_equal(network.feedforward(x), before)  # feedforward never drops


def test_last_outputs_are_the_forward_pass_of_backprop():
    network, x, y = random_problem([6, 5, 3], batch_size=4, cost="log-likelihood", seed=2)
    expected = network.feedforward(x).copy()
    network.backprop(x, y)
    np.testing.assert_allclose(network.last_outputs(4), expected, rtol=1e-12)


def test_the_forward_pass_of_backprop_is_a_w_transposed_to_the_bit():
    """backprop computes Z^T = w A^T and transposes it (quicker in BLAS for small batches):
    the activations are those of Z = A w^T + b, bit for bit, so runs keep their weights."""
    from digitnet.network import sigmoid
    rng = np.random.default_rng(5)
    for sizes, m in (([784, 30, 10], 10), ([784, 800, 10], 25), ([784, 100, 10], 100), ([784, 40, 20, 10], 7)):
        net = Network(sizes, cost="log-likelihood", init="scaled", rng=np.random.default_rng(1))
        x = rng.random((m, 784), dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, m)]
        net.backprop(x, y)
        a = x
        for l, (w, b) in enumerate(zip(net.weights, net.biases)):
            z = a @ w.T
            z += b
            a = net.output_activation(z, out=z) if l == len(net.weights) - 1 else sigmoid(z, out=z)
        assert net.last_outputs(m).tobytes() == a.tobytes(), sizes
