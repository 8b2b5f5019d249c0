from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.io.paths import SAFE_ID_RE2, DatasetLayout, check_sample_id, id_problem


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


def test_the_column_rule_is_the_python_rule() -> None:
    """Arrow's RE2 form (plus its ``..`` test) accepts exactly the ids :func:`id_problem` does."""
    ids = ["dQw4w9WgXcQ", "-abc", "_x", "a.b", "x" * 128, "x" * 129, "", "../x", "..", "a/b",
           "a\x00b", ".hidden", "a..b", "spa ce", "é", "a\nb", "ab\n"]  # fmt: skip
    column = pa.array(ids)
    safe = pc.and_(pc.match_substring_regex(column, SAFE_ID_RE2),
                   pc.invert(pc.match_substring(column, "..")))  # fmt: skip
    assert safe.to_pylist() == [id_problem(i) is None for i in ids]


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
