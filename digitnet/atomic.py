"""Atomic file writes: nothing a user already had is lost or left half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike):
    """Yield a temporary path beside ``final``; move it into place only if the block succeeds.

    The final path therefore never holds a partial file, whatever happens (an
    exception, Ctrl-C); the temporary file is removed on failure.  The new
    file gets the usual permissions (0666 less the umask), not mkstemp's 0600.
    """
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
