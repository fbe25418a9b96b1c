"""Atomic file writes: nothing a user already had is lost or left half-written.

And when a write cannot be done, one ``WriteError`` says which of the user's
files, why in plain words, and (for a full disk) how much room it needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

# The causes a user can act on, in words ("No space left on device" is fine, "[Errno 28]" is not).
_PLAIN = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "input/output error (a failing disk or a lost network drive?)",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EISDIR: "it is a folder",
    errno.EMFILE: "too many open files",
}
# Causes where the size needed helps the user decide what to free.
_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def human_size(n: float) -> str:
    """0.6 MB, 190 KB, 1.2 GB: decimal units, two significant figures or so."""
    if n < 1000:
        return f"{int(n)} bytes"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale * 0.95 or unit == "KB":
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} bytes"  # unreachable


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def cause(error: OSError, path: Path) -> str:
    """Why writing ``path`` failed, in words, naming the folder when the folder is the problem."""
    folder = path.parent
    if error.errno == errno.ENOENT:
        if folder.is_dir():  # /proc and the like: the folder exists but takes no new files
            return f"folder {folder} does not accept new files"
        return f"folder {folder} does not exist"
    if error.errno == errno.EEXIST and path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    if error.errno == errno.ENOTDIR:
        return f"{_first_non_folder(folder)} is not a folder"
    plain = _PLAIN.get(error.errno)
    if plain:
        return plain
    return (error.strerror or str(error)).lower() or type(error).__name__


def _first_non_folder(folder: Path) -> Path:
    """The ancestor that is a file where a folder was expected (``a/file/b`` -> ``a/file``)."""
    for candidate in reversed([folder, *folder.parents]):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return folder


class WriteError(OSError):
    """A file the user asked for could not be written.

    The message names the user's path (never the temporary file), the cause in
    plain words and, when the disk is full, about how much space the file needs.
    An OSError still, with the original errno, for callers that catch those.
    """

    def __init__(self, path: str | os.PathLike, error: OSError, expected_bytes: int | None = None,
                 what: str = "write", reason: str | None = None):
        self.path = Path(path)
        self.expected_bytes = expected_bytes
        self.reason = reason or cause(error, self.path)
        self.what = what
        super().__init__(error.errno, self.reason)
        self.filename = str(self.path)
        self.describe()

    def describe(self) -> str:
        """(Re)write the message; the free space is measured now (after a temporary file is gone)."""
        self.message = f"cannot {self.what} {self.path}: {self.reason}"
        if self.errno in _SPACE and self.expected_bytes:
            free = _free_bytes(self.path.parent)
            room = f", {human_size(free)} free" if free is not None else ""
            self.message += f" (needs about {human_size(self.expected_bytes)}{room})"
        return self.message

    def __str__(self) -> str:
        return self.message


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _about_the_write(error: OSError, tmp: str) -> bool:
    """Whether an OSError inside the block is the write's own (not, say, reading a source file)."""
    return error.filename in (None, tmp) or error.errno in _SPACE


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, expected_bytes: int | None = None):
    """Yield a temporary path beside ``final``; move it into place only if the block succeeds.

    The final path therefore never holds a partial file, whatever happens (an
    exception, Ctrl-C, SIGTERM); the temporary file is removed on failure.  The
    new file gets the usual permissions (0666 less the umask), not mkstemp's
    0600.  A failure to write (creating the temporary file, writing it inside the
    block, moving it into place) is raised as ``WriteError`` naming ``final``;
    ``expected_bytes`` is the size quoted when the disk is full.
    """
    final = Path(final)
    tmp = _new_file_beside(final, ".part", expected_bytes)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, WriteError):
            e.describe()  # the free space without the temporary file
        elif isinstance(e, OSError) and _about_the_write(e, tmp):
            raise WriteError(final, e, expected_bytes) from None
        raise


def _new_file_beside(path: Path, suffix: str, expected_bytes: int | None) -> str:
    """Create an empty hidden file ``.NAME.XXXX<suffix>`` beside ``path``; ``WriteError`` naming
    ``path`` (not the hidden name) when its folder refuses."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        raise WriteError(path, e, expected_bytes) from None
    os.close(fd)
    return name


def check_writable(path: str | os.PathLike, expected_bytes: int | None = None) -> Path:
    """Fail now, not after an hour of work, if ``path`` could not be written.

    Its folder must exist and accept a new file: a probe file is created there
    and removed (asking ``os.access`` is not enough: it says yes to root
    everywhere, and to /proc, where no file can be created).  With
    ``expected_bytes``, the disk must also have that much room.
    """
    path = Path(path)
    os.unlink(_new_file_beside(path, ".probe", expected_bytes))
    if expected_bytes:
        free = _free_bytes(path.parent)
        if free is not None and free < expected_bytes:
            raise WriteError(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), expected_bytes)
    return path


def check_folder_writable(folder: str | os.PathLike) -> Path:
    """Like ``check_writable`` for a folder that will receive files; a folder that does not
    exist yet is fine if its nearest existing parent accepts new entries (it will be created)."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    what = "write into" if existing == folder else "create"
    if existing.exists() and not existing.is_dir():
        raise WriteError(folder, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)), what=what,
                         reason=f"{existing} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".digitnet-", suffix=".probe", dir=existing)
    except OSError as e:
        raise WriteError(folder, e, what=what, reason=cause(e, existing / "probe")) from None
    os.close(fd)
    os.unlink(probe)
    return folder


@contextlib.contextmanager
def folders_removed_on_failure(folder: str | os.PathLike):
    """Remove the folders the block creates (``folder`` and missing parents) if the block fails,
    so a mistyped --data-dir or --out is not left behind.  Only empty folders go: rmdir
    refuses one that holds anything, so nothing written there is lost."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield folder
    except BaseException:
        for made in created:  # deepest first
            try:
                made.rmdir()
            except OSError:
                break
        raise
