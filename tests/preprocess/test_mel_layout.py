"""A Mel folder keeps one layout: samples added to an older, flat folder are written flat.

Every outside reader opens the folder as one table only when all its shards agree; a mix of flat
(``list<fixed_size_list<float32>[6144]>``) and nested (``[96][64]``) units opens in none.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from svm_toolkit.data import read_mel
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter, committed_shards, read_shards
from svm_toolkit.preprocess import PreprocessConfig, run_preprocess
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.schema import COL, ledger_schema, mel_schema, with_provenance
from svm_toolkit.testing import MediaSpec, make_media
from tests.preprocess.test_stage import _download_row

CONFIG = PreprocessConfig(filters=FilterConfig(min_motion=None), mel=("vggish",), workers=1)


def old_flat_folder(root: Path) -> np.ndarray:
    """A Mel folder of an older dataset: one sample, each (96, 64) unit stored flat."""
    units = np.arange(2 * 96 * 64, dtype=np.float32).reshape(2, 96, 64) / 100
    schema = with_provenance(
        mel_schema(96 * 64), "preprocess", {}, recipe="vggish", unit_shape=[96, 64]
    )
    row = {
        COL.sample_id: "old",
        COL.mel: [unit.reshape(-1).tolist() for unit in units],
        COL.timestamps_s: [0.0, 0.96],
    }
    folder = DatasetLayout(root).mel_dir("vggish")
    with ShardWriter(folder, "part", schema, status_column=None) as writer:
        writer.write([row])
    return units


def downloaded(root: Path, sample_id: str) -> None:
    """Mark one generated video as downloaded (a download ledger row)."""
    layout = DatasetLayout(root)
    path = make_media(layout.media_path(sample_id, ".mp4"), MediaSpec(seconds=3, size=(96, 128)))
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(layout.ledger_dir, "download", schema) as writer:
        writer.write([_download_row(sample_id, path.relative_to(root).as_posix())])


def test_samples_added_to_a_flat_mel_folder_stay_flat_and_every_reader_opens_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = old_flat_folder(tmp_path)
    downloaded(tmp_path, "new")
    with caplog.at_level(logging.INFO, logger="svm_toolkit.preprocess.runner"):
        assert run_preprocess(tmp_path, CONFIG).attempted == 1
    notes = [r.getMessage() for r in caplog.records if "older flat layout" in r.getMessage()]
    assert len(notes) == 1 and "mel_vggish" in notes[0] and "delete" in notes[0]

    folder = DatasetLayout(tmp_path).mel_dir("vggish")
    shards = committed_shards(folder, "part")
    assert len(shards) == 2  # the old shard and the run's
    flat = pa.list_(pa.list_(pa.float32(), 96 * 64))
    assert all(pa.parquet.read_schema(s).field(COL.mel).type == flat for s in shards)

    assert len(pd.read_parquet(folder)) == 2
    assert pads.dataset(folder).to_table().num_rows == 2
    assert pl.scan_parquet(f"{folder}/*.parquet").collect().height == 2
    query = f"select count(*), max(len(mel)) from read_parquet('{folder}/*.parquet')"
    count, _ = duckdb.sql(query).fetchall()[0]
    assert count == 2

    mels = read_mel(tmp_path, "vggish")
    assert sorted(mels) == ["new", "old"]
    np.testing.assert_array_equal(mels["old"].units, old)
    table = read_shards(folder, "part")
    assert table is not None
    row = {r[COL.sample_id]: r for r in table.to_pylist()}["new"]
    stored = np.asarray(row[COL.mel], dtype=np.float32)
    assert mels["new"].units.shape == (len(stored), 96, 64) and len(stored) > 0
    np.testing.assert_array_equal(mels["new"].units, stored.reshape(-1, 96, 64))


def test_a_new_mel_folder_is_nested(tmp_path: Path) -> None:
    downloaded(tmp_path, "new")
    run_preprocess(tmp_path, CONFIG)
    folder = DatasetLayout(tmp_path).mel_dir("vggish")
    (shard,) = committed_shards(folder, "part")
    assert pa.parquet.read_schema(shard).equals(mel_schema((96, 64)), check_metadata=False)
