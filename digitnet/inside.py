"""The numbers behind an answer: layer activations, contributions, saliency, ablation, one taught step.

Pure numpy, no I/O, no printing: ``digitnet explain``, ``POST /api/explain`` and ``POST /api/teach`` print
what these functions return, so they cannot disagree.  Notation is the textbook's (Nielsen ch. 1-2) for ONE
example as a column, a^0 = x (the 784 pixels) and, for l = 1..L,

    z^l = w^l a^{l-1} + b^l,      a^l = sigma(z^l)      (a^L = softmax(z^L) for the log-likelihood cost).

``explain`` works in float64: float64 copies of the weights, made once per network object (and again if its
weights change) and kept beside its weight pictures, so the contributions w^L_jk a^{L-1}_k plus b^L_j add up
to z^L_j to rounding (about 1e-16) whatever dtype the network trains in.  ``teach`` works in the network's
own dtype, because it must be the trainer's step to the last bit.

Units switched off ("ablation") have their activations held at 0 in the forward pass: the same outputs as
zeroing their outgoing weights, and, since a held activation does not depend on z, derivative 0 in BP2.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from digitnet.network import Network, sigmoid

__all__ = ["LAST", "Explanation", "InsideError", "TaughtStep", "check_off", "explain", "parse_off", "teach",
           "weight_atlas", "weight_pictures"]

SIDE = 28                 # a digit is SIDE x SIDE pixels
LAST = -1                 # parse_off's layer for a bare unit: the last hidden layer, named by check_off
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_OFF_HELP = "write layer:unit such as 1:4,1:17, or units of the last hidden layer such as 4,17"


class InsideError(ValueError):
    """A digit, unit, label, eta or input the network cannot take; a one-line message that names the
    option or field as the user typed it (--digit, --off, --top, label, eta)."""


def _shown(value) -> str:
    """The value as the message quotes it: its repr, one line, at most 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(value) -> int | None:
    """An int from an int, an integral float or a string of ASCII digits; None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def _digit(value, name: str, classes: int) -> int:
    """The digit ``value`` names (0..classes-1), or InsideError naming ``name`` (--digit, label)."""
    digit = _integer(value)
    if digit is None or not 0 <= digit < classes:
        raise InsideError(f"{name} must be a digit 0..{classes - 1}, got {_shown(value)}")
    return digit


def _eta(value) -> float:
    """The learning rate eta: a finite number > 0, or InsideError naming ``eta``."""
    eta = None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        eta = float(value)
    elif isinstance(value, str):
        try:
            eta = float(value)
        except ValueError:
            pass
    if eta is None or not math.isfinite(eta) or eta <= 0:
        raise InsideError(f"eta must be a finite positive number, got {_shown(value)}")
    return eta


def _input(network: Network, x) -> np.ndarray:
    """x as a new float64 vector a^0 of sizes[0] values (784 pixels may come as 28x28); InsideError if not."""
    n = network.sizes[0]
    try:
        a = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InsideError(f"the input must be {n} numbers (pixels in [0, 1])") from None
    if a.size != n:
        raise InsideError(f"the input has {a.size} values; this network takes {n}"
                          + (" (28x28 pixels)" if n == SIDE * SIDE else ""))
    a = a.reshape(n)
    if not np.isfinite(a).all():
        raise InsideError("the input has values that are not finite numbers")
    return a


# --- units switched off ------------------------------------------------------------------------------

def _off_pair(item) -> tuple[int, int]:
    """One unit switched off, as (layer, unit): "1:4" / [1, 4] / (1, 4), or a bare unit "4" / 4 -> (LAST, 4)."""
    if isinstance(item, str) and ":" in item:
        layer, unit = (_integer(part) for part in item.split(":", 1))
    elif isinstance(item, (list, tuple, np.ndarray)) and len(item) == 2:
        layer, unit = _integer(item[0]), _integer(item[1])
    else:
        layer, unit = LAST, _integer(item)
    if layer is None or unit is None or unit < 0 or (layer < 1 and layer != LAST):
        raise InsideError(f"--off: {_shown(item)} is not a unit; {_OFF_HELP}")
    return layer, unit


def parse_off(value) -> tuple[tuple[int, int], ...]:
    """Units to switch off, from "1:4,1:17" or [[1, 4], [1, 17]] (layer counts hidden layers from 1, unit
    from 0); a bare unit ("4,17" or [4, 17]) means the last hidden layer and comes back as (LAST, unit),
    which ``check_off`` resolves.  "" / [] / None -> ().  Sorted, without repeats; InsideError naming --off.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items = [piece.strip() for piece in value.split(",") if piece.strip()]
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    else:
        raise InsideError(f"--off: {_shown(value)} is not a list of units; {_OFF_HELP}")
    return tuple(sorted({_off_pair(item) for item in items}))


