"""Checkpoints: one ``.npz`` of plain arrays plus a JSON metadata entry.

Layout (all keys are plain numeric arrays or a unicode string, so
``numpy.load(path, allow_pickle=False)`` reads it and loading never runs code):

    w0, b0, w1, b1, ...          weights (n_out, n_in) and biases (n_out,) of the last epoch
    best_w0, best_b0, ...        (optional) the weights of the best validation epoch
    velocity_w0, velocity_b0, ...  (optional, version 2) momentum velocities of the last epoch
    metadata                     JSON text: format version, sizes, cost, hyperparameters,
                                 history, RNG state, library versions, ...

Writes are atomic: a temporary file beside the target, fsync, ``os.replace``.

``load`` also reads the textbook's JSON network files (``network2.py``'s
``save()``; see ``textbook_json``): a checkpoint with the network and a
metadata dict whose ``format``/``source`` say where it came from.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitnet import textbook_json
from digitnet.atomic import atomic_path
from digitnet.network import COSTS, Network

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


def _network_from(arrays, metadata: dict, prefix: str, where: str) -> Network:
    sizes = metadata["sizes"]
    weights, biases = [], []
    for l in range(len(sizes) - 1):
        for kind, shape, bucket in (("w", (sizes[l + 1], sizes[l]), weights), ("b", (sizes[l + 1],), biases)):
            key = f"{prefix}{kind}{l}"
            if key not in arrays:
                raise CheckpointError(f"{where}: missing array {key!r}")
            value = arrays[key]
            if value.dtype.kind != "f":
                raise CheckpointError(f"{where}: array {key!r} has dtype {value.dtype}, expected floats")
            if value.shape != shape:
                raise CheckpointError(f"{where}: array {key!r} has shape {value.shape}, "
                                      f"expected {shape} for sizes {sizes}")
            if not np.all(np.isfinite(value)):
                raise CheckpointError(f"{where}: array {key!r} holds NaN or infinite values")
            bucket.append(value)
    dtype = metadata.get("dtype", "float32")
    return Network(sizes, weights, biases, cost=metadata["cost"],
                   dtype=dtype if dtype in ("float32", "float64") else "float32")


def _starts_with(path: Path, prefix: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(prefix)) == prefix
    except OSError:
        return False


def load(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint (or a textbook JSON network); any problem is one
    ``CheckpointError`` naming the file."""
    path = Path(path)
    where = str(path)
    if path.is_dir():
        raise CheckpointError(f"{where} is a folder, not a checkpoint file")
    if textbook_json.looks_like_json(path):
        return _load_textbook_json(path)
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a bare .npy array has no context manager
            raise CheckpointError(f"{where}: not a digitnet checkpoint (a bare .npy array, not an .npz)")
        with npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such file") from None
    except CheckpointError:
        raise
    except ValueError as e:
        # numpy says "pickled" for any file that is neither .npy nor .npz: only a real pickle
        # (protocol 2+ starts with 0x80) or an object array inside the .npz is one.
        if "Object arrays" in str(e) or ("pickle" in str(e) and _starts_with(path, b"\x80")):
            raise CheckpointError(f"{where}: contains pickled Python objects, which are refused "
                                  "(loading them could run code)") from None
        if "pickle" in str(e):
            raise CheckpointError(f"{where}: not a valid .npz checkpoint (unrecognised file format)") from None
        raise CheckpointError(f"{where}: not a valid .npz checkpoint ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise CheckpointError(f"{where}: not a valid .npz checkpoint ({e})") from None

    if "metadata" not in arrays:
        raise CheckpointError(f"{where}: not a digitnet checkpoint (no 'metadata' entry)")
    meta_array = arrays.pop("metadata")
    if meta_array.dtype.kind != "U" or meta_array.shape != ():
        raise CheckpointError(f"{where}: 'metadata' must be a JSON string")
    try:
        metadata = json.loads(str(meta_array[()]))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{where}: metadata is not valid JSON ({e})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{where}: metadata must be a JSON object")
    version = metadata.get("format_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise CheckpointError(f"{where}: unknown checkpoint format version {version!r} "
                              f"(this digitnet reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    sizes = metadata.get("sizes")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes)):
        raise CheckpointError(f"{where}: metadata 'sizes' must be a list of at least two positive integers")
    if metadata.get("activation", ACTIVATION) != ACTIVATION:
        raise CheckpointError(f"{where}: unsupported activation {metadata.get('activation')!r}")
    if metadata.get("cost") not in COSTS:
        raise CheckpointError(f"{where}: unknown cost {metadata.get('cost')!r}")
    history = metadata.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise CheckpointError(f"{where}: metadata 'history' must be a list of objects")

    network = _network_from(arrays, metadata, "", where)
    best = _network_from(arrays, metadata, "best_", where) if "best_w0" in arrays else None
    velocities = None
    if "velocity_w0" in arrays:
        moving = _network_from(arrays, metadata, "velocity_", where)
        velocities = (moving.weights, moving.biases)
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
