"""Mel shards store each unit in its real shape; read_mel / iter_mel read it and the old layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.data import Mel, iter_mel, read_mel
from svm_toolkit.errors import InputError
from svm_toolkit.extract.mel_units import _Recipe
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardLimits, ShardWriter, committed_shards
from svm_toolkit.preprocess.recipes import MEL_RECIPES, MelUnits
from svm_toolkit.preprocess.runner import _mel_schema, _mel_table
from svm_toolkit.schema import COL, mel_schema, with_provenance

SHAPE = (96, 64)  # the vggish recipe's unit


def units(n: int, seed: int) -> MelUnits:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, *SHAPE)).astype(np.float32)
    return MelUnits(data, (0.96 * np.arange(n)).astype(np.float32))


def write(directory: Path, schema: pa.Schema, rows: dict[str, MelUnits | None]) -> None:
    """One shard of a recipe's rows, as svm preprocess writes them."""
    with ShardWriter(directory, "part", schema, status_column=None, limits=ShardLimits()) as w:
        for sample_id, mel in rows.items():
            w.write(_mel_table(sample_id, mel, schema))


def old_schema() -> pa.Schema:
    """The layout before issue 20: each unit one flat vector, its shape only in provenance."""
    return with_provenance(
        mel_schema(96 * 64), "preprocess", {}, recipe="vggish", unit_shape=list(SHAPE)
    )


@pytest.fixture(scope="module")
def new_only(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, MelUnits]]:
    """A dataset whose vggish recipe holds three samples in the new layout."""
    root = tmp_path_factory.mktemp("mel") / "ds"
    rows = {"a": units(3, 0), "b": units(1, 1), "c": units(5, 2)}
    folder = DatasetLayout(root).mel_dir("vggish")
    write(folder, _mel_schema(MEL_RECIPES["vggish"], {}, folder), rows)
    return root, rows


def test_units_are_stored_in_their_shape_and_read_in_one_call(
    new_only: tuple[Path, dict[str, MelUnits]],
) -> None:
    root, rows = new_only
    shard = committed_shards(DatasetLayout(root).mel_dir("vggish"), "part")[0]
    unit = pq.read_schema(shard).field(COL.mel).type.value_type
    assert (unit.list_size, unit.value_type.list_size, unit.value_type.value_type) == (
        96,
        64,
        pa.float32(),
    )
    mel = read_mel(root, "vggish")
    assert list(mel) == ["a", "b", "c"]
    for sample_id, stored in rows.items():
        got = mel[sample_id]
        assert isinstance(got, Mel) and got.units.dtype == np.float32
        np.testing.assert_array_equal(got.units, stored.units)  # (n, 96, 64)
        np.testing.assert_array_equal(got.times_s, stored.times_s)
        units_, _ = got  # a plain tuple too
        assert units_.shape == (len(stored.units), *SHAPE) and units_.flags.writeable


def test_old_flat_shards_still_read_and_a_redone_sample_keeps_its_newest_row(
    tmp_path: Path,
) -> None:
    directory = DatasetLayout(tmp_path).mel_dir("vggish")
    write(directory, old_schema(), {"a": units(2, 0), "b": units(3, 1)})  # shard 0: old layout
    redone, silent = units(4, 9), None
    # the stage keeps a flat folder flat; a folder mixing both (as an older version could leave
    # it) must still read: the nested schema is the one a fresh folder gets
    new = _mel_schema(MEL_RECIPES["vggish"], {}, tmp_path / "fresh")
    write(directory, new, {"b": redone, "quiet": silent})  # shard 1: new layout, b redone
    mel = read_mel(tmp_path, "vggish")
    assert sorted(mel) == ["a", "b", "quiet"]
    np.testing.assert_array_equal(mel["a"].units, units(2, 0).units)
    np.testing.assert_array_equal(mel["b"].units, redone.units)
    assert mel["quiet"].units.shape == (0, *SHAPE)  # a video without sound has no units
    assert [s for s, _ in iter_mel(tmp_path, "vggish")] == ["a", "b", "quiet"]
    # the extractors that read stored units (svm extract) take both layouts too
    recipe = _Recipe(committed_shards(directory, "part"))
    assert recipe.shape == SHAPE
    for sample_id in ("a", "b"):
        got = recipe.units(sample_id)
        assert got is not None
        np.testing.assert_array_equal(got.data, mel[sample_id].units)
    assert recipe.units("quiet") is None


def test_no_recipe_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no Mel units of recipe 'imagebind'; run `svm prep"):
        read_mel(tmp_path, "imagebind")


def test_outside_readers_see_the_unit_shape(
    new_only: tuple[Path, dict[str, MelUnits]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets
    import duckdb
    import pandas as pd
    import polars as pl

    root, rows = new_only
    folder = DatasetLayout(root).mel_dir("vggish")
    frame = pl.read_parquet(folder / "*.parquet")  # polars reads a folder as a glob
    assert frame.schema[COL.mel] == pl.List(pl.Array(pl.Float32, SHAPE))
    np.testing.assert_array_equal(frame[COL.mel][0].to_numpy(), rows["a"].units)
    with duckdb.connect() as con:
        kinds = dict(
            (name, kind)
            for name, kind, *_ in con.execute(
                f"DESCRIBE SELECT * FROM read_parquet('{folder}/*.parquet')"
            ).fetchall()
        )
        assert kinds[COL.mel] == "FLOAT[][][]"
    cell = pd.read_parquet(folder)[COL.mel].iloc[2]
    np.testing.assert_array_equal(np.stack([np.stack(u) for u in cell]), rows["c"].units)
    hf = datasets.load_dataset(
        "parquet", data_dir=str(folder), split="train", cache_dir=str(tmp_path)
    ).with_format("numpy")
    np.testing.assert_array_equal(hf[1][COL.mel], rows["b"].units)
