"""MNIST on disk: mirrors and a verified download cache, the IDX parser, and the splits.

Data flows one way: mirror -> verified .gz in the data directory -> IDX arrays
(uint8, as stored) -> ``MNIST`` splits.  Pixels are turned into float32 only a
chunk at a time by the training loop, so the whole dataset is never copied to
floating point.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitnet.atomic import WriteError, atomic_path, cause, check_folder_writable, folders_removed_on_failure

DEFAULT_DATA_DIR = "data"
DATA_DIR_ENV = "DIGITNET_DATA_DIR"

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

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

DEFAULT_VALIDATION_SIZE = 10000
# Seconds to wait for a connection, and for the next bytes once connected (``--timeout``).
# A healthy mirror sends within a second; 15 s forgives a slow one without hanging on a dead one.
DEFAULT_TIMEOUT = 15.0
# A stall (no bytes for the timeout) is tried once more on the same mirror, not `retries` times:
# each costs a whole timeout, and a mirror that stalled twice is likely to stall again.
STALL_RETRIES = 1
CHUNK_BYTES = 1 << 16


class DataError(Exception):
    """A problem with data files or their download, explained in one message for the user."""


# ---------------------------------------------------------------------------
# Data directory and atomic files


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checksums(path: str | os.PathLike) -> dict[str, str]:
    """Parse a sha256sum-format file (``<hex>  <name>`` per line) into {name: hex}."""
    checksums = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"checksums file {path} is not text (expected sha256sum's format: "
                        "<hex>  <name> per line)") from None
    except OSError as e:
        raise DataError(f"cannot read checksums file {path}: {e.strerror or e}") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        digest = parts[0].lower()
        if len(parts) != 2 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise DataError(f"{path}, line {number}: expected '<sha256 hex>  <file name>', got {line!r}")
        checksums[Path(parts[1].strip().lstrip("*")).name] = digest
    return checksums


# ---------------------------------------------------------------------------
# IDX parsing


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def parse_idx(path: str | os.PathLike, kind: str) -> np.ndarray:
    """Read an IDX file (.gz or raw) of ``kind`` 'images' (n, rows, cols) or 'labels' (n,), as uint8.

    The header is big-endian: a magic number (0x00000803 for images,
    0x00000801 for labels) then one 32-bit size per dimension.
    """
    path = Path(path)
    expected_magic, ndim = {"images": (IMAGES_MAGIC, 3), "labels": (LABELS_MAGIC, 1)}[kind]
    raw = _read_bytes(path)
    header_len = 4 + 4 * ndim
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        raise DataError(f"{path}: not an IDX {kind} file (magic number 0x{magic:08x}, "
                        f"expected 0x{expected_magic:08x})")
    if len(raw) < header_len:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected = int(np.prod(shape, dtype=np.int64))
    found = len(raw) - header_len
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise DataError(f"{path}: {problem}: header says {' x '.join(map(str, shape))} = {expected} "
                        f"bytes of data, file has {found}")
    array = np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)
    if kind == "labels" and array.size and array.max() > 9:
        raise DataError(f"{path}: label {int(array.max())} is outside 0..9")
    return array


# ---------------------------------------------------------------------------
# Dataset and splits


@dataclass
class Split:
    """Images as stored (uint8, one row of 784 pixels per image) and their labels."""

    name: str
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def float_images(self, dtype=np.float32) -> np.ndarray:
        """Pixels in [0, 1] as ``dtype`` (a copy: use on a split or a chunk, not repeatedly)."""
        return to_float(self.images, dtype)


def to_float(images: np.ndarray, dtype=np.float32, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 pixels 0..255 -> floats in [0, 1]."""
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


# ---------------------------------------------------------------------------
# Download


@dataclass
class FileReport:
    """What happened to one file: 'present', 'downloaded' or 'imported', and from where."""

    name: str
    action: str
    source: str = ""
    official: bool | None = None
    failures: list = field(default_factory=list)  # mirrors that failed before ``source`` served it


def _describe(error: BaseException) -> str:
    import requests

    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return "read timed out"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(error, requests.exceptions.ConnectionError):
        # A read timeout in the middle of the body reaches us as a ConnectionError wrapping it.
        return "read timed out" if "timed out" in str(error).lower() else "connection failed"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection broke off mid-file"
    import urllib3  # the body is read through urllib3 directly (see _fetch)

    if isinstance(error, urllib3.exceptions.ReadTimeoutError):
        return "read timed out"
    if isinstance(error, urllib3.exceptions.ProtocolError):
        return "connection broke off mid-file"
    return str(error) or type(error).__name__


