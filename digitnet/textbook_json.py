"""The textbook's JSON network files: ``{"sizes", "weights", "biases"[, "cost"]}``.

This is what Nielsen's ``network2.py`` writes with ``Network.save`` (and what
the digit-recogniser programs built on it ship as saved networks):

    {"sizes": [784, 100, 10],
     "weights": [w.tolist() for w in weights],   # each (n_out, n_in): the book's w^l
     "biases":  [b.tolist() for b in biases],    # each a column, (n_out, 1)
     "cost": "CrossEntropyCost"}                 # the class name; absent in some files

The book's shapes are digitnet's, so the arrays are used as they are (a
column of biases becomes a flat vector).  The file is untrusted: its size is
checked before it is parsed (JSON text becomes Python lists of about 30 bytes
per number, so an unchecked 1 GB file would need tens of GB), then every
shape, type and value is validated.  Nothing here runs code from the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from digitnet.network import Network

# A 784-100-10 network is about 1.7 MB of JSON and 784-1000-10 about 17 MB; 64 MB leaves room
# for bigger networks while bounding the parser's memory (about 30 bytes per number, under 2 GB).
MAX_BYTES = 64 * 1024 * 1024
FORMAT = "textbook-json"
DESCRIPTION = "the textbook's JSON network format (network2.py save())"

# network2.py stores the cost's class name; digitnet's own names are accepted too.
COST_NAMES = {
    "QuadraticCost": "quadratic",
    "CrossEntropyCost": "cross-entropy",
    "quadratic": "quadratic",
    "cross-entropy": "cross-entropy",
}
# Without a "cost" entry the file comes from a network trained with the quadratic cost
# (network.py, chapter 1, has no save(); the forks that add one write no cost).
DEFAULT_COST = "quadratic"


class TextbookJSONError(Exception):
    """The file is not a usable textbook JSON network; the message says why."""


def looks_like_json(path: str | os.PathLike) -> bool:
    """True for a ``.json`` name or a file whose first non-blank byte is ``{``."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip()[:1] == b"{"
    except OSError:
        return False


def load(path: str | os.PathLike, max_bytes: int | None = None, dtype="float32") -> tuple[Network, dict]:
    """The network in a textbook JSON file and a metadata dict describing where it came from.

    ``max_bytes`` defaults to MAX_BYTES.  Raises TextbookJSONError (without
    the file name; the caller adds it) for anything unusable, and OSError
    when the file cannot be read.
    """
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise TextbookJSONError(f"the file is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB "
                                "limit for JSON networks")
    with open(path, "rb") as f:
        text = f.read(max_bytes + 1)  # the file may have grown since stat()
    if len(text) > max_bytes:
        raise TextbookJSONError(f"the file is over the {max_bytes / 2**20:.0f} MB limit for JSON networks")
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TextbookJSONError(f"not valid JSON ({e})") from None
    except RecursionError:
        raise TextbookJSONError("not a network: the JSON is nested too deeply") from None
    return from_document(document, dtype)


def from_document(document, dtype="float32") -> tuple[Network, dict]:
    """Validate a parsed JSON document and build the network it describes."""
    if not isinstance(document, dict):
        raise TextbookJSONError("not a network: the JSON must be an object with sizes, weights and biases")
    missing = [key for key in ("sizes", "weights", "biases") if key not in document]
    if missing:
        raise TextbookJSONError(f"not a network: no {', '.join(repr(k) for k in missing)} entr"
                                f"{'y' if len(missing) == 1 else 'ies'} (expected sizes, weights, biases)")
    sizes = document["sizes"]
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes)):
        raise TextbookJSONError("'sizes' must be a list of at least two positive integers")
    cost_name = document.get("cost", DEFAULT_COST)
    if cost_name not in COST_NAMES:
        raise TextbookJSONError(f"unknown cost {cost_name!r} (expected one of "
                                f"{', '.join(k for k in COST_NAMES if k[0].isupper())})")
    layers = len(sizes) - 1
    weights = _arrays(document["weights"], "weights", layers,
                      [(sizes[l + 1], sizes[l]) for l in range(layers)], sizes)
    biases = _arrays(document["biases"], "biases", layers, [(sizes[l + 1], 1) for l in range(layers)], sizes)
    network = Network(sizes, weights, biases, cost=COST_NAMES[cost_name], dtype=dtype)
    metadata = {
        "format": FORMAT,
        "source": DESCRIPTION,
        "sizes": sizes,
        "activation": "sigmoid",
        "cost": network.cost.name,
        "dtype": network.dtype.name,
    }
    return network, metadata


def _arrays(value, name: str, layers: int, shapes: list[tuple[int, int]], sizes) -> list[np.ndarray]:
    """One float64 array per layer, in the book's shapes; biases may also be flat lists."""
    if not isinstance(value, list) or len(value) != layers:
        raise TextbookJSONError(f"'{name}' must be a list of {layers} arrays, one per layer of sizes {sizes}")
    arrays = []
    for l, (item, shape) in enumerate(zip(value, shapes)):
        where = f"'{name}'[{l}]"
        try:
            array = np.array(item)
        except (ValueError, TypeError):
            raise TextbookJSONError(f"{where} is not a rectangular array of numbers") from None
        if array.dtype.kind not in "iuf":  # strings, booleans, nulls, ragged lists (object)
            raise TextbookJSONError(f"{where} must hold only numbers")
        if name == "biases" and array.shape == shape[:1]:
            array = array.reshape(shape)  # a flat list is accepted for a column
        if array.shape != shape:
            raise TextbookJSONError(f"{where} has shape {array.shape}, expected {shape} for sizes {sizes}")
        if not np.all(np.isfinite(array)):
            raise TextbookJSONError(f"{where} holds NaN or infinite values")
        arrays.append(array.astype(np.float64, copy=False))
    return arrays


def dump(network: Network) -> dict:
    """The network as network2.py's save() would write it (for tests and for sharing)."""
    return {
        "sizes": list(network.sizes),
        "weights": [w.astype(np.float64).tolist() for w in network.weights],
        "biases": [b.astype(np.float64).reshape(-1, 1).tolist() for b in network.biases],
        "cost": {"quadratic": "QuadraticCost", "cross-entropy": "CrossEntropyCost"}[network.cost.name],
    }
