"""Truncated or damaged committed Parquet files (issue 17, item 7).

A ledger shard, feature shard, fingerprint shard, ``splits.parquet`` or embeddings file cut short
(a full disk, a crash, a copy interrupted) makes every command that reads it exit 2 with a
message naming the file and the repair, never a pyarrow traceback (exit 1).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.io.shards import committed_shards, stats_path
from svm_toolkit.schema import FINGERPRINT_SCHEMA, with_provenance
from svm_toolkit.testing.pairs import write_pairs
from tests.security.test_hostile_ids import (
    AUDIO,
    SMALL,
    VIDEO,
    download_ledger,
    feature_shard,
    preprocess_ledger,
    svm,
    write_shard,
)

EXTRACTOR = "efficientnet_lite0"


def damage(path: Path, how: str = "half") -> Path:
    """Cut ``path`` short (``half``, ``empty``) or overwrite bytes inside it (``flipped``)."""
    data = path.read_bytes()
    if how == "half":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        middle = len(data) // 2
        path.write_bytes(data[:middle] + b"\xff" * 64 + data[middle + 64 :] + b"garbage")
    return path


def refused(code: int, err: str, path: Path, repair: str) -> None:
    """Exit 2, no traceback, the message names the file and says how to repair it."""
    assert code == 2, err
    assert "Traceback" not in err and "ArrowInvalid" not in err
    assert f"{path}: not a readable Parquet file" in err, err
    assert repair in err, err


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "ds", SMALL)


def first_shard(directory: Path, prefix: str = "part") -> Path:
    return committed_shards(directory, prefix)[0]


# -- download, preprocess, extract: the ledgers and data shards their writers reopen ----------


def test_download_and_preprocess_stop_on_a_truncated_download_ledger(
    pairs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shard = damage(download_ledger(pairs, [("pair000000", "media/pa/pair000000.mp4")]))
    repair = f"Delete {shard} and its stats file {stats_path(shard)}, then run `svm download"
    refused(*svm(capsys, "download", pairs), shard, repair)
    refused(*svm(capsys, "preprocess", pairs, "--workers", "1"), shard, repair)


def test_preprocess_stops_on_a_truncated_fingerprint_shard(
    pairs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    download_ledger(pairs, [("pair000000", "media/pa/pair000000.mp4")])
    prints = pairs / "preprocess" / "fingerprints"
    schema = with_provenance(FINGERPRINT_SCHEMA, "preprocess")
    shard = damage(write_shard(prints, "part", schema, [{"sample_id": "pair000000"}]))
    code, err = svm(capsys, "preprocess", pairs, "--workers", "1")
    refused(code, err, shard, f"then run `svm preprocess {pairs}` again")


def test_extract_stops_on_a_truncated_ledger_or_feature_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--extractor", EXTRACTOR, "--device", "cpu")
    root = tmp_path / "ledger" / "ds"
    shard = damage(preprocess_ledger(root, [("good", "media/go/good.mp4")]))
    code, err = svm(capsys, "extract", root, *args)
    refused(code, err, shard, f"then run `svm preprocess {root}` again")

    for folder, prefix in ((Path("features") / EXTRACTOR, "part"), (Path("ledger"), "extract")):
        root = tmp_path / prefix / "ds"
        preprocess_ledger(root, [("good", "media/go/good.mp4")])
        prefix = f"extract_{EXTRACTOR}" if prefix == "extract" else prefix
        table = pa.table({"sample_id": ["good"]})
        shard = damage(write_shard(root / folder, prefix, table.schema, table.to_pylist()))
        code, err = svm(capsys, "extract", root, *args)
        refused(code, err, shard, f"then run `svm extract {root} --extractor {EXTRACTOR}` again")


# -- manifest info, splits, train, evaluate ----------------------------------------------------


def test_manifest_info_stops_on_a_truncated_ledger_or_feature_shard(
    pairs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = download_ledger(pairs, [("pair000000", "media/pa/pair000000.mp4")])
    damage(ledger, "empty")
    refused(*svm(capsys, "manifest", "info", pairs), ledger, f"`svm download {pairs}` again")
    ledger.unlink()
    stats_path(ledger).unlink()  # the repair the message gives: the rest still reads
    code, err = svm(capsys, "manifest", "info", pairs)
    assert code == 0, err

    shard = damage(first_shard(pairs / "features" / AUDIO))
    code, err = svm(capsys, "manifest", "info", pairs)
    refused(code, err, shard, f"`svm extract {pairs} --extractor {AUDIO}` again")


@pytest.mark.parametrize("how", ["half", "empty", "flipped"])
def test_splits_validate_stops_on_a_damaged_splits_file(
    pairs: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    path = damage(pairs / "splits.parquet", how)
    code, err = svm(capsys, "splits", "validate", pairs)
    if how == "flipped" and code != 2:  # bytes inside a page may go unnoticed by zstd: rare
        pytest.skip(f"the flipped bytes were readable: {err}")
    refused(code, err, path, f"Delete {path} and run `svm splits make {pairs}` again")
    path.unlink()  # the repair
    assert svm(capsys, "splits", "make", pairs)[0] == 0
    assert svm(capsys, "splits", "validate", pairs)[0] == 0


def test_splits_stop_on_truncated_feature_fingerprint_and_ledger_shards(
    pairs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shard = damage(first_shard(pairs / "features" / VIDEO))
    repair = f"`svm extract {pairs} --extractor {VIDEO}` again"
    refused(*svm(capsys, "splits", "validate", pairs), shard, repair)
    refused(*svm(capsys, "splits", "make", pairs, "--overwrite"), shard, repair)
    shard.unlink()
    stats_path(shard).unlink()

    prints = pairs / "preprocess" / "fingerprints"
    schema = with_provenance(FINGERPRINT_SCHEMA, "preprocess")
    shard = damage(write_shard(prints, "part", schema, [{"sample_id": "pair000000"}]))
    refused(*svm(capsys, "splits", "make", pairs, "--overwrite"), shard, "`svm preprocess")
    shard.unlink()
    stats_path(shard).unlink()

    ledger = damage(preprocess_ledger(pairs, [("pair000000", "media/pa/pair000000.mp4")]))
    refused(*svm(capsys, "splits", "make", pairs, "--overwrite"), ledger, "`svm preprocess")


@pytest.mark.parametrize("which", ["first feature shard", "second feature shard", "splits"])
def test_train_stops_on_a_truncated_input(
    pairs: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    shards = committed_shards(pairs / "features" / AUDIO, "part")
    assert len(shards) == 2
    target = {
        "first feature shard": shards[0],
        "second feature shard": shards[1],
        "splits": pairs / "splits.parquet",
    }[which]
    damage(target)
    out = pairs.parent / "run"
    code, err = svm(
        capsys, "train", pairs, "--audio", AUDIO, "--video", VIDEO, "--device", "cpu", "-o", out
    )
    repair = "svm splits make" if which == "splits" else f"--extractor {AUDIO}` again"
    refused(code, err, target, repair)
    assert not (out / "best.pt").exists()


def test_evaluate_stops_on_a_truncated_feature_shard_or_embeddings_file(
    pairs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = pairs.parent / "mine.parquet"
    vectors = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    ids = ["s0", "s1", "s2"]
    pq.write_table(pa.table({"sample_id": ids, "video": vectors, "music": vectors}), mine)
    damage(mine)
    refused(*svm(capsys, "evaluate", mine), mine, "Write the file again")

    shard = damage(feature_shard(pairs, VIDEO, "pair999999"))
    code, err = svm(capsys, "evaluate", pairs, "--audio", AUDIO, "--video", VIDEO)
    refused(code, err, shard, f"`svm extract {pairs} --extractor {VIDEO}` again")
