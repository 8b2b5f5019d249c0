"""The checked Parquet reader: ids and paths as rows are read, damaged files, repair hints."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.io.checked import check_rows, iter_batches, read_schema, read_table, repair_hint
from svm_toolkit.io.paths import id_problem


@pytest.mark.parametrize(
    "sample_id",
    ["ok", "dQw4w9WgXcQ", "a.b-c_d", "x" * 128, "-x", "_", "..", "../x", "/abs", ".hidden",
     "a/b", "a\\b", "a\x00b", "a..b", "x" * 129, "", "café", "a b", "a\nb"],
)  # fmt: skip
def test_the_vectorised_id_check_agrees_with_id_problem(tmp_path: Path, sample_id: str) -> None:
    table = pa.table({"sample_id": ["fine", sample_id]})
    if id_problem(sample_id) is None:
        check_rows(table, tmp_path / "t.parquet")
        return
    with pytest.raises(InputError, match=r"t\.parquet: row 1: sample id .* cannot be used"):
        check_rows(table, tmp_path / "t.parquet")


def test_null_and_non_text_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="row 0: sample id null cannot be used: it is missing"):
        check_rows(pa.table({"sample_id": pa.array([None], pa.string())}), tmp_path / "t")
    with pytest.raises(InputError, match="column 'sample_id' holds int64, not text"):
        check_rows(pa.table({"sample_id": [1, 2]}), tmp_path / "t")
    check_rows(pa.table({"other": ["../x"]}), tmp_path / "t")  # no id column: nothing to check


@pytest.mark.parametrize(
    ("column", "value", "ok"),
    [
        ("media_path", "media/ab/abc.mp4", True),
        ("media_path", None, True),  # a failed download has no media
        ("media_path", "media/../../x", False),
        ("media_path", "/etc/passwd", False),
        ("media_path", "media/.x/y", False),
        ("media_path", "ledger/download-00000.parquet", False),
        ("media_path", "media/ab/x\x00.mp4", False),
        ("cropped_path", "preprocess/cropped/ab/abc.mp4", True),
        ("cropped_path", "media/ab/abc.mp4", False),
        ("youtube_id", "dQw4w9WgXcQ", True),
        ("youtube_id", None, True),  # not resolved (yet)
        ("youtube_id", "x&v=../../a", False),
    ],
)
def test_ledger_paths_must_stay_in_their_folder(
    tmp_path: Path, column: str, value: str | None, ok: bool
) -> None:
    table = pa.table({"sample_id": ["abc"], column: pa.array([value], pa.string())})
    if ok:
        check_rows(table, tmp_path / "t")
    else:
        with pytest.raises(InputError, match=f"row 0: {column} .* is not a"):
            check_rows(table, tmp_path / "t")


def test_damaged_files_are_input_errors_in_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "features" / "vggish" / "part-00000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"sample_id": ["a", "b"], "x": [1.0, 2.0]}), path)
    assert read_table(path, columns=["x"]).num_rows == 2
    path.write_bytes(path.read_bytes()[:-20])
    for read in (
        lambda: read_table(path),
        lambda: read_schema(path),
        lambda: list(iter_batches(path, columns=["x"])),
    ):
        with pytest.raises(InputError, match="not a readable Parquet file") as caught:
            read()
        assert str(path) in str(caught.value)
        assert f"svm extract {tmp_path} --extractor vggish" in str(caught.value)
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_table(tmp_path / "missing.parquet")


@pytest.mark.parametrize(
    ("relative", "command"),
    [
        ("ledger/download-00003.parquet", "`svm download {root}` again."),
        ("ledger/preprocess-00000.parquet", "`svm preprocess {root}` again with the options"),
        ("ledger/extract_resnet50-00001.parquet", "`svm extract {root} --extractor resnet50`"),
        ("ledger/resolve-00000.parquet", "`svm manifest yt8m ... -o {root} --resolve`"),
        ("features/resnet50/part-00002.parquet", "`svm extract {root} --extractor resnet50`"),
        ("features/yt8m_rgb/part-00000.parquet", "`svm manifest yt8m ... -o {root} --features`"),
        ("preprocess/fingerprints/part-00000.parquet", "`svm preprocess {root}` again"),
        ("preprocess/mel_vggish/part-00000.parquet", "`svm preprocess {root} --mel vggish`"),
        ("splits.parquet", "`svm splits make {root}` again"),
    ],
)
def test_repair_hints_name_the_files_and_the_command(
    tmp_path: Path, relative: str, command: str
) -> None:
    path = tmp_path / relative
    hint = repair_hint(path)
    assert command.format(root=tmp_path) in hint
    assert hint.startswith(f"Delete {path} ")
    if relative != "splits.parquet":
        assert f"its stats file {path.parent / '.stats' / path.stem}.json, then run" in hint
        legacy = path.with_name(path.stem + "_stats.json")  # a dataset of the old layout
        legacy.parent.mkdir(parents=True, exist_ok=True)
        legacy.write_text("{}")
        assert f"its stats file {legacy}, then run" in repair_hint(path)
