"""Fuzz harness: ``images.load_image`` (and the server's path, ``open_image`` of the bytes then
``preprocess_with_verdict``) refuse any file with ImageError, in bounded time and memory.

The bytes are the file, written to one path reused for every input (``load_image`` reads a path,
as ``digitnet predict`` does).  A picture that loads must give 784 finite inputs in [0, 1]; then the
same bytes go through the server's path, which must give the same 28x28 input and a verdict.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np

from digitnet.images import ImageError, Verdict, load_image, open_image, preprocess_with_verdict

EXPECTED = (ImageError,)
LIBFUZZER_ARGS = ["-max_len=65536"]
_PATH = Path(tempfile.mkdtemp(prefix="fuzz-image-")) / "picture"


def one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    inputs = load_image(_PATH)
    if inputs.shape != (784,) or inputs.dtype != np.float32 or not np.all((inputs >= 0) & (inputs <= 1)):
        raise AssertionError(f"load_image gave {inputs.dtype} {inputs.shape}, range {inputs.min()}..{inputs.max()}")
    seen, notes, verdict = preprocess_with_verdict(open_image(io.BytesIO(data)))
    if not np.array_equal(seen.reshape(-1), inputs) or not isinstance(verdict, Verdict):
        raise AssertionError("the server's path and load_image disagree")


if __name__ == "__main__":
    import sys

    from tests.fuzz.runner import main

    sys.exit(main(["image", *sys.argv[1:]]))