class _Retryable(Exception):
    """A failure worth trying the same mirror again for (connection trouble, 5xx, short body).

    ``timed_out``: the mirror sent nothing for the whole timeout (a stall), which is
    retried at most ``STALL_RETRIES`` times.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.timed_out = "timed out" in reason


class _Fatal(Exception):
    """A failure that moves on to the next mirror at once (404, checksum mismatch)."""


def _blocks(response):
    """The body's bytes as sent, never decoded (a mirror that labels the .gz "Content-Encoding:
    gzip" must not have it decompressed on the way: the checksum is of the .gz), with the
    network's failures as ``_Retryable``."""
    import requests
    import urllib3

    stream = response.raw.stream(CHUNK_BYTES, decode_content=False)
    while True:
        try:
            block = next(stream, None)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            raise _Retryable(_describe(e)) from None
        if block is None:
            return
        yield block


def _fetch(session, url: str, tmp: Path, name: str, expected_sha: str, progress: bool, timeout,
           final: Path | None = None) -> None:
    import requests
    from tqdm import tqdm

    try:
        response = session.get(url, stream=True, timeout=timeout)
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise _Retryable(_describe(e)) from None
    except requests.exceptions.RequestException as e:
        raise _Fatal(_describe(e)) from None
    with response:
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise _Fatal(f"HTTP {response.status_code}")
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        digest = hashlib.sha256()
        received = 0
        try:
            with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                             desc=name, disable=None if progress else True, leave=False) as bar:
                for block in _blocks(response):
                    f.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
        except OSError as e:  # the network's errors are _Retryable by now: this is the disk
            raise WriteError(final or tmp, e, expected_bytes=total or received) from None
        if total is not None and received < total:
            raise _Retryable(f"truncated body ({received} of {total} bytes)")
    actual = digest.hexdigest()
    if actual != expected_sha:
        raise _Fatal(f"checksum mismatch (got sha256 {actual[:12]}..., expected {expected_sha[:12]}...)")


class MirrorOrder:
    """The order mirrors are tried in, over one download of several files.

    A mirror that timed out, refused the connection or stalled for one file (or
    kept failing with a broken connection or a 5xx) is tried last for the
    remaining files, so a dead mirror costs its timeouts once per run, not once
    per file.  A 404 or a wrong checksum concerns one file and demotes nothing.  The others keep the order the user gave (a
    mirror that served a good file stays where it was).
    """

    def __init__(self, mirrors):
        self._order = list(mirrors)

    def __iter__(self):
        return iter(list(self._order))  # a snapshot: demoting during a file does not skip anyone

    def __len__(self):
        return len(self._order)

    def demote(self, mirror: str) -> None:
        self._order.remove(mirror)
        self._order.append(mirror)


def download_file(name: str, data_dir: Path, mirrors, checksums: dict[str, str], *,
                  session=None, retries: int = 2, backoff: float = 0.5, progress: bool = True,
                  timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, failures: list | None = None) -> str:
    """Fetch ``name`` from the first mirror that gives a file with the expected SHA-256.

    Returns the URL it came from.  The file is streamed into a temporary file
    beside its final path and moved into place only once verified.  Connection
    trouble and 5xx are retried ``retries`` times on the same mirror, a stall
    (nothing for ``timeout`` seconds) at most ``STALL_RETRIES`` times, a 404 or a
    wrong checksum not at all.  ``mirrors`` may be a ``MirrorOrder`` shared by
    the files of one download: a mirror that fails this way is demoted in it.
    What went wrong on the way is appended to ``failures`` when given.
    """
    import requests

    if name not in checksums:
        raise DataError(f"no checksum known for {name}: add it to the checksums file")
    session = session or requests.Session()
    order = mirrors if isinstance(mirrors, MirrorOrder) else MirrorOrder(mirrors)
    failures = [] if failures is None else failures
    start = len(failures)
    for mirror in order:
        url = mirror.rstrip("/") + "/" + name
        attempt = stalls = 0
        while True:
            attempt += 1
            try:
                with atomic_path(data_dir / name) as tmp:
                    _fetch(session, url, tmp, name, checksums[name], progress, timeout, data_dir / name)
                return url
            except _Retryable as e:
                stalls += e.timed_out
                if attempt <= retries and stalls <= STALL_RETRIES:
                    time.sleep(backoff * 2 ** (attempt - 1))
                    continue
                failures.append(f"{url}: {e}" + (f" (after {attempt} attempts)" if attempt > 1 else ""))
                order.demote(mirror)
                break
            except _Fatal as e:
                failures.append(f"{url}: {e}")
                break
    failures = failures[start:]
    listing = "\n".join(f"  - {line}" for line in failures) or "  (no mirrors given)"
    raise DataError(
        f"could not download {name} from any mirror:\n{listing}\n"
        f"To work offline, copy the four MNIST .gz files into {data_dir} (or point --data-dir / "
        f"${DATA_DIR_ENV} at a folder that has them), or import them with "
        f"`digitnet download --from FOLDER`."
    )


