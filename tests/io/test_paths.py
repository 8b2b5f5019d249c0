from __future__ import annotations

from pathlib import Path

import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.io.paths import DatasetLayout, check_sample_id, id_problem


@pytest.mark.parametrize(
    "good", ["dQw4w9WgXcQ", "-abcdefghij", "_x", "7301234567890123456", "u0123456789abcdef", "a.b"]
)
def test_safe_ids(good: str) -> None:
    assert id_problem(good) is None
    assert check_sample_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../x",
        "..",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "a\x00b",
        ".hidden",
        "a..b",
        "x" * 129,
        "spa ce",
        "é",
    ],
)
def test_unsafe_ids(bad: str) -> None:
    assert id_problem(bad)
    with pytest.raises(InputError, match="cannot be used"):
        check_sample_id(bad)


def test_layout_paths(tmp_path: Path) -> None:
    layout = DatasetLayout(tmp_path)
    assert layout.media_path("dQw4w9WgXcQ", ".mp4") == tmp_path / "media" / "dQ" / "dQw4w9WgXcQ.mp4"
    assert layout.media_path("a", ".mp4") == tmp_path / "media" / "a_" / "a.mp4"
    assert layout.features_dir("vggish") == tmp_path / "features" / "vggish"
    assert layout.manifest == tmp_path / "manifest.parquet"
    with pytest.raises(InputError):
        layout.media_path("../../escape", ".mp4")
    with pytest.raises(InputError):
        layout.run_dir("../x")


def test_symlink_out_of_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "ds", tmp_path / "elsewhere"
    (root / "media").mkdir(parents=True)
    outside.mkdir()
    (root / "media" / "ab").symlink_to(outside)
    with pytest.raises(InputError, match="outside the dataset root"):
        DatasetLayout(root).media_path("abc", ".mp4")
