"""Fetching MNIST into the data folder: mirrors, verified downloads, and imports from a local folder.

A file is streamed from the first mirror that serves it with the expected SHA-256 into a
temporary file beside its final path, and moved into place only once verified, so the data
folder holds complete, checked files or nothing (``digitnet.data`` then reads them).
Problems are ``DataError``, one message for the user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from digitnet.atomic import WriteError, atomic_path, cause, check_folder_writable, folders_removed_on_failure
from digitnet.data import (DATA_DIR_ENV, FILES, OFFICIAL_SHA256, DataError, find_file, load_pair, missing_files,
                           resolve_data_dir)

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# Seconds to wait for a connection, and for the next bytes once connected (``--timeout``).
# A healthy mirror sends within a second; 15 s forgives a slow one without hanging on a dead one.
DEFAULT_TIMEOUT = 15.0
# A stall (no bytes for the timeout) is tried once more on the same mirror, not `retries` times:
# each costs a whole timeout, and a mirror that stalled twice is likely to stall again.
STALL_RETRIES = 1
CHUNK_BYTES = 1 << 16


# ---------------------------------------------------------------------------
# Checksums


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
    per file.  A 404 or a wrong checksum concerns one file and demotes nothing.
    The others keep the order the user gave (a mirror that served a good file
    stays where it was).
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


# ---------------------------------------------------------------------------
# Imports from a local folder


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


# ---------------------------------------------------------------------------
# The data folder, made for writing


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
