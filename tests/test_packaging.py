"""The project's own files: setup.cfg ships every file of the page and the templates without a setuptools
warning; .gitignore and `make clean` leave the user's models, runs and sweeps out of git and in place."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_FOLDERS = ("digitnet/serve/static", "digitnet/templates")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """What setuptools' build_py puts into the wheel, built from a copy of the project (the working tree
    is left alone), and everything it said meanwhile."""
    setuptools = pytest.importorskip("setuptools")
    assert setuptools  # the build below runs it in a child process
    copy = tmp_path_factory.mktemp("project")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "digitnet", copy / "digitnet", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "digitnet" / "__pycache__").mkdir()  # as after any run: must not become a package
    lib = copy / "lib"
    done = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "build_py",
                           "--build-lib", str(lib)], cwd=copy, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return lib, done.stdout + done.stderr


def test_setuptools_does_not_warn_that_a_data_folder_would_be_ignored(built):
    _, said = built
    for warning in ("would be ignored", "as data is deprecated", "absent from the `packages`"):
        assert warning not in said, said


@pytest.mark.parametrize("folder", DATA_FOLDERS)
def test_every_file_of_the_page_and_the_templates_is_built(built, folder):
    lib, _ = built
    files = {p.relative_to(ROOT) for p in (ROOT / folder).iterdir() if p.is_file()}
    assert files and files <= {p.relative_to(lib) for p in (lib / folder).iterdir()}


def test_no_pycache_folder_is_a_package(built):
    lib, _ = built
    assert not list(lib.rglob("__pycache__"))


WORK = ["model.npz", "runs/2026-11-29_00-15-03.npz", "runs/taught-model-1.npz", "runs/explain-7.png", "sweep-default/study.db",
        "sweep-default/index.html", "report-model/index.html"]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs git and the clone")
@pytest.mark.parametrize("path", WORK)
def test_what_digitnet_makes_is_ignored_by_git(path):
    done = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT)
    assert done.returncode == 0, f"{path} would show in git status"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_keeps_models_runs_and_sweeps_and_says_so(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for path in WORK + ["build/lib/x.py", "data/train-images-idx3-ubyte.gz"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"work")
    done = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "build").exists() and not (tmp_path / "report-model").exists()  # made again by make
    assert all((tmp_path / path).is_file() for path in WORK if not path.startswith("report-"))
    assert ("kept: model.npz runs/ sweep-default/ data/ (your models, runs, sweeps and MNIST: remove them by hand)"
            in done.stdout.splitlines())