def check_off(network: Network, off) -> tuple[tuple[int, int], ...]:
    """``parse_off(off)`` with every (layer, unit) checked against this network's hidden layers and a bare
    unit given its layer (the last hidden one); InsideError naming --off and the layer's size if one does
    not exist."""
    hidden = network.sizes[1:-1]
    checked = set()
    for layer, unit in parse_off(off):
        typed = f"{unit}" if layer == LAST else f"{layer}:{unit}"
        if not hidden:
            raise InsideError(f"--off {typed}: a {'-'.join(map(str, network.sizes))} network has no hidden units")
        layer = len(hidden) if layer == LAST else layer
        if layer > len(hidden):
            raise InsideError(f"--off {typed}: the network has {len(hidden)} hidden layer"
                              f"{'s' if len(hidden) > 1 else ''} (1..{len(hidden)})")
        if unit >= hidden[layer - 1]:
            raise InsideError(f"--off {typed}: hidden layer {layer} has {hidden[layer - 1]} units "
                              f"(0..{hidden[layer - 1] - 1})")
        checked.add((layer, unit))
    return tuple(sorted(checked))


# --- float64 copies of a network, cached per network object ---------------------------------------------

class _Float64:
    """One network's weights and biases as float64 copies, and what is drawn from them (pictures, atlas)."""

    def __init__(self, network: Network):
        self.weights = [np.array(w, dtype=np.float64) for w in network.weights]
        self.biases = [np.array(b, dtype=np.float64) for b in network.biases]
        self.pictures: np.ndarray | None = None
        self.atlas: tuple[np.ndarray, int] | None = None

    def matches(self, network: Network) -> bool:
        """True while the network still has these weights (a network being trained changes in place)."""
        return (len(network.weights) == len(self.weights)
                and all(np.array_equal(mine, theirs) for mine, theirs in zip(self.weights, network.weights))
                and all(np.array_equal(mine, theirs) for mine, theirs in zip(self.biases, network.biases)))


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # network -> _Float64, gone with the network
_LOCK = threading.Lock()


def _float64(network: Network) -> _Float64:
    """The network's float64 copies: made once per network object, made again when its weights changed.

    Checking costs a comparison of the weights, 0.24 ms for 784-800-10 (making the copies costs 0.21 ms),
    which keeps the cache right for a network trained in place and far inside /api/explain's 40 ms.
    """
    with _LOCK:
        entry = _CACHE.get(network)
    if entry is None or not entry.matches(network):
        entry = _Float64(network)
        with _LOCK:
            _CACHE[network] = entry
    return entry


# --- one explained answer ----------------------------------------------------------------------------

def _forward(network: Network, params: _Float64, x: np.ndarray, off) -> tuple[list, list]:
    """z^l and a^l for l = 1..L in float64, the units in ``off`` held at a^l_k = 0 (ablation)."""
    held: dict[int, list[int]] = {}
    for layer, unit in off:
        held.setdefault(layer, []).append(unit)
    zs, activations = [], [x]
    last = len(params.weights)
    for l, (w, b) in enumerate(zip(params.weights, params.biases), start=1):
        z = w @ activations[-1] + b                               # z^l = w^l a^{l-1} + b^l
        if l == last:
            a = network.output_activation(z[None, :])[0]          # a^L = sigma(z^L), or softmax(z^L)
        else:
            a = sigmoid(z)                                        # a^l = sigma(z^l)
            a[held.get(l, [])] = 0.0                              # ablation: switched-off units held at 0
        zs.append(z)
        activations.append(a)
    return zs, activations


def _saliency(params: _Float64, activations: list, digit: int) -> np.ndarray:
    """dz^L_j/dx: BP2 carried to the pixels.

    Start from dz^L_j/dz^L = e_j (z^L_j itself, before any output activation), go back through the hidden
    layers with BP2, delta^l = (w^{l+1})^T delta^{l+1} (.) sigma'(z^l), sigma'(z^l) = a^l (1 - a^l) -- which
    is 0 for a unit switched off, as it must be (its activation is held at 0 whatever z) -- and finish at the
    input with dz^L_j/dx = (w^1)^T delta^1: the pixels are not a layer of sigmoids, so no sigma' there.
    """
    delta = np.zeros(len(params.biases[-1]))
    delta[digit] = 1.0                                            # dz^L_j/dz^L = e_j
    for l in range(len(params.weights) - 1, 0, -1):               # hidden layers l = L-1..1; w^{l+1} = weights[l]
        a = activations[l]
        # BP2: delta^l = (w^{l+1})^T delta^{l+1} (.) sigma'(z^l), sigma'(z^l) = a^l (1 - a^l)
        delta = (params.weights[l].T @ delta) * (a * (1.0 - a))
    return params.weights[0].T @ delta                            # at the input: dz^L_j/dx = (w^1)^T delta^1, no sigma'


