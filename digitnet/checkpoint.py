"""Checkpoints: one ``.npz`` of plain arrays plus a JSON metadata entry.

Layout (all keys are plain numeric arrays or a unicode string, so
``numpy.load(path, allow_pickle=False)`` reads it; ``load`` never runs code):

    w0, b0, w1, b1, ...          weights (n_out, n_in) and biases (n_out,) of the last epoch
    best_w0, best_b0, ...        (optional) the weights of the best validation epoch
    velocity_w0, velocity_b0, ...  (optional, version 2) momentum velocities of the last epoch
    metadata                     JSON text: format version, sizes, cost, hyperparameters,
                                 history, RNG state, library versions, ...

Writes are atomic: a temporary file beside the target, fsync, ``os.replace``.

Reading trusts nothing in the file: ``npz.NpzReader`` opens the zip and each
``.npy`` header within stated bounds before any data is read, then every
metadata field and array is checked here (see ``load``).  ``load`` also
reads the textbook's JSON network files (``network2.py``'s ``save()``; see
``textbook_json``): a checkpoint with the network and a metadata dict whose
``format``/``source`` say where it came from.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitnet import textbook_json
from digitnet.atomic import atomic_path
from digitnet.config import TrainConfig
from digitnet.network import COSTS, Network
from digitnet.npz import ZIP_ERRORS, NpzError, NpzReader
from digitnet.npz import one_line
from digitnet.npz import short as _short
from digitnet.settings import settings_of

# Version 2 added the momentum velocities; version 1 files (no velocities) are still read.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
ACTIVATION = "sigmoid"


class CheckpointError(Exception):
    """A checkpoint that cannot be read or does not describe a valid network."""


@dataclass
class Checkpoint:
    network: Network
    metadata: dict
    best_network: Network | None = None
    path: Path | None = field(default=None, compare=False)
    velocities: tuple[list, list] | None = None   # momentum velocities (weights, biases), if trained with momentum

    @property
    def history(self) -> list[dict]:
        return self.metadata.get("history") or []

    def weights(self, which: str = "best") -> tuple[Network, str]:
        """The network to use and which weights it has: the best validation epoch's ("best") when
        asked for and kept, else the last epoch's ("last")."""
        if which == "best" and self.best_network is not None:
            return self.best_network, "best"
        return self.network, "last"


def digit_reader_problem(network: Network, name) -> str | None:
    """Why ``network`` cannot read 28x28 digits (it needs 784 inputs and 10 outputs), or None."""
    if network.sizes[0] == 28 * 28 and network.sizes[-1] == 10:
        return None
    return (f"{name}: a {'-'.join(map(str, network.sizes))} network cannot read 28x28 digits "
            "(it needs 784 inputs and 10 outputs)")


def _layer_arrays(network: Network, prefix: str = "") -> dict[str, np.ndarray]:
    arrays = {}
    for l, (w, b) in enumerate(zip(network.weights, network.biases)):
        arrays[f"{prefix}w{l}"] = w
        arrays[f"{prefix}b{l}"] = b
    return arrays


def save(path: str | os.PathLike, network: Network, metadata: dict,
         best_network: Network | None = None, velocities: tuple[list, list] | None = None) -> Path:
    """Write the checkpoint atomically: the old file stays intact until the new one is complete."""
    path = Path(path)
    metadata = dict(metadata, format_version=FORMAT_VERSION, sizes=network.sizes,
                    activation=ACTIVATION, cost=network.cost.name, dtype=network.dtype.name)
    arrays = _layer_arrays(network)
    if best_network is not None:
        arrays.update(_layer_arrays(best_network, "best_"))
    if velocities is not None:
        for l, (vw, vb) in enumerate(zip(*velocities)):
            arrays[f"velocity_w{l}"] = vw
            arrays[f"velocity_b{l}"] = vb
    arrays["metadata"] = np.array(json.dumps(metadata))
    # np.savez stores the arrays uncompressed: their bytes are the file's size, near enough.
    with atomic_path(path, expected_bytes=sum(a.nbytes for a in arrays.values())) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
    return path


# ---------------------------------------------------------------------------
# Validation: what the metadata and the arrays say

