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
import sys
from pathlib import Path

import numpy as np

from digitnet.network import Network

# A 784-100-10 network is about 1.7 MB of JSON and 784-1000-10 about 17 MB; 64 MB leaves room
# for bigger networks.
MAX_BYTES = 64 * 1024 * 1024
# The parser's memory is per number, not per byte: "0.1," is 4 bytes of text and 32 of Python list and
# float, so 64 MB of short numbers parsed to 770 MB (measured).  Commas bound the numbers and are counted
# before parsing (20 ms for 64 MB): 4 million keeps the parse near 250 MB, and MAX_BYTES of numbers as
# network2.py writes them (17 significant digits, about 20 bytes each) are fewer than that.
MAX_NUMBERS = 4_000_000
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

    Raises TextbookJSONError (without the file name; the caller adds it) for
    anything unusable, and OSError when the file cannot be read.  Bounds,
    checked before parsing: at most ``max_bytes`` (default MAX_BYTES) are read
    and at most MAX_NUMBERS numbers parsed, so memory stays near 4x the file
    plus 50 bytes a number (about 250 MB at most) and time near 40 ns a byte
    (2.5 s of CPU for 64 MB).  Nesting deeper than the interpreter's recursion
    limit is refused (the parser's RecursionError never escapes); every
    number must be finite after the cast to ``dtype`` (1e300 is refused for
    float32, not loaded as inf).
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
    if text.count(b",") > MAX_NUMBERS:
        raise TextbookJSONError(f"the file holds over {MAX_NUMBERS:,} numbers, the limit for JSON networks "
                                "(a 784-1000-10 network has 0.8 million)")
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise TextbookJSONError("not a network: the JSON is nested too deeply") from None
    except UnicodeDecodeError as e:
        raise TextbookJSONError(f"not valid JSON (not UTF-8 text: {e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise TextbookJSONError(f"not valid JSON ({_short(e)})") from None
    except ValueError:  # the one other: an integer of over sys.get_int_max_str_digits() (4300) digits
        raise TextbookJSONError(f"not a network: a number in the file has over {sys.get_int_max_str_digits()} "
                                "digits") from None
    return from_document(document, dtype)


def _refuse_constant(name: str):
    """json's hook for the literals NaN, Infinity and -Infinity, which JSON itself does not allow."""
    raise TextbookJSONError(f"the file holds NaN or infinite values (the literal {name})")


def from_document(document, dtype="float32") -> tuple[Network, dict]:
    """Validate a parsed JSON document and build the network it describes (TextbookJSONError if unusable)."""
    if not isinstance(document, dict):
        raise TextbookJSONError("not a network: the JSON must be an object with sizes, weights and biases")
    missing = [key for key in ("sizes", "weights", "biases") if key not in document]
    if missing:
        raise TextbookJSONError(f"not a network: no {', '.join(repr(k) for k in missing)} entr"
                                f"{'y' if len(missing) == 1 else 'ies'} (expected sizes, weights, biases)")
    sizes = document["sizes"]
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(type(n) is int and n >= 1 for n in sizes)):
        raise TextbookJSONError(f"'sizes' must be a list of at least two positive integers, got {_short(sizes)}")
    cost_name = document.get("cost", DEFAULT_COST)
    if not isinstance(cost_name, str) or cost_name not in COST_NAMES:
        raise TextbookJSONError(f"unknown cost {_short(cost_name)} (expected one of "
                                f"{', '.join(k for k in COST_NAMES if k[0].isupper())})")
    dtype = np.dtype(dtype)
    layers = len(sizes) - 1
    weights = _arrays(document["weights"], "weights", [(sizes[l + 1], sizes[l]) for l in range(layers)], sizes, dtype)
    biases = _arrays(document["biases"], "biases", [(sizes[l + 1], 1) for l in range(layers)], sizes, dtype)
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


def _arrays(value, name: str, shapes: list[tuple[int, int]], sizes, dtype: np.dtype) -> list[np.ndarray]:
    """One ``dtype`` array per layer, in the book's shapes; biases may also be flat lists."""
    if not isinstance(value, list) or len(value) != len(shapes):
        raise TextbookJSONError(f"'{name}' must be a list of {len(shapes)} arrays, one per layer of sizes "
                                f"{_short(sizes)}")
    return [_layer(item, f"'{name}'[{l}]", shape, name == "biases", sizes, dtype)
            for l, (item, shape) in enumerate(zip(value, shapes))]


NUMBERS = {int, float}  # the types json gives numbers; bool (a subclass of int) is not one


def _layer(item, where: str, shape: tuple[int, int], flat_ok: bool, sizes, dtype: np.dtype) -> np.ndarray:
    """A list of rows of numbers (or, for biases, a flat list) checked leaf by leaf, then cast to ``dtype``.

    Types and shape are checked on the lists themselves, so numpy never guesses (a ``true`` among numbers
    would become 1, deep nesting a many-dimensional array); a value finite in the file but not in
    ``dtype`` (1e300 in float32) is refused after the cast.  ``map(type, ...)`` keeps the check at C
    speed: about 30 ms for the 794,000 numbers of a 784-1000-10 network, where json.loads takes 600 ms."""
    if not isinstance(item, list):
        raise TextbookJSONError(f"{where} must be a list of rows of numbers, got {type(item).__name__}")
    kinds = set(map(type, item))
    if kinds <= {list}:
        widths = set(map(len, item))
        if len(widths) > 1:
            raise TextbookJSONError(f"{where} is not a rectangular array of numbers (rows of lengths "
                                    f"{_short(sorted(widths))})")
        leaves = set()
        for row in item:
            leaves.update(map(type, row))
        if not leaves <= NUMBERS:
            raise TextbookJSONError(f"{where} must hold only numbers")
        given = (len(item), widths.pop() if widths else 0)
    elif flat_ok and kinds <= NUMBERS:
        given = (len(item),)
    elif list in kinds:
        raise TextbookJSONError(f"{where} is not a rectangular array of numbers")
    else:
        raise TextbookJSONError(f"{where} must hold only numbers" if flat_ok else
                                f"{where} must be a list of rows of numbers")
    if given != shape and not (flat_ok and given == shape[:1]):
        raise TextbookJSONError(f"{where} has shape {given}, expected {shape} for sizes {_short(sizes)}")
    try:
        array = np.array(item, dtype=np.float64).reshape(shape)
    except OverflowError:  # an integer beyond float64 (about 1.8e308)
        raise TextbookJSONError(f"{where} holds a number too large for {dtype.name}") from None
    with np.errstate(over="ignore"):
        cast = array.astype(dtype, copy=False)
    if not np.all(np.isfinite(cast)):
        if not np.all(np.isfinite(array)):
            raise TextbookJSONError(f"{where} holds NaN or infinite values")
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(cast))[0])
        raise TextbookJSONError(f"{where} holds {array[index]:g} at {list(index)}, too large for {dtype.name} "
                                f"(at most {np.finfo(dtype).max:.3g})")
    return cast


def _short(value, limit: int = 120) -> str:
    """``repr`` of a value from the file, cut to ``limit`` characters (a message is one line, not the file)."""
    try:
        text = repr(value) if not isinstance(value, BaseException) else str(value)
    except (ValueError, RecursionError):  # an int of over 4300 digits (sys.int_info), lists in lists in...
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def dump(network: Network) -> dict:
    """The network as network2.py's save() would write it (for tests and for sharing)."""
    return {
        "sizes": list(network.sizes),
        "weights": [w.astype(np.float64).tolist() for w in network.weights],
        "biases": [b.astype(np.float64).reshape(-1, 1).tolist() for b in network.biases],
        "cost": {"quadratic": "QuadraticCost", "cross-entropy": "CrossEntropyCost"}[network.cost.name],
    }
