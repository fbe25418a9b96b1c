"""A fully connected sigmoid network trained by backpropagation: pure math, no I/O.

Notation follows Nielsen, *Neural Networks and Deep Learning*, ch. 1-3, with one
change that makes the code vectorized: a mini-batch of m examples is a matrix
whose *rows* are the examples.  So where the book writes, for one example,

    z^l = w^l a^{l-1} + b^l,        a^l = sigma(z^l)

we write, for the whole batch at once (one BLAS call per layer),

    Z^l = A^{l-1} (w^l)^T + b^l,    A^l = sigma(Z^l)        shapes (m, n_l).

``weights[l]`` has the book's shape (n_out, n_in) and ``biases[l]`` is (n_out,).
The four backpropagation equations, for the whole batch:

    BP1  delta^L = nabla_a C (.) sigma'(z^L)             (cost-specific, see Cost.delta)
    BP2  delta^l = (delta^{l+1} w^{l+1}) (.) sigma'(z^l)  (row-vector form of (w^T delta))
    BP3  dC/db^l = sum over the batch of delta^l
    BP4  dC/dw^l = (delta^l)^T A^{l-1}                    (sum over the batch of delta a^T)

and sigma'(z) = sigma(z) (1 - sigma(z)) = a (1 - a), so the backward pass needs
only the stored activations.

The output layer is sigmoid, or softmax for the log-likelihood cost (ch. 3):

    a^L_j = e^{z^L_j} / sum_k e^{z^L_k}

BP1 is written per cost *for its output layer* (``Cost.delta``): the quadratic
cost multiplies by sigma'(z^L), cross-entropy with sigmoid and log-likelihood
with softmax both give delta^L = a^L - y, so no sigma' is computed only to be
divided out again.

Dropout (ch. 3, inverted): during training each hidden activation is kept with
probability 1 - p and scaled by 1/(1 - p), a^l <- a^l (.) r^l with r^l_j in
{0, 1/(1-p)}, so its expected value is unchanged and nothing is rescaled at test
time.  The mask enters BP2 as one more factor: delta^l = (delta^{l+1} w^{l+1}) (.)
sigma'(z^l) (.) r^l, and BP4 sees the dropped activations.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COSTS",
    "INITIALISERS",
    "CrossEntropyCost",
    "LogLikelihoodCost",
    "Network",
    "QuadraticCost",
    "sigmoid",
    "sigmoid_prime",
    "softmax",
]


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigma(z) = 1 / (1 + e^{-z}), computed as (1 + tanh(z/2)) / 2.

    The tanh form is the same function but cannot overflow (e^{-z} does for
    z < -88 in float32), and works in place when ``out`` is given.
    """
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def sigmoid_prime(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """sigma'(z) = sigma(z) (1 - sigma(z)), from the activation a = sigma(z) alone: a (1 - a), into ``out``."""
    np.subtract(1.0, a, out=out)
    out *= a
    return out


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a_j = e^{z_j} / sum_k e^{z_k} along each row (textbook ch. 3), in place when ``out`` is z.

    The row maximum is subtracted first: the same function (it cancels in the
    ratio), but e^{z} can no longer overflow.
    """
    out = np.subtract(z, np.max(z, axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=1, keepdims=True)
    return out


class QuadraticCost:
    """C = 1/(2n) sum_x ||y(x) - a^L(x)||^2, the textbook's first cost."""

    name = "quadratic"
    output = "sigmoid"

    @staticmethod
    def value(a: np.ndarray, y: np.ndarray) -> float:
        """Sum over the batch of 1/2 ||y - a||^2 (divide by n for the mean)."""
        return 0.5 * float(np.sum(np.square(a - y, dtype=np.float64)))

    @staticmethod
    def delta(a: np.ndarray, y: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """BP1: delta^L = (a^L - y) (.) sigma'(z^L), with sigma'(z^L) = a^L (1 - a^L)."""
        np.subtract(a, y, out=out)
        out *= sigmoid_prime(a, out=scratch)
        return out


class CrossEntropyCost:
    """C = -1/n sum_x sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)] (textbook ch. 3).

    Its derivative with respect to the output activation is
        dC/da_j = (a_j - y_j) / (a_j (1 - a_j)),
    and sigma'(z_j) = a_j (1 - a_j), so in BP1 the sigma' factor cancels:
        delta^L_j = dC/da_j * sigma'(z_j) = a_j - y_j.
    That is why cross-entropy does not learn slowly when an output saturates.
    """

    name = "cross-entropy"
    output = "sigmoid"

    @staticmethod
    def value(a: np.ndarray, y: np.ndarray) -> float:
        """Sum over the batch of the cross-entropy; 0 ln 0 is taken as 0."""
        a = np.clip(a.astype(np.float64), 1e-12, 1 - 1e-12)
        return float(-np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)))

    @staticmethod
    def delta(a: np.ndarray, y: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """BP1 for cross-entropy with sigmoid outputs: delta^L = a^L - y."""
        return np.subtract(a, y, out=out)


class LogLikelihoodCost:
    """C = -1/n sum_x ln a^L_y(x), with a softmax output layer (textbook ch. 3).

    With a_j = e^{z_j} / sum_k e^{z_k}, da_y/dz_j = a_y (1[j = y] - a_j), so
        delta^L_j = dC/dz_j = -(1/a_y) a_y (1[j = y] - a_j) = a_j - y_j:
    the same BP1 as cross-entropy with sigmoids, and the outputs are a probability
    distribution over the ten digits.
    """

    name = "log-likelihood"
    output = "softmax"

    @staticmethod
    def value(a: np.ndarray, y: np.ndarray) -> float:
        """Sum over the batch of -ln a_y (y one-hot); a probability of 0 is taken as 1e-12."""
        a_y = np.sum(a * y, axis=1, dtype=np.float64)
        return float(-np.sum(np.log(np.maximum(a_y, 1e-12))))

    @staticmethod
    def delta(a: np.ndarray, y: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """BP1 for log-likelihood with softmax outputs: delta^L = a^L - y."""
        return np.subtract(a, y, out=out)


COSTS = {cost.name: cost for cost in (QuadraticCost, CrossEntropyCost, LogLikelihoodCost)}
OUTPUT_ACTIVATIONS = {"sigmoid": sigmoid, "softmax": softmax}


def normal_init(n_in: int, n_out: int, rng: np.random.Generator):
    """Weights and biases N(0, 1): the textbook's first network (ch. 1)."""
    return rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)


def scaled_init(n_in: int, n_out: int, rng: np.random.Generator):
    """Weights N(0, 1/n_in), biases N(0, 1): the textbook's improved initialisation (ch. 3).

    Keeps z = w.a + b of order 1, so hidden neurons do not start saturated.
    """
    return rng.standard_normal((n_out, n_in)) / np.sqrt(n_in), rng.standard_normal(n_out)


INITIALISERS = {"normal": normal_init, "scaled": scaled_init}


class _Workspace:
    """Buffers the hot loop reuses, for one batch size: nothing is allocated per mini-batch."""

    def __init__(self, sizes, batch_size, dtype):
        self.batch_size = batch_size
        # activations[0] is the input batch itself, so it is not stored here.
        self.activations = [None] + [np.empty((batch_size, n), dtype) for n in sizes[1:]]
        self.deltas = [np.empty((batch_size, n), dtype) for n in sizes[1:]]
        self.scratch = [np.empty((batch_size, n), dtype) for n in sizes[1:]]
        # Dropout: the mask r^l of each hidden layer and the dropped activations a^l (.) r^l
        # (the undropped a^l stays in ``activations`` for sigma' = a (1 - a)).
        self.masks = [np.empty((batch_size, n), dtype) for n in sizes[1:-1]]
        self.dropped = [np.empty((batch_size, n), dtype) for n in sizes[1:-1]]
        self.nabla_b = [np.empty(n, dtype) for n in sizes[1:]]
        # BP3's sum over the batch as a product with a row of ones: one BLAS call,
        # about 4x cheaper than np.sum(axis=0) on arrays this small.
        self.ones = np.ones(batch_size, dtype)
        self.nabla_w = [np.empty((n_out, n_in), dtype) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self.transposed = [np.empty((n, batch_size), dtype) for n in sizes[1:]]  # Z^T, see Network.backprop


class Network:
    """A sigmoid multilayer perceptron with sizes such as ``[784, 30, 10]``.

    ``weights[l]`` (shape ``(sizes[l+1], sizes[l])``) and ``biases[l]`` connect
    layer l to layer l+1, as in the textbook.  The cost (quadratic,
    cross-entropy or log-likelihood) changes BP1 and, for log-likelihood, makes
    the output layer softmax.
    """

    def __init__(self, sizes, weights=None, biases=None, *, cost="quadratic",
                 init="normal", rng=None, dtype=np.float32):
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must be at least two positive layer sizes, got {sizes}")
        if cost not in COSTS:
            raise ValueError(f"unknown cost {cost!r}; choose from {', '.join(COSTS)}")
        self.sizes = sizes
        self.cost = COSTS[cost]
        self.output_activation = OUTPUT_ACTIVATIONS[self.cost.output]
        self.dtype = np.dtype(dtype)
        if weights is None or biases is None:
            if init not in INITIALISERS:
                raise ValueError(f"unknown init {init!r}; choose from {', '.join(INITIALISERS)}")
            rng = rng if rng is not None else np.random.default_rng()
            # Draw in float64 then cast, so float32 and float64 runs start from the same numbers.
            pairs = [INITIALISERS[init](n_in, n_out, rng) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
            weights = [w for w, _ in pairs]
            biases = [b for _, b in pairs]
        self.weights = [np.ascontiguousarray(w, dtype=self.dtype) for w in weights]
        self.biases = [np.ascontiguousarray(b, dtype=self.dtype).reshape(-1) for b in biases]
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.shape != (sizes[l + 1], sizes[l]) or b.shape != (sizes[l + 1],):
                raise ValueError(f"layer {l + 1}: weights {w.shape} / biases {b.shape} do not fit sizes {sizes}")
        self._workspaces = {}

    def feedforward(self, x: np.ndarray) -> np.ndarray:
        """Output activations a^L for a batch x of shape (m, sizes[0]) (one row per example)."""
        a = np.asarray(x, dtype=self.dtype)
        last = len(self.weights) - 1
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ w.T
            z += b
            # In place: no temporaries the size of the batch.
            a = self.output_activation(z, out=z) if l == last else sigmoid(z, out=z)
        return a

    def _buffers(self, batch_size: int) -> _Workspace:
        # One workspace per batch size: an epoch whose last batch is smaller uses two.
        workspace = self._workspaces.get(batch_size)
        if workspace is None:
            workspace = self._workspaces[batch_size] = _Workspace(self.sizes, batch_size, self.dtype)
        return workspace

    def backprop(self, x: np.ndarray, y: np.ndarray, dropout: float = 0.0,
                 rng: np.random.Generator | None = None):
        """Return ``(nabla_b, nabla_w)``: dC_x/db and dC_x/dw summed over the batch.

        ``x`` is (m, sizes[0]) and ``y`` the desired outputs (m, sizes[-1]); C_x is
        the per-example cost, so these are m times the gradient of the batch's mean
        cost.  With ``dropout`` p > 0, each hidden unit is dropped with probability p
        (masks drawn from ``rng``) and the gradient is that of the thinned network.
        The returned arrays are reused buffers: copy them to keep them; the batch's
        output activations stay readable in ``last_outputs(m)`` until the next call.
        """
        ws = self._buffers(len(x))
        activations = ws.activations
        inputs = [x] + (ws.dropped if dropout else activations[1:-1])  # what each layer reads
        last = len(self.weights) - 1
        # Forward pass: Z^l = A^{l-1} w^T + b, A^l = sigma(Z^l); Z^l is kept only inside A^l.
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            # Z^T = w A^T, then transposed into Z: BLAS takes 0.55 ms for it where Z = A w^T takes
            # 0.86 (m = 25, 784 -> 800), and each entry is the same dot product, to the bit.
            z = activations[l + 1]
            z[...] = np.matmul(w, inputs[l].T, out=ws.transposed[l]).T
            z += b
            if l == last:
                self.output_activation(z, out=z)
            else:
                sigmoid(z, out=z)
                if dropout:
                    self._draw_mask(ws.masks[l], dropout, rng)
                    np.multiply(z, ws.masks[l], out=ws.dropped[l])
        # BP1: the output error.
        delta = self.cost.delta(activations[-1], y, out=ws.deltas[-1], scratch=ws.scratch[-1])
        for l in range(last, -1, -1):
            np.matmul(ws.ones, delta, out=ws.nabla_b[l])               # BP3: sum over the batch
            np.matmul(delta.T, inputs[l], out=ws.nabla_w[l])           # BP4
            if l > 0:
                # BP2: delta^l = (delta^{l+1} w^{l+1}) (.) a^l (1 - a^l)  [(.) r^l with dropout]
                previous = np.matmul(delta, self.weights[l], out=ws.deltas[l - 1])
                previous *= sigmoid_prime(activations[l], out=ws.scratch[l - 1])
                if dropout:
                    previous *= ws.masks[l - 1]
                delta = previous
        return ws.nabla_b, ws.nabla_w

    @staticmethod
    def _draw_mask(mask: np.ndarray, p: float, rng: np.random.Generator) -> None:
        """r_j = 1/(1-p) with probability 1-p, else 0 (inverted dropout), into ``mask``."""
        rng.random(dtype=mask.dtype, out=mask)
        np.greater_equal(mask, p, out=mask, casting="unsafe")
        mask *= 1.0 / (1.0 - p)

    def last_outputs(self, batch_size: int) -> np.ndarray:
        """The output activations of the last ``backprop`` call with a batch of this size."""
        return self._buffers(batch_size).activations[-1]

    def last_deltas(self, batch_size: int) -> list[np.ndarray]:
        """delta^l of the last ``backprop`` call with a batch of this size: BP1's delta^L last, BP2's before it."""
        return self._buffers(batch_size).deltas

    def update_mini_batch(self, x: np.ndarray, y: np.ndarray, learning_rate: float,
                          weight_decay: float = 1.0) -> None:
        """One step of plain gradient descent on the batch (x, y):

            w <- weight_decay * w - (eta/m) sum_x dC_x/dw,     b <- b - (eta/m) sum_x dC_x/db

        ``weight_decay`` is 1 - eta*lambda/n for L2 regularisation (textbook ch. 3), else 1.
        The trainer uses ``digitnet.optim`` (momentum, L1, ...); this is the textbook's form.
        """
        nabla_b, nabla_w = self.backprop(x, y)
        step = learning_rate / len(x)
        for w, b, gw, gb in zip(self.weights, self.biases, nabla_w, nabla_b):
            if weight_decay != 1.0:
                w *= weight_decay
            gw *= step
            w -= gw
            gb *= step
            b -= gb
