"""The README's "From Python" examples run as written: every ```python block under that heading, in order.

The blocks share one namespace (a later block uses the names an earlier one
made) and run in a temporary folder that holds what they name: ``model.npz``
(a tiny trained model), ``network.json`` (the same network in the textbook's
format), ``seven.png`` (a drawn 7) and ``data/`` (small synthetic MNIST files
with room for the textbook's 10,000 validation images, so the examples need no
settings for small data).

The pages read are the repository's README.md and docs/python.md (the longer examples); for
the README, the file named by the
environment variable DIGITNET_README (to try a section before it is merged:
``DIGITNET_README=/path/to/section.md pytest tests/test_readme_python.py``).
The test is skipped, saying so, when the README has no "## From Python" section.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from helpers import write_mnist

import digitnet
from digitnet import textbook_json

HEADING = "## From Python"
README = Path(__file__).resolve().parents[1] / "README.md"


def readme() -> Path:
    return Path(os.environ.get("DIGITNET_README") or README)


def python_blocks(text: str) -> list[str]:
    """The ```python blocks between the HEADING line and the next second-level heading."""
    lines = text.splitlines()
    if HEADING not in (line.rstrip() for line in lines):
        return []
    start = [line.rstrip() for line in lines].index(HEADING) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    section = "\n".join(lines[start:end])
    return re.findall(r"^```python\n(.*?)^```", section, flags=re.DOTALL | re.MULTILINE)


def test_the_extraction_stops_at_the_next_section():
    text = f"# x\n```python\nno\n```\n{HEADING}\n```python\na = 1\n```\n### sub\n```python\nb = a\n```\n## Next\n" \
           "```python\nno\n```\n"
    assert python_blocks(text) == ["a = 1\n", "b = a\n"]
    assert python_blocks("## Elsewhere\n```python\nno\n```\n") == []


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """What the examples name, in the current folder."""
    write_mnist(tmp_path / "data", n_train=10_100, n_test=200, gz=False)  # 100 training + 10,000 validation
    model = digitnet.train(data_dir=tmp_path / "data", hidden=16, epochs=1, out=tmp_path / "model.npz")
    (tmp_path / "network.json").write_text(json.dumps(textbook_json.dump(model.network)))
    image = Image.new("L", (90, 120), 245)
    ImageDraw.Draw(image).line([(20, 25), (70, 25), (40, 100)], fill=10, width=9)
    image.save(tmp_path / "seven.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


DOCS_PAGE = README.parent / "docs" / "python.md"


@pytest.mark.parametrize("page", ["README.md", "docs/python.md"])
def test_the_from_python_examples_run_as_written(folder, page):
    path = readme() if page == "README.md" else DOCS_PAGE
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip(f"{path} has no {HEADING!r} section with ```python blocks")
    namespace = {"__name__": "__readme__"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{path.name}, {HEADING[3:]} block {number}", "exec"), namespace)
    assert (folder / "mine.npz").is_file()  # the training example saved its model
