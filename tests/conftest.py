"""Shared fixtures: small synthetic MNIST-format data, the real MNIST when present, a tiny model."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

REAL_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "mnist"


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


@pytest.fixture
def synthetic_data_dir(tmp_path) -> Path:
    """A data directory with small synthetic MNIST files (600 train, 200 test)."""
    return write_mnist(tmp_path / "mnist")


@pytest.fixture(scope="session")
def real_mnist_dir() -> Path:
    """The real MNIST in ../shared/mnist; tests using it are skipped when it is absent."""
    if not all((REAL_MNIST / f).is_file() for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                                    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):
        pytest.skip("real MNIST not found in ../shared/mnist")
    return REAL_MNIST


@pytest.fixture(autouse=True)
def _no_data_dir_env(monkeypatch):
    """Tests never pick up a user's $DIGITNET_DATA_DIR by accident."""
    monkeypatch.delenv("DIGITNET_DATA_DIR", raising=False)


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


@pytest.fixture
def read_only_folder(tmp_path, monkeypatch) -> Path:
    """An empty folder no file can be created in.  As a normal user chmod is enough; root writes
    through file modes (and a read-only mount needs privileges), so there the file system's
    refusal (EROFS) is simulated for this folder in tempfile.mkstemp, which every write uses."""
    import errno
    import os
    import tempfile

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and os.path.realpath(dir) == str(folder.resolve()):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, "tmp"))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    yield folder
    folder.chmod(0o755)
