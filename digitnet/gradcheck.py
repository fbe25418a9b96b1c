"""Check backpropagation against central finite differences.

For a parameter p, the cost's derivative is approximated by the five-point
central difference

    dC/dp ~ (C(p - 2e) - 8 C(p - e) + 8 C(p + e) - C(p + 2e)) / (12 e)     error O(e^4)

(the plain two-point (C(p + e) - C(p - e)) / 2e is only O(e^2), too coarse to
check small gradient entries to 1e-6), and compared with BP3/BP4's nabla_b,
nabla_w.  In float64 with e = 1e-3 the two agree to about 1e-9 relative error
when BP1-BP4 are right; a wrong equation shows up as an error of order 1.

Beyond the costs (quadratic, cross-entropy, log-likelihood with softmax), the
check covers what else changes a gradient:

  dropout   the cost of the thinned network, with the same masks for every
            evaluation (the masks are drawn from a generator seeded afresh)
  L2, L1    the regularised cost C + m (lambda/2n sum w^2 + lambda_1/n sum |w|)
            for a batch of m, whose gradient is read back from the update the
            optimiser actually makes: (w_before - w_after) m / eta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitnet.network import Network
from digitnet.optim import SGD

TOLERANCE = 1e-6


@dataclass
class GradientCheck:
    cost: str                 # the cost's name, with the options checked, e.g. "cross-entropy, dropout 0.5"
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


@dataclass(frozen=True)
class Options:
    """What else shapes the gradient besides the cost: dropout, and L2/L1 over a training set of n."""

    dropout: float = 0.0
    l2: float = 0.0
    l1: float = 0.0
    n: int = 1000
    mask_seed: int = 12345

    def __str__(self) -> str:
        parts = [f"dropout {self.dropout:g}" if self.dropout else "", f"l2 {self.l2:g}" if self.l2 else "",
                 f"l1 {self.l1:g}" if self.l1 else ""]
        return ", ".join(p for p in parts if p)


def _cost(network: Network, x: np.ndarray, y: np.ndarray, options: Options = Options()) -> float:
    """The (regularised) cost summed over the batch, which is what the gradient below is of."""
    if options.dropout:
        # The same masks every time: a generator seeded afresh draws them in the same order.
        network.backprop(x, y, options.dropout, np.random.default_rng(options.mask_seed))
        outputs = network.last_outputs(len(x))
    else:
        outputs = network.feedforward(x)
    cost = network.cost.value(outputs, y)
    m = len(x)
    if options.l2:
        cost += m * 0.5 * options.l2 / options.n * sum(float(np.sum(w * w)) for w in network.weights)
    if options.l1:
        cost += m * options.l1 / options.n * sum(float(np.sum(np.abs(w))) for w in network.weights)
    return cost


def _analytic(network: Network, x: np.ndarray, y: np.ndarray, options: Options) -> dict:
    """Backprop's gradient; with L2/L1 as the optimiser applies it: (w - w_after_step) m / eta."""
    nabla_b, nabla_w = network.backprop(x, y, options.dropout, np.random.default_rng(options.mask_seed))
    if not (options.l2 or options.l1):
        return {"w": [g.copy() for g in nabla_w], "b": [g.copy() for g in nabla_b]}
    before_w = [w.copy() for w in network.weights]
    before_b = [b.copy() for b in network.biases]
    eta, m = 1e-3, len(x)
    SGD(network, options.n, l2=options.l2, l1=options.l1).step(nabla_b, nabla_w, eta, m)
    gradient = {"w": [(w0 - w) * m / eta for w0, w in zip(before_w, network.weights)],
                "b": [(b0 - b) * m / eta for b0, b in zip(before_b, network.biases)]}
    for w, w0 in zip(network.weights, before_w):
        w[...] = w0
    for b, b0 in zip(network.biases, before_b):
        b[...] = b0
    return gradient


def check_network(network: Network, x: np.ndarray, y: np.ndarray, epsilon: float = 1e-3,
                  max_entries: int | None = None, rng: np.random.Generator | None = None,
                  options: Options = Options()) -> list[GradientCheck]:
    """Compare backprop with finite differences for every weight and bias array.

    ``max_entries`` limits the comparison to a random sample of entries per
    array (for big networks); ``None`` checks every entry.
    """
    if network.dtype != np.float64:
        raise ValueError("gradient checks need a float64 network")
    rng = rng if rng is not None else np.random.default_rng(0)
    analytic = _analytic(network, x, y, options)
    label = ", ".join(part for part in (network.cost.name, str(options)) if part)
    results = []
    for l in range(len(network.weights)):
        for kind, params in (("w", network.weights), ("b", network.biases)):
            array = params[l]
            flat = array.reshape(-1)  # a view: perturbing it perturbs the network
            entries = np.arange(flat.size)
            if max_entries is not None and flat.size > max_entries:
                entries = rng.choice(flat.size, max_entries, replace=False)
            if options.l1 and kind == "w":
                # |w| has a kink at 0: a difference that steps across it measures no derivative.
                entries = entries[np.abs(flat[entries]) > 2.5 * epsilon]
            numeric = np.empty(len(entries))
            for i, entry in enumerate(entries):
                original = flat[entry]
                costs = []
                for step in (-2, -1, 1, 2):
                    flat[entry] = original + step * epsilon
                    costs.append(_cost(network, x, y, options))
                flat[entry] = original
                numeric[i] = (costs[0] - 8 * costs[1] + 8 * costs[2] - costs[3]) / (12 * epsilon)
            error = relative_error(analytic[kind][l].reshape(-1)[entries], numeric)
            results.append(GradientCheck(label, l + 1, kind, len(entries), error))
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