MAX_JSON_DEPTH = 32  # digitnet writes depth 4 (state.rng_state.state.state)
_MEMBERS = re.compile(r"metadata|(?:best_|velocity_)?[wb](0|[1-9][0-9]{0,3})")  # group 1: the layer


def _json_problem(value) -> str | None:
    """Why parsed JSON cannot be used: nesting deeper than ``MAX_JSON_DEPTH`` (walked iteratively: no
    recursion limit to hit), or a lone surrogate from a ``"\\ud800"`` escape, which no output can encode."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"metadata holds text that is not unicode (a lone surrogate: {_short(item)})"
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                return f"metadata nests deeper than {MAX_JSON_DEPTH} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def _is_number(value) -> bool:
    """A JSON number every reader can format: not a bool, and an int that fits a float64 (a 400-digit
    int raises OverflowError in ``f"{x:g}"``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, float) or abs(value) < 2 ** 63


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 63


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, str)) or _is_number(value)


# The top-level fields the commands, the page and the API read, with the type each must have when present.
_FIELD_CHECKS = {
    "epochs_completed": ("a whole number >= 0", _is_count),
    "best_epoch": ("a whole number >= 0 or null", lambda v: v is None or _is_count(v)),
    "seed": ("a whole number or null", lambda v: v is None or (_is_number(v) and isinstance(v, int))),
    "best_validation_accuracy": ("a number or null", lambda v: v is None or _is_number(v)),
    "test_accuracy": ("a number or null", lambda v: v is None or _is_number(v)),
    "test_accuracy_last_epoch": ("a number or null", lambda v: v is None or _is_number(v)),
    "stopped": ("text or null", lambda v: v is None or isinstance(v, str)),
    "dtype": ("text", lambda v: isinstance(v, str)),
    "dataset": ("text", lambda v: isinstance(v, str)),
    "saved_at": ("text", lambda v: isinstance(v, str)),
    "source": ("text", lambda v: isinstance(v, str)),
    "format": ("text", lambda v: isinstance(v, str)),
    "state": ("an object", lambda v: isinstance(v, dict)),
    "taught": ("an object", lambda v: isinstance(v, dict)),
    "versions": ("an object of texts", lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values())),
}
_HISTORY_NUMBERS = ("training_cost", "seconds", "learning_rate")
# The resume state (``training.TrainState``), typed the same way: `train --resume` compares and counts with it.
_STATE_CHECKS = {
    **{key: ("a whole number >= 0", _is_count) for key in ("epochs_completed", "best_epoch", "epochs_since_best",
                                                           "epochs_since_eta_change", "averaged_epochs")},
    "learning_rate": ("a number", _is_number),
    "best_accuracy": ("a number or null", lambda v: v is None or _is_number(v)),
    "stopped": ("text", lambda v: isinstance(v, str)),
    "untrained": ("an object or null", lambda v: v is None or isinstance(v, dict)),
    "peeks": ("a list of objects", lambda v: isinstance(v, list) and all(isinstance(p, dict) for p in v)),
    "rng_state": ("a random generator's state", lambda v: isinstance(v, dict) and _is_rng_state(v)),
}


def _is_rng_state(state: dict) -> bool:
    """Whether numpy takes ``state`` for the generator a resumed run restores (PCG64, default_rng's)."""
    if not state:
        return True
    try:
        np.random.default_rng().bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError):
        return False
    return True


def _hyperparameter_problem(hyper) -> str | None:
    """Why the stored settings cannot be shown (``info``) or read, by type only: the ranges are
    ``TrainConfig.from_dict``'s to judge when a run is resumed."""
    if not isinstance(hyper, dict):
        return "metadata 'hyperparameters' must be an object"
    specs = settings_of(TrainConfig)
    for key, value in hyper.items():
        kind = specs[key].kind if key in specs else None
        if value is None:
            continue
        if kind is tuple:
            ok = isinstance(value, list) and all(_is_count(n) for n in value)
        elif kind is int:
            ok = _is_number(value) and isinstance(value, int)
        elif kind is float:
            ok = _is_number(value)
        elif kind in (bool, str):
            # Checkpoints from before the augment language stored --augment as a shift in pixels
            # (TrainConfig turns it into shift=N); they must still load.
            ok = isinstance(value, kind) or (key == "augment" and _is_count(value))
        else:  # a setting this digitnet does not know: shown as text
            ok = _is_scalar(value) or (isinstance(value, list) and all(_is_scalar(v) for v in value))
        if not ok:
            return f"metadata setting {_short(key)} has the wrong type ({_short(value)})"
    return None


