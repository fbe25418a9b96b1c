"""Check backpropagation against central finite differences.

For a parameter p, the cost's derivative is approximated by the five-point
central difference

    dC/dp ~ (C(p - 2e) - 8 C(p - e) + 8 C(p + e) - C(p + 2e)) / (12 e)     error O(e^4)

(the plain two-point (C(p + e) - C(p - e)) / 2e is only O(e^2), too coarse to
check small gradient entries to 1e-6), and compared with BP3/BP4's nabla_b,
nabla_w.  In float64 with e = 1e-3 the two agree to about 1e-9 relative error
when BP1-BP4 are right; a wrong equation shows up as an error of order 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitnet.network import Network

TOLERANCE = 1e-6


@dataclass
class GradientCheck:
    cost: str
    layer: int            # 1-based: the weights into layer ``layer`` (layer 0 is the input)
    parameter: str        # "w" or "b"
    checked: int          # entries compared
    relative_error: float

    @property
    def ok(self) -> bool:
        return self.relative_error <= TOLERANCE


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / max(||a||, ||n||) over one parameter array (0 when both are 0).

    Measured over the whole array rather than entry by entry: an entry near
    zero (a weight from a pixel that is almost always black) has a relative
    error dominated by the rounding of C(p +- e), about 1e-16 C / e, which says
    nothing about the equations.  A wrong equation still gives an error of
    order 1, and a 1% error in any sizeable entry shows as about 1e-2.
    """
    scale = max(float(np.linalg.norm(analytic)), float(np.linalg.norm(numeric)))
    return float(np.linalg.norm(analytic - numeric) / scale) if scale > 0 else 0.0


def _cost(network: Network, x: np.ndarray, y: np.ndarray) -> float:
    """The cost summed over the batch, which is what backprop's nabla is the gradient of."""
    return network.cost.value(network.feedforward(x), y)


def check_network(network: Network, x: np.ndarray, y: np.ndarray, epsilon: float = 1e-3,
                  max_entries: int | None = None, rng: np.random.Generator | None = None) -> list[GradientCheck]:
    """Compare backprop with finite differences for every weight and bias array.

    ``max_entries`` limits the comparison to a random sample of entries per
    array (for big networks); ``None`` checks every entry.
    """
    if network.dtype != np.float64:
        raise ValueError("gradient checks need a float64 network")
    rng = rng if rng is not None else np.random.default_rng(0)
    nabla_b, nabla_w = network.backprop(x, y)
    analytic = {"w": [g.copy() for g in nabla_w], "b": [g.copy() for g in nabla_b]}
    results = []
    for l in range(len(network.weights)):
        for kind, params in (("w", network.weights), ("b", network.biases)):
            array = params[l]
            flat = array.reshape(-1)  # a view: perturbing it perturbs the network
            entries = np.arange(flat.size)
            if max_entries is not None and flat.size > max_entries:
                entries = rng.choice(flat.size, max_entries, replace=False)
            numeric = np.empty(len(entries))
            for i, entry in enumerate(entries):
                original = flat[entry]
                costs = []
                for step in (-2, -1, 1, 2):
                    flat[entry] = original + step * epsilon
                    costs.append(_cost(network, x, y))
                flat[entry] = original
                numeric[i] = (costs[0] - 8 * costs[1] + 8 * costs[2] - costs[3]) / (12 * epsilon)
            error = relative_error(analytic[kind][l].reshape(-1)[entries], numeric)
            results.append(GradientCheck(network.cost.name, l + 1, kind, len(entries), error))
    return results


def random_problem(sizes, batch_size: int, cost: str, seed: int = 0):
    """A float64 network with sizes ``sizes`` and a random batch (inputs in [0, 1], one-hot targets)."""
    rng = np.random.default_rng(seed)
    network = Network(sizes, cost=cost, init="scaled", rng=rng, dtype=np.float64)
    x = rng.random((batch_size, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch_size)]
    return network, x, y


def mnist_problem(images: np.ndarray, labels: np.ndarray, cost: str, seed: int = 0, batch_size: int = 10):
    """A float64 784-30-10 network and a random real mini-batch.

    The network uses the scaled initialisation: with N(0, 1) weights on 784
    inputs the hidden layer starts saturated, its gradients are tiny and finite
    differences would measure mostly rounding.
    """
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(labels), batch_size, replace=False)
    x = images[rows].astype(np.float64) / 255
    y = np.eye(10)[labels[rows]]
    network = Network([784, 30, 10], cost=cost, init="scaled", rng=rng, dtype=np.float64)
    return network, x, y