def download(data_dir: str | os.PathLike | None = None, mirrors=DEFAULT_MIRRORS,
             checksums: dict[str, str] | None = None, force: bool = False,
             progress: bool = True, names: tuple[str, ...] = FILES, **kwargs) -> list[FileReport]:
    """Make sure the MNIST files ``names`` (all four by default) are in the data directory,
    downloading what is missing.  A data directory this call creates is removed again if it fails.

    The folder is checked before the first request (it must accept new files),
    and the mirrors keep one ``MirrorOrder`` over the files.
    """
    with _data_dir_for_writing(resolve_data_dir(data_dir)) as data_dir:
        checksums = OFFICIAL_SHA256 if checksums is None else checksums
        wanted = list(names) if force else missing_files(data_dir, names)
        if wanted:
            check_folder_writable(data_dir)
        order = MirrorOrder(mirrors)
        reports = []
        for name in names:
            if name not in wanted:
                reports.append(FileReport(name, "present", str(find_file(data_dir, name))))
                continue
            failures: list[str] = []
            url = download_file(name, data_dir, order, checksums, progress=progress, failures=failures, **kwargs)
            reports.append(FileReport(name, "downloaded", url, official=checksums is OFFICIAL_SHA256,
                                      failures=failures))
        return reports


def ensure_data(data_dir: str | os.PathLike | None = None, names: tuple[str, ...] = FILES,
                **kwargs) -> list[FileReport]:
    """Download whichever of ``names`` is missing (what ``train`` and ``evaluate`` do before loading)."""
    directory = resolve_data_dir(data_dir)
    if not missing_files(directory, names):
        return []
    return [r for r in download(directory, names=names, **kwargs) if r.action != "present"]


def import_files(source: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                 checksums: dict[str, str] | None = None, force: bool = False) -> list[FileReport]:
    """Copy the four files from a local folder after checking their IDX structure.

    A file that differs from the official checksum is still imported when it
    is a valid IDX file (the report says so): a re-compressed or rebuilt copy
    of MNIST is still MNIST for training.
    """
    source = Path(source)
    if not source.is_dir():
        raise DataError(f"--from {source}: not a folder")
    with _data_dir_for_writing(resolve_data_dir(data_dir)) as data_dir:
        return _import_files(source, data_dir, checksums, force)


def _import_files(source: Path, data_dir: Path, checksums, force: bool) -> list[FileReport]:
    checksums = OFFICIAL_SHA256 if checksums is None else checksums
    found = {}
    for name in FILES:
        path = find_file(source, name)
        if path is None:
            raise DataError(f"{name} (or its decompressed form) is not in {source}")
        found[name] = path
    # Check the structure of all four, and that no differing file would be replaced, before
    # copying any, so a refused import changes nothing (no mix of old and new files).
    for prefix in ("train", "t10k"):
        load_pair(source, prefix)
    present = set()
    for name, path in found.items():
        existing = find_file(data_dir, name)  # the file load_mnist would read, .gz or decompressed
        if existing is None or force:
            continue
        if existing.name == path.name and (existing.resolve() == path.resolve()
                                           or existing.read_bytes() == path.read_bytes()):
            present.add(name)
            continue
        raise DataError(f"{existing} already exists and differs from {path}; use --force to replace it")
    if len(present) < len(found):
        check_folder_writable(data_dir)
    reports = []
    for name, path in found.items():
        official = sha256_file(path) == checksums.get(path.name) if path.name == name else None
        target = data_dir / path.name
        if name in present:
            reports.append(FileReport(name, "present", str(target), official))
            continue
        if target.resolve() != path.resolve():
            with atomic_path(target) as tmp:
                shutil.copyfile(path, tmp)
            # The other form (.gz or decompressed) of an old file would shadow or confuse the new one.
            for other in (data_dir / name, data_dir / name.removesuffix(".gz")):
                if other != target and other.is_file() and other.resolve() != path.resolve():
                    other.unlink()
        reports.append(FileReport(name, "imported", str(path), official))
    return reports


@contextlib.contextmanager
def _data_dir_for_writing(path: Path):
    """Create the data directory (and missing parents) for a command about to write into it; if
    the command then fails, remove the folders it created, so a mistyped --data-dir is not left behind."""
    with folders_removed_on_failure(path):
        _make_dir(path)
        yield path


def _make_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create data directory {path}: {cause(e, path)}") from None
    if not path.is_dir():
        raise DataError(f"data directory {path} is not a folder")
    return path
