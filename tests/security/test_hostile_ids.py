"""Hostile ids and paths in the files each stage reads (issue 17, item 1).

A ledger, feature shard, ``splits.parquet``, embeddings file or YT8M record holding
``../../../victim``, an absolute path or a NUL is refused as it is read: the real CLI exits 2
naming the file and the row, and a sentinel folder outside the dataset root is unchanged. (The
manifest and the download stage are tested with their own modules.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.cli import main
from svm_toolkit.io.shards import ShardWriter, committed_shards, write_table_atomic
from svm_toolkit.schema import (
    COL,
    PREPROCESS_FIELDS,
    SPLITS_SCHEMA,
    ledger_schema,
    with_provenance,
)
from svm_toolkit.testing.pairs import PairsSpec, write_pairs
from svm_toolkit.testing.yt8m import synthetic_videos, write_vocabulary, write_yt8m
from svm_toolkit.yt8m import Layout

KINDS = ("parent", "absolute", "nul")
SMALL = PairsSpec(pairs=12, steps=2, audio_steps=1, video_dim=8, audio_dim=4)
VIDEO, AUDIO = SMALL.video, SMALL.audio


def hostile(kind: str, victim: Path) -> str:
    """An id that, used as a path under ``media/ab/``, reaches ``victim`` (or cuts a C string)."""
    ids = {"parent": "../../../victim", "absolute": str(victim), "nul": "ok\x00/../../victim"}
    return ids[kind]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder beside the dataset root that no command may touch."""
    folder = tmp_path / "victim"
    (folder / "inner").mkdir(parents=True)
    (folder / "keep.txt").write_text("mine\n")
    (folder / "inner" / "also.txt").write_text("mine too\n")
    return folder


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``: files with their bytes, folders as ``None``."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def svm(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """Run the ``svm`` CLI in this process as a user would; return its exit code and stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    code = exited.value.code
    return code if isinstance(code, int) else 1, capsys.readouterr().err


def refused(code: int, err: str, path: Path, row: int | None = None) -> None:
    """Exit 2, no traceback, the message names the file (and the row)."""
    assert code == 2, err
    assert "Traceback" not in err
    assert str(path) in err, err
    if row is not None:
        assert f"row {row}:" in err, err


def write_shard(
    directory: Path, prefix: str, schema: pa.Schema, rows: Sequence[Mapping[str, Any]]
) -> Path:
    """Commit ``rows`` as one shard (written as the stages write theirs); return its path."""
    before = set(committed_shards(directory, prefix))
    with ShardWriter(directory, prefix, schema, status_column=None) as writer:
        writer.write(rows)
    (new,) = set(committed_shards(directory, prefix)) - before
    return new


def ledger_row(sample_id: str, stage: str, **extra: Any) -> dict[str, Any]:
    return {
        COL.sample_id: sample_id,
        COL.stage: stage,
        COL.status: "ok",
        COL.attempts: 1,
        COL.started_at: datetime(2026, 1, 1, tzinfo=UTC),
        COL.seconds: 0.1,
        **extra,
    }


def download_ledger(root: Path, rows: Sequence[tuple[str, str]]) -> Path:
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    return write_shard(
        root / "ledger",
        "download",
        schema,
        [ledger_row(sid, "download", media_path=path) for sid, path in rows],
    )


def preprocess_ledger(root: Path, rows: Sequence[tuple[str, str]]) -> Path:
    schema = with_provenance(ledger_schema(*PREPROCESS_FIELDS), "preprocess")
    return write_shard(
        root / "ledger",
        "preprocess",
        schema,
        [
            ledger_row(sid, "preprocess", media_path=path, width=64, height=48, rotation=0)
            for sid, path in rows
        ],
    )


def feature_shard(root: Path, extractor: str, sample_id: str) -> Path:
    """A committed shard of ``extractor`` with one more sample, ``sample_id``."""
    directory = root / "features" / extractor
    first = committed_shards(directory, "part")[0]
    schema = pq.read_schema(first)
    row = pq.read_table(first).slice(0, 1).to_pylist()[0] | {COL.sample_id: sample_id}
    return write_shard(directory, "part", schema, [row])


def rewrite_splits(root: Path, sample_id: str) -> Path:
    """``splits.parquet`` with a second row holding ``sample_id``."""
    path = root / "splits.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows.insert(1, rows[0] | {COL.sample_id: sample_id})
    write_table_atomic(
        pa.Table.from_pylist(rows, schema=with_provenance(SPLITS_SCHEMA, "splits")), path
    )
    return path


# -- preprocess: ids and media paths of the download ledger ----------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_preprocess_refuses_a_hostile_id_in_the_download_ledger(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    root, before = tmp_path / "ds", snapshot(victim)
    shard = download_ledger(
        root, [("good", "media/go/good.mp4"), (hostile(kind, victim), "media/xx/x.mp4")]
    )
    code, err = svm(capsys, "preprocess", root, "--workers", "1")
    refused(code, err, shard, row=1)
    assert "sample id" in err and f"svm download {root}" in err  # the repair
    assert snapshot(victim) == before


