"""Files and directories replaced whole: readers see the old or the new, never a half."""

from __future__ import annotations

import pytest

from notellm2_udf.atomic_files import staged_directory, write_atomic, write_text_atomic


def test_a_staged_directory_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "build"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(RuntimeError):
        with staged_directory(target) as staging:
            (staging / "half").write_text("half")
            raise RuntimeError("killed")
    assert [p.name for p in target.iterdir()] == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["build"]  # no staging left behind
    with staged_directory(target) as staging:
        (staging / "new").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["build"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "manifest.json"
    write_text_atomic(path, "first")

    def failing(name: str) -> None:
        with open(name, "w") as file:
            file.write("partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomic(path, failing)
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
    write_text_atomic(path, "second")
    assert path.read_text() == "second"
