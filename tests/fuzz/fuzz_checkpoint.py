"""Fuzz harness: ``checkpoint.load`` refuses any file with CheckpointError, in bounded time and memory.

Two inputs in one: the bytes as the whole file (zip structure, .npy headers, and a textbook JSON file
when they start with ``{``), and the bytes as the metadata JSON of an otherwise valid 4-3-2 checkpoint
(a mutated member fails its zip CRC, so the metadata's checks are reached only this way).  A file that
loads must give finite weights of the shapes its sizes declare, and ``digitnet info`` (text and --json)
must print it or exit 1 with one line, never a traceback.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from digitnet import checkpoint
from digitnet.checkpoint import CheckpointError
from digitnet.cli import main as cli

EXPECTED = (CheckpointError,)
LIBFUZZER_ARGS = ["-max_len=8192", f"-dict={Path(__file__).with_name('json.dict')}"]
_DIR = Path(tempfile.mkdtemp(prefix="fuzz-checkpoint-"))
_RNG = np.random.default_rng(0)
_LAYERS = {}
for _prefix in ("", "best_", "velocity_"):
    for _l, (_n_in, _n_out) in enumerate(((4, 3), (3, 2))):
        _LAYERS[f"{_prefix}w{_l}"] = _RNG.standard_normal((_n_out, _n_in)).astype(np.float32)
        _LAYERS[f"{_prefix}b{_l}"] = _RNG.standard_normal(_n_out).astype(np.float32)


def _with_metadata(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, array in {"metadata": np.array(text), **_LAYERS}.items():
            member = io.BytesIO()
            np.save(member, array, allow_pickle=False)
            z.writestr(name + ".npy", member.getvalue())
    return buf.getvalue()


def _check_loaded(path: Path) -> None:
    ckpt = checkpoint.load(path)
    for network in filter(None, (ckpt.network, ckpt.best_network)):
        for l, (w, b) in enumerate(zip(network.weights, network.biases)):
            if w.shape != (network.sizes[l + 1], network.sizes[l]) or b.shape != (network.sizes[l + 1],):
                raise AssertionError(f"layer {l}: shapes {w.shape} {b.shape} do not fit sizes {network.sizes}")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise AssertionError(f"layer {l}: a non-finite {network.dtype} weight or bias was loaded")
    ckpt.weights("best")
    checkpoint.digit_reader_problem(ckpt.network, path)
    for args in (["info", str(path)], ["info", "--json", str(path)]):
        result = CliRunner().invoke(cli, args)
        if result.exit_code not in (0, 1) or (result.exception and not isinstance(result.exception, SystemExit)):
            raise result.exception or AssertionError(f"digitnet {' '.join(args)} exited {result.exit_code}")


def one_input(data: bytes) -> None:
    path = _DIR / "model.npz"
    path.write_bytes(data)
    try:
        _check_loaded(path)
    except CheckpointError:
        pass
    if data[:2] == b"PK":
        return
    path.write_bytes(_with_metadata(data.decode("utf-8", "replace")))
    _check_loaded(path)


if __name__ == "__main__":
    import sys

    from tests.fuzz.runner import main

    sys.exit(main(["checkpoint", *sys.argv[1:]]))