@dataclass(frozen=True, eq=False)
class Explanation:
    """How one answer came out of the weights, for the digit j explained; every array float64."""

    digit: int                     # j, the digit explained (default: the answer)
    answer: int                    # argmax a^L, with ``off`` applied
    outputs: np.ndarray            # a^L, shape (10,)
    zs: list                       # z^l for every layer after the input
    activations: list              # a^l: activations[0] is x, activations[-1] is a^L (off units held at 0)
    contributions: np.ndarray      # w^L_jk a^{L-1}_k for each unit k of the last hidden layer (index = unit)
    order: np.ndarray              # the units of the last hidden layer by contribution, largest first
    bias: float                    # b^L_j: contributions.sum() + bias == zs[-1][digit]
    saliency: np.ndarray           # dz^L_j/dx, shape (784,): BP2 carried to the pixels
    off: tuple                     # the (layer, unit) pairs switched off, sorted

    def to_dict(self, top: int | None = None) -> dict:
        """JSON-ready (Python floats, float64, not rounded): the one shape `digitnet explain --json` and
        POST /api/explain both print; ``top`` keeps the K largest contributions (InsideError naming --top)."""
        order = self.order
        if top is not None:
            count = _integer(top)
            if count is None or count < 0:
                raise InsideError(f"--top must be a whole number of units (0 or more), got {_shown(top)}")
            order = order[:count]
        previous = self.activations[-2]
        return {
            "digit": self.digit,
            "answer": self.answer,
            "outputs": self.outputs.tolist(),
            "z": float(self.zs[-1][self.digit]),
            "bias": self.bias,
            "off": [[layer, unit] for layer, unit in self.off],
            "contributions": [{"unit": int(k), "activation": float(previous[k]),
                               "contribution": float(self.contributions[k])} for k in order],
            "layers": [{"layer": l, "z": self.zs[l - 1].tolist(), "activation": self.activations[l].tolist()}
                       for l in range(1, len(self.zs))],
            "saliency": self.saliency.tolist(),
        }


def explain(network: Network, x, digit=None, off=()) -> Explanation:
    """Why ``network`` answers what it does for the input ``x`` (784 floats in [0, 1], or 28x28).

    ``digit`` is the j explained (default: the answer); ``off`` the hidden units switched off (anything
    ``parse_off`` reads).  Raises InsideError for an input, digit or unit the network cannot take.
    """
    x = _input(network, x)
    if digit is not None:
        digit = _digit(digit, "--digit", network.sizes[-1])
    off = check_off(network, off)
    params = _float64(network)
    zs, activations = _forward(network, params, x, off)
    outputs = activations[-1]
    answer = int(np.argmax(outputs))
    digit = answer if digit is None else digit
    contributions = params.weights[-1][digit] * activations[-2]   # w^L_jk a^{L-1}_k, one per unit k
    return Explanation(
        digit=digit, answer=answer, outputs=outputs, zs=zs, activations=activations,
        contributions=contributions,
        order=np.argsort(-contributions, kind="stable"),
        bias=float(params.biases[-1][digit]),                      # b^L_j: z^L_j = sum_k w^L_jk a^{L-1}_k + b^L_j
        saliency=_saliency(params, activations, digit),
        off=off,
    )


# --- the first layer's weights as pictures -------------------------------------------------------------

def _first_layer(network: Network) -> _Float64:
    if network.sizes[0] != SIDE * SIDE or len(network.sizes) < 3:
        raise InsideError(f"a {'-'.join(map(str, network.sizes))} network has no first hidden layer "
                          "reading 28x28 pixels to draw")
    return _float64(network)


def weight_pictures(network: Network) -> np.ndarray:
    """(sizes[1], 28, 28) float32: each first-layer unit's incoming weights w^1_k as a picture.

    Cached per network object (the same read-only array while its weights stay the same).
    """
    entry = _first_layer(network)
    if entry.pictures is None:
        pictures = entry.weights[0].astype(np.float32).reshape(-1, SIDE, SIDE)
        pictures.flags.writeable = False
        entry.pictures = pictures
    return entry.pictures


