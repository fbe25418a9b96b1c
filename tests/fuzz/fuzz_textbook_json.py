"""Fuzz harness: ``textbook_json.load`` refuses any file with TextbookJSONError, in bounded time and memory.

The bytes are the file.  Besides exceptions, a file that loads must give a network whose every weight and
bias is finite in its dtype (the 1e300-as-float32-inf case), with the shapes its sizes declare.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from digitnet import textbook_json
from digitnet.textbook_json import TextbookJSONError

EXPECTED = (TextbookJSONError,)
LIBFUZZER_ARGS = ["-max_len=8192", f"-dict={Path(__file__).with_name('json.dict')}"]
_PATH = Path(tempfile.mkdtemp(prefix="fuzz-textbook-json-")) / "network.json"


def one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    network, metadata = textbook_json.load(_PATH)
    for l, (w, b) in enumerate(zip(network.weights, network.biases)):
        if w.shape != (network.sizes[l + 1], network.sizes[l]) or b.shape != (network.sizes[l + 1],):
            raise AssertionError(f"layer {l}: shapes {w.shape} {b.shape} do not fit sizes {network.sizes}")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise AssertionError(f"layer {l}: a non-finite {network.dtype} weight or bias was loaded")
    if metadata["format"] != textbook_json.FORMAT:
        raise AssertionError(metadata)


if __name__ == "__main__":
    import sys

    from tests.fuzz.runner import main

    sys.exit(main(["textbook_json", *sys.argv[1:]]))
