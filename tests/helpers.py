"""Helpers the tests import (`from helpers import run_cli`): synthetic MNIST files and running the CLI.

Fixtures live in conftest.py; plain functions and constants live here, so that
no test imports conftest.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

# The short training run the CLI tests share: two epochs of batch 10, 100 validation images
# (the synthetic data has 600 training images).  Add --hidden and paths per test.
TRAIN_SHORT = ["--epochs", "2", "--batch-size", "10", "--validation-size", "100"]


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: magic 0x0000080<ndim>, big-endian sizes, then the bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 uint8 images whose label is learnable: digit k lights up a bar in row band k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 + 2 * k: 4 + 2 * k, 4:24] = 255
    return images, labels


def write_mnist(directory: Path, n_train: int = 600, n_test: int = 200, gz: bool = True) -> Path:
    """Write the four MNIST files (synthetic content) into directory; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = synthetic_digits(n_train, seed=1)
    test_images, test_labels = synthetic_digits(n_test, seed=2)
    for name, array in (("train-images-idx3-ubyte", train_images), ("train-labels-idx1-ubyte", train_labels),
                        ("t10k-images-idx3-ubyte", test_images), ("t10k-labels-idx1-ubyte", test_labels)):
        data = idx_bytes(array)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (directory / name).write_bytes(data)
    return directory


def run_cli(*args, expect: int | None = 0):
    """Run `digitnet ARGS` in-process; check the exit code (unless ``expect`` is None) and that
    no Python traceback reached the user."""
    from click.testing import CliRunner

    from digitnet.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    if expect is not None:
        assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
    return result
