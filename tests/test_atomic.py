"""atomic.folders_removed_on_failure: a failed command leaves no new empty folders, and nothing else goes."""

from __future__ import annotations

import pytest

from digitnet.atomic import folders_removed_on_failure


def test_a_failure_removes_the_folders_the_block_created(tmp_path):
    with pytest.raises(RuntimeError), folders_removed_on_failure(tmp_path / "a" / "b") as folder:
        folder.mkdir(parents=True)
        raise RuntimeError("no data")
    assert list(tmp_path.iterdir()) == []


def test_success_keeps_them(tmp_path):
    with folders_removed_on_failure(tmp_path / "a" / "b") as folder:
        folder.mkdir(parents=True)
    assert (tmp_path / "a" / "b").is_dir()


def test_a_folder_that_existed_or_holds_a_file_is_kept(tmp_path):
    (tmp_path / "old").mkdir()
    with pytest.raises(KeyboardInterrupt), folders_removed_on_failure(tmp_path / "old" / "new") as folder:
        folder.mkdir()
        (folder / "result.txt").write_text("work")
        raise KeyboardInterrupt
    assert (tmp_path / "old" / "new" / "result.txt").read_text() == "work"
