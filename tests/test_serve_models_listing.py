"""GET /api/models with bad files about: one malformed file never breaks the listing.

``Models.listing()`` is called directly (the route answers it as it is; tests/test_serve_contract.py
checks the answer over HTTP against the OpenAPI document, with bad files in its folders too).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from digitnet import checkpoint, textbook_json
from digitnet.network import Network
from digitnet.serve.models import MAX_SKIPPED, Models


@pytest.fixture
def folders(tmp_path):
    runs, work = tmp_path / "runs", tmp_path / "work"
    runs.mkdir()
    work.mkdir()
    good = checkpoint.save(runs / "good.npz", Network([784, 5, 10], rng=np.random.default_rng(1)),
                           {"epochs_completed": 2, "test_accuracy": 0.5})
    return runs, work, good


def listing(runs, work) -> dict:
    answer = Models(None, runs, work).listing()
    json.dumps(answer)  # what the route sends: it must be JSON as it is
    return answer


def where(answer: dict, file_id: str) -> str | None:
    """'listed' (with an "error"), 'skipped' (with a reason), or None when it is not mentioned."""
    listed = {m["id"]: m for m in answer["models"]}
    if file_id in listed:
        assert listed[file_id]["error"], listed[file_id]
        return "listed"
    reasons = [s["reason"] for s in answer["skipped"] if s["file"] == file_id]
    if reasons:
        assert all(isinstance(r, str) and r for r in reasons)
        return "skipped"
    return None


def test_a_truncated_checkpoint_is_listed_with_its_error_and_the_good_one_is_still_there(folders):
    runs, work, good = folders
    (runs / "cut.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    answer = listing(runs, work)
    assert where(answer, "runs/cut.npz") == "listed"
    assert {m["id"]: m for m in answer["models"]}["runs/good.npz"]["sizes"] == [784, 5, 10]


@pytest.mark.parametrize("content", [os.urandom(3000), b"", b"PK\x03\x04" + bytes(200), b"\x93NUMPY" + bytes(60)])
def test_random_bytes_named_npz_never_break_the_listing(folders, content):
    runs, work, _ = folders
    (work / "junk.npz").write_bytes(content)
    answer = listing(runs, work)
    assert where(answer, "junk.npz") in ("listed", "skipped")
    assert "runs/good.npz" in {m["id"] for m in answer["models"]}


def test_a_folder_named_like_a_model_is_skipped_and_named(folders):
    runs, work, _ = folders
    (runs / "x.npz").mkdir()
    (work / "y.json").mkdir()
    answer = listing(runs, work)
    assert {s["file"]: s["reason"] for s in answer["skipped"]} == {
        "runs/x.npz": "a folder, not a model file", "y.json": "a folder, not a model file"}


def test_a_broken_link_is_skipped_and_hides_no_other_file(folders):
    runs, work, _ = folders
    (runs / "gone.npz").symlink_to(runs / "nowhere.npz")
    answer = listing(runs, work)
    assert where(answer, "runs/gone.npz") == "skipped"
    assert "runs/good.npz" in {m["id"] for m in answer["models"]}


def test_bad_json_is_skipped_and_a_textbook_network_is_listed(folders):
    runs, work, _ = folders
    (work / "broken.json").write_text('{"sizes": [784, 3, 10], "weights": [[')
    (work / "weird.json").write_text('{"sizes":[1,1],"weights":3,"biases":2,"cost":{}}')
    (work / "nested.json").write_text("[" * 20000)
    (work / "net.json").write_text(json.dumps(textbook_json.dump(Network([784, 4, 10], rng=np.random.default_rng(2)))))
    answer = listing(runs, work)
    for name in ("broken.json", "weird.json", "nested.json"):
        assert where(answer, name) == "skipped", name
    assert {m["id"]: m for m in answer["models"]}["net.json"]["sizes"] == [784, 4, 10]


def test_an_unreadable_file_never_breaks_the_listing(folders):
    runs, work, good = folders
    locked = runs / "locked.npz"
    locked.write_bytes(good.read_bytes())
    locked.chmod(0)
    try:
        answer = listing(runs, work)  # as root the file is still readable: then it is simply listed
        assert "runs/locked.npz" in {m["id"] for m in answer["models"]} | {s["file"] for s in answer["skipped"]}
        assert "runs/good.npz" in {m["id"] for m in answer["models"]}
    finally:
        locked.chmod(0o644)


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"), ValueError("cannot reshape"),
                                   RecursionError("maximum recursion depth exceeded"), MemoryError(),
                                   TypeError("unhashable type: 'list'")])
def test_a_loader_failing_outside_its_error_class_costs_one_file(folders, monkeypatch, error):
    runs, work, good = folders
    (runs / "bad.npz").write_bytes(good.read_bytes() + b"x")  # another size: not the good file's cached summary
    real_load = checkpoint.load

    def load(path):
        if os.path.basename(path) == "bad.npz":
            raise error
        return real_load(path)

    monkeypatch.setattr(checkpoint, "load", load)
    models = Models(None, runs, work)
    answer = models.listing()
    [skip] = [s for s in answer["skipped"] if s["file"] == "runs/bad.npz"]
    assert type(error).__name__ in skip["reason"]
    assert [m["id"] for m in answer["models"]] == ["runs/good.npz"]
    assert models.listing() == answer  # the failure is remembered with the file (not read again)
    with pytest.raises(Exception) as refused:  # it cannot be named either: it is not in the listing
        models.path_of("runs/bad.npz")
    assert getattr(refused.value, "status", None) == 404


def test_skipped_names_a_bounded_number_of_files(folders):
    runs, work, _ = folders
    for n in range(MAX_SKIPPED + 10):
        (work / f"d{n}.npz").mkdir()
    answer = listing(runs, work)
    assert len(answer["skipped"]) == MAX_SKIPPED and "runs/good.npz" in {m["id"] for m in answer["models"]}
