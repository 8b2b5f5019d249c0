"""svm_toolkit.io.atomic: a file appears whole under its name or not at all; no temp is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from svm_toolkit.export.webdataset import _TarWriter
from svm_toolkit.io import atomic
from svm_toolkit.io.atomic import atomic_path, fsync_dir, write_bytes_atomic


def test_a_written_file_replaces_the_old_one_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("old")
    with atomic_path(path) as tmp:
        assert tmp == tmp_path / ".plan.json.tmp" == atomic.tmp_path(path)
        tmp.write_text("new")
        assert path.read_text() == "old"  # nothing changes before the block ends
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]
    fsync_dir(tmp_path)


def test_an_error_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    path.write_text("old")
    with pytest.raises(OSError, match="disk full"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise OSError("disk full")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.md"]


def test_write_bytes_atomic_makes_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.json"
    write_bytes_atomic(path, b"{}\n")
    assert path.read_bytes() == b"{}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]


def test_a_tar_is_committed_whole_or_discarded(tmp_path: Path) -> None:
    done, dropped = _TarWriter(tmp_path / "train-000000.tar", 1), _TarWriter(tmp_path / "x.tar", 1)
    assert {p.name for p in tmp_path.iterdir()} == {".train-000000.tar.tmp", ".x.tar.tmp"}
    assert done.commit() > 0
    dropped.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-000000.tar"]
