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
