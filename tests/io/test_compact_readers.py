"""Readers that listed a folder's shards before a compaction deleted them (a real compaction).

`read_shards` lists again and reads the merged shard; an export's :class:`FeatureSource`, which
lists once and reads for minutes, says the features changed and to run the command again; neither
tells the user to delete a shard of a healthy dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import svm_toolkit.export.source as source_module
import svm_toolkit.io.shards as shards_module
from svm_toolkit.errors import InputError
from svm_toolkit.export.source import FeatureSource
from svm_toolkit.io.checked import read_table
from svm_toolkit.io.compact import compact
from svm_toolkit.io.shards import committed_shards, read_shards
from tests.io.test_compact import retried_ledger, write_features


def compact_after_first_listing(
    monkeypatch: pytest.MonkeyPatch, module: object, folder: Path, prefix: str
) -> list[list[str]]:
    """Make ``module.committed_shards`` run a real compaction right after its first listing."""
    calls: list[list[str]] = []
    real: Callable[[Path, str], list[Path]] = committed_shards

    compacting: list[bool] = []

    def listing_then_compaction(directory: Path, shard_prefix: str) -> list[Path]:
        listed = real(directory, shard_prefix)
        if compacting:  # the compaction's own listing
            return listed
        calls.append([p.name for p in listed])
        if len(calls) == 1:
            compacting.append(True)
            assert compact(folder, prefix).changed  # the stage run ends and compacts
            compacting.clear()
        return listed

    monkeypatch.setattr(module, "committed_shards", listing_then_compaction)
    return calls


def test_read_shards_lists_again_when_a_compaction_deleted_a_listed_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ledger"
    retried_ledger(folder)
    expected = read_shards(folder, "stage")
    assert expected is not None
    calls = compact_after_first_listing(monkeypatch, shards_module, folder, "stage")
    table = read_shards(folder, "stage")
    assert len(calls) == 2 and len(calls[0]) == 5 and len(calls[1]) < 5  # listed again
    assert table is not None
    assert table.sort_by("sample_id").to_pylist() == expected.sort_by("sample_id").to_pylist()


def test_a_shard_gone_since_it_was_listed_gets_no_delete_this_shard_repair(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "ledger"
    retried_ledger(folder)
    listed = committed_shards(folder, "stage")
    compact(folder, "stage")
    gone = next(p for p in listed if not p.exists())
    with pytest.raises(InputError) as caught:
        read_table(gone)
    message = str(caught.value)
    assert "run the same command again" in message and "compact" in message
    assert "Delete" not in message and "damaged" not in message


def features(tmp_path: Path) -> Path:
    folder = tmp_path / "features" / "x"
    write_features(folder, range(6), 1.0, "a")
    write_features(folder, range(2, 4), 2.0, "b")  # v002, v003 re-extracted: compactable
    return folder


def test_an_export_whose_features_were_compacted_says_to_run_it_again(tmp_path: Path) -> None:
    folder = features(tmp_path)
    src = FeatureSource(folder)  # the export lists and indexes at its start ...
    assert compact(folder, "part").changed  # ... a compaction merges the shards ...
    with pytest.raises(InputError) as caught:  # ... and the export reads on
        src.read(["v000"])
    message = str(caught.value)
    assert "features of 'x' changed during the export" in message
    assert "run the same command again" in message and "Delete" not in message


def test_an_export_indexing_during_a_compaction_lists_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = features(tmp_path)
    calls = compact_after_first_listing(monkeypatch, source_module, folder, "part")
    src = FeatureSource(folder)
    assert len(calls) == 2 and calls[1] != calls[0]  # listed again after the merge
    steps = src.read(["v000", "v003"])
    assert src.shards == committed_shards(folder, "part")
    dim = steps["v000"].values.shape[1]
    first = np.arange(2 * dim, dtype=np.float32).reshape(2, dim)
    np.testing.assert_array_equal(steps["v000"].values, first.astype(np.float16))
    np.testing.assert_array_equal(steps["v003"].values, ((first + 3) * 2).astype(np.float16))