@pytest.mark.parametrize(
    "path", ["media/../../victim/keep.txt", "{victim}/keep.txt", "media/ab/x\x00.mp4", "ledger/x"]
)
def test_preprocess_refuses_a_media_path_outside_media(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    root, before = tmp_path / "ds", snapshot(victim)
    shard = download_ledger(
        root, [("good", "media/go/good.mp4"), ("evil", path.format(victim=victim))]
    )
    code, err = svm(capsys, "preprocess", root, "--workers", "1")
    refused(code, err, shard, row=1)
    assert "media_path" in err and "not a file under media/" in err
    assert snapshot(victim) == before


# -- extract: ids and media paths of the preprocess ledger -----------------------------------


def test_extract_refuses_hostile_ids_and_paths_in_the_preprocess_ledger(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(victim)
    for case, row in (
        ("id", (hostile("parent", victim), "media/xx/x.mp4")),
        ("path", ("evil", str(victim / "keep.txt"))),
    ):
        root = tmp_path / case / "ds"
        shard = preprocess_ledger(root, [("good", "media/go/good.mp4"), row])
        code, err = svm(
            capsys, "extract", root, "--extractor", "efficientnet_lite0", "--device", "cpu"
        )
        refused(code, err, shard, row=1)
        assert f"svm preprocess {root}" in err
    assert snapshot(victim) == before


# -- splits, train, evaluate: feature shards, ledgers, splits.parquet, embeddings files -------


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "ds", SMALL)


@pytest.mark.parametrize("kind", KINDS)
def test_splits_make_refuses_a_hostile_id_in_a_feature_shard(
    pairs: Path, victim: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    before = snapshot(victim)
    shard = feature_shard(pairs, VIDEO, hostile(kind, victim))
    code, err = svm(capsys, "splits", "make", pairs, "--overwrite")
    refused(code, err, shard, row=0)
    assert f"svm extract {pairs} --extractor {VIDEO}" in err
    assert snapshot(victim) == before


def test_splits_make_refuses_a_hostile_id_in_a_ledger(
    pairs: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(victim)
    shard = preprocess_ledger(pairs, [("pair000000", "media/pa/pair000000.mp4"), ("..", "m")])
    code, err = svm(capsys, "splits", "make", pairs, "--overwrite")
    refused(code, err, shard, row=1)
    assert snapshot(victim) == before


@pytest.mark.parametrize("kind", KINDS)
def test_splits_validate_refuses_a_hostile_id_in_splits_parquet(
    pairs: Path, victim: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    before = snapshot(victim)
    path = rewrite_splits(pairs, hostile(kind, victim))
    code, err = svm(capsys, "splits", "validate", pairs)
    refused(code, err, path, row=1)
    assert f"svm splits make {pairs}" in err
    assert snapshot(victim) == before


@pytest.mark.parametrize("where", ["features", "splits"])
def test_train_refuses_hostile_ids(
    pairs: Path, victim: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    before = snapshot(victim)
    evil = hostile("parent", victim)
    path = feature_shard(pairs, AUDIO, evil) if where == "features" else rewrite_splits(pairs, evil)
    out = pairs.parent / "run"
    code, err = svm(
        capsys, "train", pairs, "--audio", AUDIO, "--video", VIDEO, "--device", "cpu", "-o", out
    )
    refused(code, err, path, row=0 if where == "features" else 1)
    assert snapshot(victim) == before
    assert not (out / "best.pt").exists()


def test_evaluate_refuses_hostile_ids_in_an_embeddings_file_and_in_features(
    pairs: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(victim)
    mine = pairs.parent / "mine.parquet"
    ids = ["s0", hostile("nul", victim), "s2"]
    vectors = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    pq.write_table(pa.table({"sample_id": ids, "video": vectors, "music": vectors}), mine)
    code, err = svm(capsys, "evaluate", mine)
    refused(code, err, mine, row=1)

    shard = feature_shard(pairs, VIDEO, hostile("absolute", victim))
    code, err = svm(capsys, "evaluate", pairs, "--audio", AUDIO, "--video", VIDEO)
    refused(code, err, shard, row=0)
    assert snapshot(victim) == before


# -- YouTube-8M: record ids and the resolve ledger -------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_yt8m_refuses_a_hostile_record_id(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    before = snapshot(victim)
    videos = synthetic_videos(3, labels=lambda i: (14,), seconds=1)
    videos[1] = dataclasses.replace(videos[1], yt8m_id=hostile(kind, victim))
    records = write_yt8m(tmp_path / "frame" / "train0000.tfrecord", videos, layout=Layout.FRAME)
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", {14: "Music video"})
    root = tmp_path / "ds"
    code, err = svm(
        capsys, "manifest", "yt8m", records, "--vocabulary", vocab, "--features", "-o", root
    )
    assert code == 2 and "Traceback" not in err
    assert f"{records.name}: record 1 (byte offset " in err  # file and record
    assert "cannot be used" in err
    assert snapshot(victim) == before
    assert not (root / "manifest.parquet").exists()


def test_manifest_yt8m_refuses_a_hostile_id_in_the_resolve_ledger(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(victim)
    videos = synthetic_videos(2, labels=lambda i: (14,), seconds=1)
    records = write_yt8m(tmp_path / "video" / "train0000.tfrecord", videos, layout=Layout.VIDEO)
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", {14: "Music video"})
    root = tmp_path / "ds"
    schema = with_provenance(ledger_schema(pa.field(COL.youtube_id, pa.string())), "resolve")
    evil = ledger_row(hostile("parent", victim), "resolve", youtube_id="dQw4w9WgXcQ")
    shard = write_shard(root / "ledger", "resolve", schema, [ledger_row("abcd", "resolve"), evil])
    code, err = svm(
        capsys,
        "manifest", "yt8m", records, "--vocabulary", vocab, "-o", root,
        "--resolve", "--lookup-base", "http://127.0.0.1:9",
    )  # fmt: skip
    refused(code, err, shard, row=1)
    assert snapshot(victim) == before
