"""Fuzz harness: ``data.parse_idx`` refuses any file with DataError, in bounded time and memory.

The bytes are the file (raw or gzip: the parser tells them apart by the first two bytes), read as an
images file and as a labels file.  A file that parses must give uint8 of the shape its header declares,
with labels 0..9.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np

from digitnet.data import DataError, parse_idx

EXPECTED = (DataError,)
LIBFUZZER_ARGS = ["-max_len=16384"]
_PATH = Path(tempfile.mkdtemp(prefix="fuzz-idx-")) / "train-images-idx3-ubyte"


def one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    for kind, ndim in (("images", 3), ("labels", 1)):
        try:
            array = parse_idx(_PATH, kind)
        except DataError:
            continue
        if array.dtype != np.uint8 or array.ndim != ndim or 0 in array.shape:
            raise AssertionError(f"{kind}: parsed as {array.dtype} {array.shape}")
        if not data.startswith(b"\x1f\x8b") and array.shape != struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]):
            raise AssertionError(f"{kind}: shape {array.shape} is not the header's")
        if kind == "labels" and array.max() > 9:
            raise AssertionError(f"label {array.max()} was accepted")


if __name__ == "__main__":
    import sys

    from tests.fuzz.runner import main

    sys.exit(main(["idx", *sys.argv[1:]]))
