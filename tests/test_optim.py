"""The update step: plain SGD as the textbook writes it, L2, L1, momentum."""

import numpy as np
import pytest

from digitnet.gradcheck import random_problem
from digitnet.network import Network
from digitnet.optim import SGD


def problem(seed=0):
    return random_problem([6, 5, 3], batch_size=4, cost="cross-entropy", seed=seed)


def params(network):
    return [a.copy() for a in network.weights + network.biases]


def gradients(network, x, y):
    nabla_b, nabla_w = network.backprop(x, y)
    return [g.copy() for g in nabla_b], [g.copy() for g in nabla_w]


def test_plain_sgd_is_the_textbook_update_bit_for_bit():
    a, x, y = problem()
    b, _, _ = problem()
    a.update_mini_batch(x, y, 0.5, weight_decay=1 - 0.5 * 2.0 / 100)
    nabla_b, nabla_w = b.backprop(x, y)
    SGD(b, n=100, l2=2.0).step(nabla_b, nabla_w, 0.5, len(x))
    for p, q in zip(params(a), params(b)):
        np.testing.assert_array_equal(p, q)


def test_l1_moves_every_weight_towards_zero_by_a_constant():
    network, x, y = problem()
    before = params(network)
    nabla_b, nabla_w = gradients(network, x, y)
    SGD(network, n=10, l1=3.0).step(*gradients(network, x, y), 0.1, len(x))
    for w0, w, gw in zip(before[:2], network.weights, nabla_w):
        np.testing.assert_allclose(w, w0 - 0.1 * 3.0 / 10 * np.sign(w0) - 0.1 / len(x) * gw, rtol=1e-12)
    for b0, b, gb in zip(before[2:], network.biases, nabla_b):  # biases are not decayed
        np.testing.assert_allclose(b, b0 - 0.1 / len(x) * gb, rtol=1e-12)


def test_momentum_accumulates_velocity():
    """v <- mu v - eta (g/m + lambda/n w), w <- w + v: two steps with the same gradient move
    the weights by v1 = -eta g/m, then v2 = mu v1 - eta g/m."""
    network, x, y = problem()
    w0 = network.weights[0].copy()
    nabla_b, nabla_w = gradients(network, x, y)
    optimizer = SGD(network, n=100, momentum=0.9)
    optimizer.step([g.copy() for g in nabla_b], [g.copy() for g in nabla_w], 0.2, len(x))
    v1 = -0.2 / len(x) * nabla_w[0]
    np.testing.assert_allclose(network.weights[0], w0 + v1, rtol=1e-12)
    np.testing.assert_allclose(optimizer.velocities[0][0], v1, rtol=1e-12)
    optimizer.step([g.copy() for g in nabla_b], [g.copy() for g in nabla_w], 0.2, len(x))
    np.testing.assert_allclose(network.weights[0], w0 + v1 + (0.9 * v1 + v1), rtol=1e-12)


def test_momentum_with_l2_adds_the_decay_to_the_velocity():
    network, x, y = problem()
    w0 = network.weights[0].copy()
    nabla_b, nabla_w = gradients(network, x, y)
    SGD(network, n=50, l2=5.0, momentum=0.5).step(nabla_b, [g.copy() for g in nabla_w], 0.1, len(x))
    np.testing.assert_allclose(network.weights[0], w0 - 0.1 * (nabla_w[0] / len(x) + 5.0 / 50 * w0), rtol=1e-10)


def test_velocities_start_at_zero_resume_from_given_and_are_absent_without_momentum():
    network, _, _ = problem()
    assert SGD(network, n=10).velocities is None
    fresh = SGD(network, n=10, momentum=0.9)
    assert all(not v.any() for v in fresh.velocities[0] + fresh.velocities[1])
    given = ([np.ones_like(w) for w in network.weights], [np.ones_like(b) for b in network.biases])
    resumed = SGD(network, n=10, momentum=0.9, velocities=given)
    assert all((v == 1).all() for v in resumed.velocities[0] + resumed.velocities[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_keep_the_network_dtype(dtype):
    network = Network([6, 5, 3], init="scaled", rng=np.random.default_rng(0), dtype=dtype)
    x = np.random.default_rng(1).random((4, 6)).astype(dtype)
    y = np.eye(3, dtype=dtype)[[0, 1, 2, 0]]
    optimizer = SGD(network, n=10, l1=1.0, l2=1.0, momentum=0.9)
    optimizer.step(*network.backprop(x, y), 0.1, 4)
    assert all(a.dtype == dtype for a in network.weights + network.biases + optimizer.velocities[0])
