"""Shared fixtures: small synthetic MNIST-format data, the real MNIST when present, a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

# Re-exported for tests that still write `from conftest import ...`; new code imports tests/helpers.py.
from helpers import TRAIN_SHORT, idx_bytes, run_cli, synthetic_digits, write_mnist  # noqa: F401

REAL_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "mnist"


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