def _history_problem(history) -> str | None:
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        return "metadata 'history' must be a list of objects"
    for h in history:
        if not all(_is_number(h[k]) for k in _HISTORY_NUMBERS if k in h) \
                or not (h.get("validation_accuracy") is None or _is_number(h["validation_accuracy"])) \
                or not ("epoch" not in h or _is_count(h["epoch"])):
            return f"metadata 'history' holds an epoch with values of the wrong type ({_short(h)})"
    return None


def _check_metadata(metadata, where: str) -> None:
    """Every field a reader uses has the type it expects; one ``CheckpointError`` for the first that does not."""
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{where}: metadata must be a JSON object")
    problem = _json_problem(metadata)
    if problem:
        raise CheckpointError(f"{where}: {problem}")
    version = metadata.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version not in READABLE_VERSIONS:
        raise CheckpointError(f"{where}: unknown checkpoint format version {_short(version)} "
                              f"(this digitnet reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    sizes = metadata.get("sizes")
    if not isinstance(sizes, list) or len(sizes) < 2 or not all(_is_count(n) and n >= 1 for n in sizes):
        raise CheckpointError(f"{where}: metadata 'sizes' must be a list of at least two positive integers")
    if metadata.get("activation", ACTIVATION) != ACTIVATION:
        raise CheckpointError(f"{where}: unsupported activation {_short(metadata.get('activation'))}")
    cost = metadata.get("cost")
    if not isinstance(cost, str) or cost not in COSTS:  # a list or object is unhashable: type first
        raise CheckpointError(f"{where}: unknown cost {_short(cost)}")
    for key, (kind, check) in _FIELD_CHECKS.items():
        if key in metadata and not check(metadata[key]):
            raise CheckpointError(f"{where}: metadata {key!r} must be {kind}, got {_short(metadata[key])}")
    state = metadata.get("state", {})
    for key, (kind, check) in _STATE_CHECKS.items():
        if key in state and not check(state[key]):
            raise CheckpointError(f"{where}: metadata 'state.{key}' must be {kind}, got {_short(state[key])}")
    problem = _history_problem(metadata.get("history", []))
    if problem is None and "hyperparameters" in metadata:
        problem = _hyperparameter_problem(metadata["hyperparameters"])
    if problem:
        raise CheckpointError(f"{where}: {problem}")


def _read_metadata(npz: NpzReader, where: str) -> dict:
    if "metadata" not in npz.names:
        raise CheckpointError(f"{where}: not a digitnet checkpoint (no 'metadata' entry)")
    text = npz.text("metadata")
    try:
        metadata = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{where}: metadata nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError, and int() past 4300 digits
        raise CheckpointError(f"{where}: metadata is not valid JSON ({one_line(e)})") from None
    _check_metadata(metadata, where)
    return metadata


def _expected_members(npz: NpzReader, metadata: dict, where: str) -> None:
    """Only the checkpoint's members: arrays of the layers ``sizes`` implies (each set complete is checked
    in ``_network_from``).  Time is linear in the members, whatever ``sizes`` declares."""
    layers = len(metadata["sizes"]) - 1
    extra = sorted(name for name in npz.names - {"metadata"} if int(_MEMBERS.fullmatch(name).group(1)) >= layers)
    if extra:
        raise CheckpointError(f"{where}: not a digitnet checkpoint for sizes {_short(metadata['sizes'])} "
                              f"(unexpected array {extra[0]!r})")


def _network_from(npz: NpzReader, metadata: dict, prefix: str, where: str) -> Network:
    """The network of arrays ``prefix``w0, ``prefix``b0, ...: dtype and shape checked from the headers
    before any data is read, and every value finite after the cast to the model's dtype."""
    sizes = metadata["sizes"]
    dtype = metadata.get("dtype", "float32")
    dtype = np.dtype(dtype if dtype in ("float32", "float64") else "float32")
    weights, biases = [], []
    for l in range(len(sizes) - 1):
        for kind, shape, bucket in (("w", (sizes[l + 1], sizes[l]), weights), ("b", (sizes[l + 1],), biases)):
            key = f"{prefix}{kind}{l}"
            if key not in npz.names:
                raise CheckpointError(f"{where}: missing array {key!r}")
            member = npz.header(key)
            if member.dtype.kind != "f" or member.dtype.itemsize not in (2, 4, 8):
                raise CheckpointError(f"{where}: array {key!r} has dtype {member.dtype}, expected floats "
                                      "(float16, float32 or float64)")
            if member.shape != shape:
                raise CheckpointError(f"{where}: array {key!r} has shape {_short(member.shape)}, "
                                      f"expected {shape} for sizes {sizes}")
            with np.errstate(over="ignore"):  # an overflow to inf is refused just below, not warned about
                value = np.ascontiguousarray(npz.array(key), dtype=dtype)  # writable: read into our own buffer
            if not np.all(np.isfinite(value)):  # after the cast: 1e300 in float64 is inf as float32
                raise CheckpointError(f"{where}: array {key!r} holds NaN or infinite values (as {dtype})")
            bucket.append(value)
    return Network(sizes, weights, biases, cost=metadata["cost"], dtype=dtype)


def load(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint (or a textbook JSON network).

    Any problem is one ``CheckpointError`` naming the file: not a zip, a member
    that is not the checkpoint's or not a plain float/unicode ``.npy`` (pickled
    objects are refused unread), an unsupported zip feature, sizes or a
    decompression ratio past the bounds of ``npz.NpzReader``, metadata that is not
    strict UTF-32 JSON nesting at most ``MAX_JSON_DEPTH`` deep with every field
    of the type its readers expect, arrays of the wrong dtype or shape, values
    not finite in the model's dtype.  Bounds: memory about the arrays the
    header declares (each at most ``MAX_ARRAY_BYTES``, all of them together at
    most the file's size, or 64x it plus 8 MiB when deflated); time linear in
    that.
    """
    path = Path(path)
    where = str(path)
    if path.is_dir():
        raise CheckpointError(f"{where} is a folder, not a checkpoint file")
    if textbook_json.looks_like_json(path):
        return _load_textbook_json(path)
    try:
        with NpzReader(path, _MEMBERS) as npz:
            metadata = _read_metadata(npz, where)
            _expected_members(npz, metadata, where)
            network = _network_from(npz, metadata, "", where)
            kept = {name.split("_")[0] for name in npz.names if "_" in name}  # "best", "velocity"
            best = _network_from(npz, metadata, "best_", where) if "best" in kept else None
            velocities = None
            if "velocity" in kept:
                moving = _network_from(npz, metadata, "velocity_", where)
                velocities = (moving.weights, moving.biases)
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such file") from None
    except NpzError as e:
        raise CheckpointError(f"{where}: {e}") from None
    except PermissionError as e:
        raise CheckpointError(f"{where}: cannot read the file ({e.strerror or e})") from None
    except MemoryError:
        raise CheckpointError(f"{where}: out of memory while reading the checkpoint") from None
    except ZIP_ERRORS as e:
        raise CheckpointError(f"{where}: not a valid .npz checkpoint ({one_line(e)})") from None
    return Checkpoint(network, metadata, best, path, velocities)


def _load_textbook_json(path: Path) -> Checkpoint:
    """A textbook JSON network as a checkpoint without history or best-epoch weights."""
    try:
        network, metadata = textbook_json.load(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the file ({e.strerror or e})") from None
    except MemoryError:
        raise CheckpointError(f"{path}: out of memory while reading the JSON network") from None
    except textbook_json.TextbookJSONError as e:
        raise CheckpointError(f"{path}: not a usable JSON network: {e}") from None
    return Checkpoint(network, metadata, None, path)