def weight_atlas(network: Network) -> tuple[np.ndarray, int]:
    """(uint8 image, columns): the weight pictures tiled in a grid of ceil(sqrt(n)) columns, no gaps.

    Tile k sits at row k // columns, column k % columns; pixel = round(127.5 + 127.5 * w / max|w of that
    unit|) in float64 (round half to even): 128 is zero, brighter positive, darker negative.  Tiles past the
    last unit are 128.  Cached per network object, read-only.
    """
    entry = _first_layer(network)
    if entry.atlas is None:
        w = entry.weights[0]
        n = len(w)
        columns = math.isqrt(n - 1) + 1                           # ceil(sqrt(n)), exactly
        rows = -(-n // columns)
        scale = np.max(np.abs(w), axis=1, keepdims=True)
        scale[scale == 0] = 1.0                                   # a unit of zeros is all 128
        pixels = np.rint(127.5 + 127.5 * w / scale)
        pixels[~np.isfinite(pixels)] = 128.0                      # a diverged (NaN) weight shows as zero
        tiles = np.full((rows * columns, SIDE, SIDE), 128, np.uint8)
        tiles[:n] = pixels.reshape(n, SIDE, SIDE)
        image = tiles.reshape(rows, columns, SIDE, SIDE).transpose(0, 2, 1, 3).reshape(rows * SIDE, columns * SIDE)
        image.flags.writeable = False
        entry.atlas = (image, columns)
    return entry.atlas


# --- one taught step -----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TaughtStep:
    """One step of the textbook's learning on one example, applied to a scratch copy of the network."""

    network: Network               # the scratch copy after the step; the given network is never changed
    label: int
    eta: float
    outputs_before: np.ndarray     # a^L before and after the step (10,), in the network's dtype
    outputs_after: np.ndarray
    cost_before: float             # C_x before and after (the network's own cost)
    cost_after: float
    deltas: list                   # delta^l for every layer after the input: deltas[-1] BP1's delta^L, the rest BP2's
    nabla_b_norms: list            # BP3: |dC/db^l| per layer
    nabla_w_norms: list            # BP4: |dC/dw^l| per layer

    def to_dict(self) -> dict:
        """JSON-ready (Python floats, not rounded): the shape POST /api/teach prints."""
        def side(outputs):
            return {"outputs": outputs.tolist(), "answer": int(np.argmax(outputs))}
        return {
            "label": self.label,
            "eta": self.eta,
            "before": side(self.outputs_before),
            "after": side(self.outputs_after),
            "cost_before": self.cost_before,
            "cost_after": self.cost_after,
            "bp1": {"delta": self.deltas[-1].tolist(), "norm": float(np.linalg.norm(self.deltas[-1]))},
            "bp2": [{"layer": l, "norm": float(np.linalg.norm(delta)), "delta": delta.tolist()}
                    for l, delta in enumerate(self.deltas[:-1], start=1)],
            "bp3": list(self.nabla_b_norms),
            "bp4": list(self.nabla_w_norms),
        }


def teach(network: Network, x, label, eta) -> TaughtStep:
    """The textbook's update on a batch of one, x with the desired output y = e_label, on a scratch copy:

        w^l <- w^l - eta dC_x/dw^l,    b^l <- b^l - eta dC_x/db^l,

    equal to the last bit to ``copy.update_mini_batch(x[None], y, eta)`` (it IS that call, after one
    ``backprop`` whose buffers are copied out to show BP1-BP4).  x is taken in the network's dtype, as the
    trainer feeds it.  InsideError names ``label`` or ``eta``, or the input.
    """
    label = _digit(label, "label", network.sizes[-1])
    eta = _eta(eta)
    x = _input(network, x).astype(network.dtype)[None, :]
    y = np.zeros((1, network.sizes[-1]), network.dtype)
    y[0, label] = 1.0                                              # y = e_label
    scratch = Network(network.sizes, [w.copy() for w in network.weights], [b.copy() for b in network.biases],
                      cost=network.cost.name, dtype=network.dtype)
    nabla_b, nabla_w = scratch.backprop(x, y)
    before = scratch.last_outputs(1)[0].copy()                     # a^L before the step
    deltas = [d[0].copy() for d in scratch.last_deltas(1)]         # BP1's delta^L last, BP2's delta^l before it
    nabla_b_norms = [float(np.linalg.norm(g)) for g in nabla_b]    # BP3: dC/db^l = delta^l
    nabla_w_norms = [float(np.linalg.norm(g)) for g in nabla_w]    # BP4: dC/dw^l = delta^l (a^{l-1})^T
    scratch.update_mini_batch(x, y, eta)                           # the step itself, the trainer's code
    after = scratch.feedforward(x)[0].copy()
    # The copy handed back shares the stepped arrays but not the scratch's backprop buffers (as big as the weights).
    taught = Network(scratch.sizes, scratch.weights, scratch.biases, cost=network.cost.name, dtype=network.dtype)
    return TaughtStep(
        network=taught, label=label, eta=eta, outputs_before=before, outputs_after=after,
        cost_before=network.cost.value(before[None, :], y) + 0.0,    # + 0.0: -ln 1 is -0.0, shown as 0.0
        cost_after=network.cost.value(after[None, :], y) + 0.0,
        deltas=deltas, nabla_b_norms=nabla_b_norms, nabla_w_norms=nabla_w_norms,
    )
