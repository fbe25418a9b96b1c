"""The error every step of digitnet.images raises: a picture that cannot be turned into a digit."""

from __future__ import annotations

import os


class ImageError(Exception):
    """A picture that cannot be turned into a digit (unreadable, too big, blank, ...).

    ``reason`` is the one-line explanation and ``path`` the file, when known;
    ``str(error)`` is "path: reason".
    """

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(reason if path is None else f"{path}: {reason}")
