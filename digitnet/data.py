"""MNIST on disk: the data folder, the IDX parser, and the training, validation and test splits.

Data flows one way: the .gz (or decompressed) files in the data directory -> IDX
arrays (uint8, as stored) -> ``MNIST`` splits.  Pixels are turned into float32 only
a chunk at a time by the training loop, so the whole dataset is never copied to
floating point.  Fetching and importing the files is ``digitnet.download``'s job.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitnet.config import DEFAULT_VALIDATION_SIZE

DEFAULT_DATA_DIR = "data"
DATA_DIR_ENV = "DIGITNET_DATA_DIR"

# SHA-256 of the official compressed files.
OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FILES = tuple(OFFICIAL_SHA256)

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions: count, rows, cols
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension: count


class DataError(Exception):
    """A problem with data files or their download, explained in one message for the user."""


# ---------------------------------------------------------------------------
# Data directory


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``--data-dir``, else $DIGITNET_DATA_DIR, else ``data/`` under the current directory."""
    if data_dir:
        return Path(data_dir)
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def find_file(data_dir: Path, name: str) -> Path | None:
    """The file for ``name`` (a .gz name) in data_dir, compressed or already decompressed."""
    for candidate in (data_dir / name, data_dir / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def missing_files(data_dir: Path, names: tuple[str, ...] = FILES) -> list[str]:
    """Which of ``names`` the data folder holds in neither form (.gz or decompressed)."""
    return [name for name in names if find_file(data_dir, name) is None]


# ---------------------------------------------------------------------------
# IDX parsing

MAX_IDX_BYTES = 1 << 31          # one file's pixels or labels: MNIST's largest is 47 MB, EMNIST's 0.6 GB
GZIP_CHECK_FROM = 16 << 20       # below this a .gz may declare any size (sorted labels compress ~1000x) ...
MAX_GZIP_RATIO = 100             # ... above it at most 100x its compressed size (MNIST is 5x): no gzip bombs
_READ_CHUNK = 1 << 18            # readinto pieces: GzipFile.readinto copies through bytes objects this large


def _idx_stream(path: Path):
    """The stream to read, the file under it, and whether it is gzip (by its first two bytes, as
    ``gzip`` itself checks)."""
    f = open(path, "rb")
    try:
        compressed = f.read(2) == b"\x1f\x8b"
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return (gzip.GzipFile(fileobj=f, mode="rb") if compressed else f), f, compressed


def _read_exactly(f, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream (GzipFile.read(n) may return fewer early)."""
    parts, left = [], n
    while left:
        part = f.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _idx_header(path: Path, f, kind: str) -> tuple[int, ...]:
    """The shape the header declares, checked: the right magic, no zero dimension, a size within bounds."""
    expected_magic, ndim = {"images": (IMAGES_MAGIC, 3), "labels": (LABELS_MAGIC, 1)}[kind]
    head = _read_exactly(f, 4)
    if len(head) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(head)} bytes)")
    (magic,) = struct.unpack(">I", head)
    if magic != expected_magic:
        raise DataError(f"{path}: not an IDX {kind} file (magic number 0x{magic:08x}, "
                        f"expected 0x{expected_magic:08x})")
    sizes = _read_exactly(f, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({4 + len(sizes)} of {4 + 4 * ndim} bytes)")
    shape = struct.unpack(f">{ndim}I", sizes)
    declared = " x ".join(map(str, shape))
    if 0 in shape:
        raise DataError(f"{path}: the IDX header declares {declared}: a dimension of 0 holds no {kind}")
    nbytes = math.prod(shape)  # Python ints: 2^32 cubed does not wrap as np.prod's int64 did
    if nbytes > MAX_IDX_BYTES:
        raise DataError(f"{path}: the IDX header declares {declared} = {nbytes:,} bytes, "
                        f"more than the {MAX_IDX_BYTES:,} this reader accepts")
    return shape


def _check_declared_size(path: Path, raw, compressed: bool, shape: tuple[int, ...]) -> None:
    """Refuse before allocating: a raw file's size must be the header's; a .gz may not claim a bomb's ratio."""
    nbytes, declared = math.prod(shape), " x ".join(map(str, shape))
    on_disk = os.fstat(raw.fileno()).st_size
    if not compressed:
        found = on_disk - 4 - 4 * len(shape)
        if found != nbytes:
            problem = "truncated" if found < nbytes else "has trailing bytes"
            raise DataError(f"{path}: {problem}: header says {declared} = {nbytes} bytes of data, file has {found}")
    elif nbytes > GZIP_CHECK_FROM and nbytes > MAX_GZIP_RATIO * on_disk:
        raise DataError(f"{path}: the IDX header declares {declared} = {nbytes:,} bytes, more than "
                        f"{MAX_GZIP_RATIO}x the {on_disk:,}-byte gzip file: refused unread (a gzip bomb?)")


def _read_idx(path: Path, kind: str) -> np.ndarray:
    f, raw, compressed = _idx_stream(path)
    with raw, f:
        shape = _idx_header(path, f, kind)
        _check_declared_size(path, raw, compressed, shape)
        data = np.empty(math.prod(shape), np.uint8)
        view, filled = memoryview(data), 0
        while filled < len(data):
            n = f.readinto(view[filled:filled + _READ_CHUNK])
            if not n:
                break
            filled += n
        declared = f"header says {' x '.join(map(str, shape))} = {len(data)} bytes of data"
        if filled < len(data):
            raise DataError(f"{path}: truncated: {declared}, file has {filled}")
        # One byte more: the end of a .gz (its CRC and length are checked there) or trailing data.
        if f.read(1):
            raise DataError(f"{path}: has trailing bytes: {declared}, the file holds more")
    return data.reshape(shape)


def parse_idx(path: str | os.PathLike, kind: str) -> np.ndarray:
    """Read an IDX file (.gz or raw) of ``kind`` 'images' (n, rows, cols) or 'labels' (n,), as uint8.

    The header is big-endian: a magic number (0x00000803 for images,
    0x00000801 for labels) then one 32-bit size per dimension.

    Every problem is one ``DataError`` naming the file: a wrong magic number,
    a dimension of 0, a declared size over ``MAX_IDX_BYTES`` (2 GiB), a raw
    file whose length is not the header's, a .gz declaring more than 100x its
    own size (above 16 MiB), truncated or trailing data, corrupt gzip, a label
    above 9.  Bounds: the header (at most 16 bytes) is read and checked before
    anything is allocated or decompressed; then exactly the declared size is
    allocated once and at most one byte more is decompressed, so memory is the
    array itself and time is linear in it.
    """
    path = Path(path)
    try:
        array = _read_idx(path, kind)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if kind == "labels" and array.size and array.max() > 9:
        raise DataError(f"{path}: label {int(array.max())} is outside 0..9")
    return array


# ---------------------------------------------------------------------------
# Dataset and splits


@dataclass
class Split:
    """Images as stored (uint8, one row of 784 pixels per image) and their labels (for other data:
    rows of features, uint8 pixels or numbers, and labels 0..k-1)."""

    name: str
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def float_images(self, dtype=np.float32) -> np.ndarray:
        """Pixels in [0, 1] as ``dtype`` (a copy: use on a split or a chunk, not repeatedly)."""
        return to_float(self.images, dtype)


def to_float(images: np.ndarray, dtype=np.float32, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 pixels 0..255 -> floats in [0, 1]; rows of other numbers (features a caller has
    scaled already, as the scikit-learn estimator passes them) are only cast to ``dtype``."""
    if images.dtype != np.uint8:
        if out is None:
            return np.array(images, dtype=dtype)
        np.copyto(out, images, casting="unsafe")
        return out
    return np.multiply(images, np.asarray(1 / 255, dtype=dtype), out=out, dtype=dtype, casting="unsafe")


@dataclass
class MNIST:
    training: Split
    validation: Split
    test: Split

    def split(self, name: str) -> Split:
        return {"training": self.training, "validation": self.validation, "test": self.test}[name]

    def with_validation_size(self, validation_size: int) -> "MNIST":
        """The same images with the last ``validation_size`` of the training file held out
        (views, no copy, when this one holds none out)."""
        if len(self.validation):
            images = np.concatenate([self.training.images, self.validation.images])
            labels = np.concatenate([self.training.labels, self.validation.labels])
        else:
            images, labels = self.training.images, self.training.labels
        if not 0 <= validation_size < len(images):
            raise DataError(f"validation size {validation_size} must be between 0 and "
                            f"{len(images) - 1} (the training file has {len(images)} images)")
        cut = len(images) - validation_size
        return MNIST(Split("training", images[:cut], labels[:cut]),
                     Split("validation", images[cut:], labels[cut:]), self.test)


def load_pair(data_dir: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 784) and labels (n,) for 'train' or 't10k', checked against each other."""
    paths = {}
    for kind in ("images", "labels"):
        name = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
        path = find_file(data_dir, name)
        if path is None:
            raise DataError(f"{name} is missing from {data_dir}; run `digitnet download`")
        paths[kind] = path
    images = parse_idx(paths["images"], "images")
    labels = parse_idx(paths["labels"], "labels")
    if images.shape[1:] != (28, 28):
        raise DataError(f"{paths['images']}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise DataError(f"{paths['images']} has {len(images)} images but {paths['labels']} "
                        f"has {len(labels)} labels")
    return images.reshape(len(images), 28 * 28), labels


def load_mnist(data_dir: str | os.PathLike | None = None,
               validation_size: int = DEFAULT_VALIDATION_SIZE, parts: tuple[str, ...] = ("train", "t10k")) -> MNIST:
    """The textbook's splits: training = the first n - validation_size training images,
    validation = the last validation_size, test = the 10,000 test images.

    ``parts`` names the file pairs to read: ``("t10k",)`` reads only the test
    files (the training and validation splits are then empty), which is all
    evaluating on the test split needs.
    """
    data_dir = resolve_data_dir(data_dir)
    empty = (np.empty((0, 28 * 28), np.uint8), np.empty(0, np.uint8))
    train_images, train_labels = load_pair(data_dir, "train") if "train" in parts else empty
    test_images, test_labels = load_pair(data_dir, "t10k") if "t10k" in parts else empty
    whole = MNIST(training=Split("training", train_images, train_labels), validation=Split("validation", *empty),
                  test=Split("test", test_images, test_labels))
    return whole.with_validation_size(validation_size) if "train" in parts else whole


def part_files(parts: tuple[str, ...]) -> tuple[str, ...]:
    """The .gz names of the file pairs ``parts`` (``"train"``, ``"t10k"``)."""
    return tuple(name for name in FILES if name.split("-")[0] in parts)
