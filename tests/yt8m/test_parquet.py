"""Frame-level shards written from the records' bytes: the same file pyarrow writes, read back.

:func:`~svm_toolkit.yt8m.parquet.write_frame_shard` writes Parquet itself (a 256-value float16
dictionary, the records' bytes as its indices). Each test holds it against pyarrow's own writer
or against the outside readers: the Parquet schema pyarrow writes, the Arrow schema and metadata
pyarrow reads back, and the same float16 values in pyarrow, pandas, polars, DuckDB and Hugging
Face ``datasets``.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.io.shards import (
    ShardLimits,
    committed_shards,
    hidden_tmp,
    new_stats_path,
    read_shards,
)
from svm_toolkit.schema import COL, feature_schema, with_provenance
from svm_toolkit.testing.yt8m import synthetic_videos, write_vocabulary, write_yt8m
from svm_toolkit.yt8m import Layout, Yt8mConfig, build_yt8m_manifest
from svm_toolkit.yt8m.features import (
    FLOAT16_OF_BYTE,
    Yt8mFeatureWriter,
    _QuantizedShardWriter,
    quantized_schema,
)
from svm_toolkit.yt8m.parquet import write_frame_shard
from tests.faults.test_disk_full import disk_fills
from tests.io.test_outside_readers import assert_readers_agree

duckdb = pytest.importorskip("duckdb")  # dev dependencies: never skipped in CI
pl = pytest.importorskip("polars")

MUSIC_VIDEO = 14
SECONDS = (3, 0, 2, 5, 1, 0, 4, 1, 2)  # 0-s rows (one level entry, no value) among the others


def rows(dim: int, seed: int = 0) -> tuple[pa.Table, pa.Table, pa.Schema]:
    """The same rows as uint8 indices (what the writer takes) and as float16 (what pyarrow
    writes), two chunks each, and the float16 schema with provenance."""
    schema = with_provenance(
        feature_schema(dim, sequence=True), "extract", extractor="yt8m_rgb", input_spec={}
    )
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 256, (sum(SECONDS), dim), dtype=np.uint8)
    offsets = pa.array(np.concatenate([[0], np.cumsum(SECONDS)]).astype(np.int32))
    seconds = np.concatenate([np.arange(n, dtype=np.float32) for n in SECONDS])

    def table(leaves: np.ndarray) -> pa.Table:
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(leaves.reshape(-1)), dim)
        return pa.table(
            {
                COL.sample_id: [f"v{i:02d}" for i in range(len(SECONDS))],
                COL.embeddings: pa.ListArray.from_arrays(offsets, vectors),
                COL.timestamps_s: pa.ListArray.from_arrays(offsets, pa.array(seconds)),
            }
        )

    quantized = table(values).cast(quantized_schema(schema))
    reference = table(FLOAT16_OF_BYTE[values]).cast(schema)
    split = 4  # two chunks: row groups restart at each
    return (
        pa.concat_tables([quantized.slice(0, split), quantized.slice(split)]),
        reference.replace_schema_metadata(schema.metadata),
        schema,
    )


@pytest.mark.parametrize("dim", [1024, 128, 12], ids=["rgb", "audio", "padded"])
def test_the_file_is_what_pyarrow_writes(tmp_path: Path, dim: int) -> None:
    quantized, reference, schema = rows(dim)
    ours, theirs = tmp_path / "ours.parquet", tmp_path / "theirs.parquet"
    write_frame_shard(quantized, ours, schema, FLOAT16_OF_BYTE, row_group_rows=3)
    pq.write_table(reference, theirs)

    assert pq.ParquetFile(ours).schema.equals(pq.ParquetFile(theirs).schema)
    got = pq.read_table(ours)
    assert got.schema.equals(pq.read_table(theirs).schema, check_metadata=True)
    assert got.equals(reference)  # float16 bits included: every value FLOAT16_OF_BYTE[byte]
    meta = pq.read_metadata(ours)
    assert (meta.num_rows, meta.num_row_groups) == (len(SECONDS), 4)  # 3 + 1, then 3 + 2
    vector = meta.row_group(0).column(1)
    assert vector.has_dictionary_page and "RLE_DICTIONARY" in vector.encodings
    assert vector.total_uncompressed_size < sum(SECONDS[:3]) * dim + 2048  # a byte per value

    # Readers with Parquet decoders of their own.
    assert duckdb.sql(f"SELECT * FROM '{ours}'").fetchall() == (
        duckdb.sql(f"SELECT * FROM '{theirs}'").fetchall()
    )
    assert pl.read_parquet(ours).equals(pl.read_parquet(theirs))


def test_other_shapes_are_refused(tmp_path: Path) -> None:
    quantized, _, schema = rows(8)
    with pytest.raises(ValueError, match="256 float16 values"):
        write_frame_shard(quantized, tmp_path / "x", schema, FLOAT16_OF_BYTE[:8], row_group_rows=4)
    pooled = with_provenance(feature_schema(8), "extract", extractor="x", input_spec={})
    with pytest.raises(ValueError, match="not written by this module"):
        write_frame_shard(quantized, tmp_path / "x", pooled, FLOAT16_OF_BYTE, row_group_rows=4)


@pytest.fixture
def records(tmp_path: Path) -> tuple[list[Path], Path]:
    """Two frame-level files of 6 music videos each; one video of 0 seconds."""
    videos = synthetic_videos(12, labels=lambda i: (MUSIC_VIDEO,), seconds=3, seed=4)
    videos[7] = replace(videos[7], rgb=videos[7].rgb[:0], audio=videos[7].audio[:0])
    files = [tmp_path / "frame" / f"train000{i}.tfrecord" for i in range(2)]
    write_yt8m(files[0], videos[:6], layout=Layout.FRAME)
    write_yt8m(files[1], videos[6:], layout=Layout.FRAME)
    return files, write_vocabulary(tmp_path / "vocabulary.csv", {MUSIC_VIDEO: "Music video"})


def test_feature_folders_read_the_same_everywhere(
    tmp_path: Path, records: tuple[list[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    files, vocabulary = records
    build_yt8m_manifest(files, vocabulary, tmp_path / "ds", Yt8mConfig(features=True))
    for name in ("yt8m_rgb", "yt8m_audio"):
        folder = tmp_path / "ds" / "features" / name
        assert_readers_agree(folder, "part", tmp_path / "hf", vectors=(COL.embeddings,))


def test_a_killed_run_resumes_to_the_same_rows(
    tmp_path: Path, records: tuple[list[Path], Path]
) -> None:
    files, vocabulary = records
    whole = tmp_path / "whole"
    build_yt8m_manifest(files, vocabulary, whole, Yt8mConfig(features=True))

    # The first file's features committed, then a kill while the next shard was committed:
    # its hidden temp file and its stats are on disk, the shard never renamed into place.
    resumed = tmp_path / "resumed"
    build_yt8m_manifest(files[:1], vocabulary, resumed, Yt8mConfig(features=True))
    for name in ("yt8m_rgb", "yt8m_audio"):
        folder = resumed / "features" / name
        hidden_tmp(folder / "part-00001.parquet").write_bytes(b"PAR1 cut short")
        new_stats_path(folder / "part-00001.parquet").write_text("{}")
    summary = build_yt8m_manifest(files, vocabulary, resumed, Yt8mConfig(features=True))

    assert summary.features == {"yt8m_rgb": 12, "yt8m_audio": 12}
    for name in ("yt8m_rgb", "yt8m_audio"):
        folder = resumed / "features" / name
        assert [p.name for p in committed_shards(folder, "part")] == [
            "part-00000.parquet",
            "part-00001.parquet",
        ]
        assert not list(folder.glob(".*.tmp"))
        got = read_shards(folder, "part", latest=False)
        want = read_shards(whole / "features" / name, "part")
        assert got is not None and want is not None
        assert got.sort_by(COL.sample_id).equals(want.sort_by(COL.sample_id))


def test_shards_are_streamed_in_row_groups_and_cut_at_the_limits(tmp_path: Path) -> None:
    quantized, reference, schema = rows(16)
    folder = tmp_path / "features" / "x"
    limits = ShardLimits(max_rows=4, row_group_rows=2, vector_columns=(COL.embeddings,))
    with _QuantizedShardWriter(folder, "part", schema, status_column=None, limits=limits) as w:
        w.write(quantized.slice(0, 3))
        w.write(quantized.slice(3))  # 6 more: fills shard 0, then shard 1 (4), then 2 left
        assert [p.name for p in committed_shards(folder, "part")] == [
            "part-00000.parquet",
            "part-00001.parquet",
        ]
        assert len(list(folder.glob(".part-00002.parquet.tmp"))) == 1  # streamed, not buffered
    shards = committed_shards(folder, "part")
    assert [pq.read_metadata(p).num_rows for p in shards] == [4, 4, 1]
    assert [pq.read_metadata(p).num_row_groups for p in shards] == [3, 2, 1]  # 2+1+1, 2+2, 1
    got = read_shards(folder, "part")
    assert got is not None and got.equals(reference)


@pytest.mark.parametrize("at", [1, 2, 3, 4])
def test_a_full_disk_then_a_rerun_writes_each_row_once(
    tmp_path: Path, records: tuple[list[Path], Path], at: int
) -> None:
    files, vocabulary = records
    whole = tmp_path / "whole"
    build_yt8m_manifest(files, vocabulary, whole, Yt8mConfig(features=True))
    with disk_fills(at), pytest.raises(OSError, match="No space left"):
        build_yt8m_manifest(files, vocabulary, tmp_path / "ds", Yt8mConfig(features=True))
    build_yt8m_manifest(files, vocabulary, tmp_path / "ds", Yt8mConfig(features=True))
    for name in ("yt8m_rgb", "yt8m_audio"):
        folder = tmp_path / "ds" / "features" / name
        assert not list(folder.glob(".*.tmp"))
        got = read_shards(folder, "part", latest=False)
        want = read_shards(whole / "features" / name, "part")
        assert got is not None and want is not None
        assert got.sort_by(COL.sample_id).equals(want.sort_by(COL.sample_id))


def test_an_error_inside_a_row_group_keeps_the_row_groups_before_it(tmp_path: Path) -> None:
    quantized, reference, schema = rows(16)
    folder = tmp_path / "features" / "x"
    limits = ShardLimits(row_group_rows=2, vector_columns=(COL.embeddings,))
    # A null timestamp fails the last column of the row group, after the first two were written.
    stamps = quantized.column(COL.timestamps_s).combine_chunks()
    broken = pa.ListArray.from_arrays(stamps.offsets, pa.array([None] * len(stamps.values)))
    bad = quantized.set_column(2, COL.timestamps_s, broken).slice(3, 2)
    with _QuantizedShardWriter(folder, "part", schema, status_column=None, limits=limits) as w:
        w.write(quantized.slice(0, 3))
        with pytest.raises(pa.ArrowInvalid):
            w.write(bad)
    got = read_shards(folder, "part")
    assert got is not None and got.equals(reference.slice(0, 3))


def test_column_chunks_tile_each_row_group(tmp_path: Path) -> None:
    quantized, _, schema = rows(128)
    write_frame_shard(quantized, tmp_path / "f.parquet", schema, FLOAT16_OF_BYTE, row_group_rows=3)
    meta = pq.read_metadata(tmp_path / "f.parquet")
    end = 4  # after the magic bytes
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            column = group.column(j)
            start = column.dictionary_page_offset if column.has_dictionary_page else None
            start = column.data_page_offset if start is None else start
            assert start == end, (i, j)  # each chunk starts where the one before ends
            end = start + column.total_compressed_size
        assert group.total_byte_size == end - group.column(0).file_offset


def test_a_refused_manifest_is_the_error_reported_when_the_commit_fails_too(
    tmp_path: Path,
    records: tuple[list[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two failures in one run: the manifest's (what the user must fix) is raised, and the
    features' commit's is logged, not the other way round."""
    files, vocabulary = records
    dataset = tmp_path / "ds"
    build_yt8m_manifest(files, vocabulary, dataset, Yt8mConfig(features=True))

    def disk_full(self: Yt8mFeatureWriter) -> dict[str, int]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Yt8mFeatureWriter, "close", disk_full)
    with pytest.raises(InputError, match="overwrite"):  # fewer samples than the manifest holds
        build_yt8m_manifest(files[:1], vocabulary, dataset, Yt8mConfig(features=True))
    assert "the features' commit failed as well" in caplog.text
    assert "No space left" in caplog.text
