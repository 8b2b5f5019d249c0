"""Compaction: one row per sample (the newest), kill-safe at every step, real Parquet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from svm_toolkit.cli import cli
from svm_toolkit.errors import BusyError
from svm_toolkit.io.compact import (
    PAUSE_ENV,
    compact,
    compact_writers,
    limits_for,
    plan_path,
    shard_sets,
)
from svm_toolkit.io.shards import (
    ShardLimits,
    ShardWriter,
    committed_shards,
    read_shards,
    stats_path,
)
from svm_toolkit.schema import COL, feature_schema, read_provenance, with_provenance

LEDGER = pa.schema(
    [
        pa.field(COL.sample_id, pa.string(), nullable=False),
        (COL.status, pa.string()),
        ("value", pa.int64()),
    ]
)
DIM = 8


def ledger_rows(ids: range, status: str, value: int) -> list[dict[str, object]]:
    return [{COL.sample_id: f"s{i:03d}", COL.status: status, "value": value} for i in ids]


def write_ledger(folder: Path, run: str, ids: range, status: str, value: int) -> None:
    """One stage run: a writer session with its own provenance, 4 rows per shard."""
    schema = with_provenance(LEDGER, "test", {"run": run})
    with ShardWriter(folder, "stage", schema, limits=ShardLimits(max_rows=4)) as writer:
        writer.write(ledger_rows(ids, status, value))


def retried_ledger(folder: Path) -> None:
    """10 samples; s002-s004 retried once, s003 twice (each retry a new run)."""
    write_ledger(folder, "first", range(10), "timeout", 0)  # shards 0-2: 4 + 4 + 2 rows
    write_ledger(folder, "retry", range(2, 5), "ok", 1)  # shard 3
    write_ledger(folder, "again", range(3, 4), "ok", 2)  # shard 4


def names(folder: Path, prefix: str = "stage") -> list[str]:
    return [p.name for p in committed_shards(folder, prefix)]


def newest(folder: Path, prefix: str = "stage") -> list[dict[str, object]]:
    table = read_shards(folder, prefix)
    assert table is not None
    return sorted(table.to_pylist(), key=lambda r: str(r[COL.sample_id]))


def outside_ids(folder: Path, prefix: str = "stage") -> list[str]:
    """What pyarrow.dataset sees in the folder (one prefix), as a user reads it."""
    files = sorted(str(p) for p in folder.glob(f"{prefix}-*.parquet"))
    return sorted(pads.dataset(files).to_table(columns=[COL.sample_id])[0].to_pylist())


def test_each_sample_keeps_its_newest_row_and_untouched_shards_stay(tmp_path: Path) -> None:
    retried_ledger(tmp_path)
    expected = newest(tmp_path)
    first, kept = (tmp_path / f"stage-0000{i}.parquet" for i in (0, 2))
    inode = kept.stat().st_ino
    assert len(outside_ids(tmp_path)) == 14  # what outside readers counted before

    result = compact(tmp_path, "stage")

    assert (result.rows_before, result.rows_after) == (14, 10)
    assert result.describe(tmp_path.parent) == f"compacted {tmp_path.name}/stage: 14 -> 10 rows"
    assert newest(tmp_path) == expected
    assert outside_ids(tmp_path) == [f"s{i:03d}" for i in range(10)]
    # Shard 0 (s000-s003) and 3 (s002-s004) held superseded rows, shard 1 (s004-s007) too;
    # shard 2 (s008-s009) and the newest (4) are kept as they are; new shards come after.
    assert names(tmp_path) == [
        "stage-00002.parquet",
        "stage-00004.parquet",
        "stage-00005.parquet",
        "stage-00006.parquet",
    ]
    assert result.shards_deleted == 3 and result.shards_written == 2
    assert not first.exists() and not plan_path(tmp_path, "stage").exists()
    assert kept.stat().st_ino == inode  # not rewritten
    # Each new shard keeps the schema and provenance of the run its rows came from.
    runs = {
        p.name: read_provenance(pq.read_schema(p))["config"]["run"]
        for p in committed_shards(tmp_path, "stage")
    }
    assert runs == {
        "stage-00002.parquet": "first",
        "stage-00004.parquet": "again",
        "stage-00005.parquet": "first",
        "stage-00006.parquet": "retry",
    }
    for shard in committed_shards(tmp_path, "stage"):
        stats = json.loads(stats_path(shard).read_text())
        assert stats["rows"] == pq.read_metadata(shard).num_rows
        table = pq.read_table(shard)
        assert sum(stats["by_status"].values()) == table.num_rows
        assert pq.read_schema(shard).equals(table.schema, check_metadata=True)
    assert sorted(p.name for p in (tmp_path / ".stats").iterdir()) == sorted(
        f"{Path(n).stem}.json" for n in names(tmp_path)
    )
    assert not list(tmp_path.rglob("*.tmp"))
    # A second compaction finds nothing to do; a writer reopened continues the numbering.
    assert not compact(tmp_path, "stage").changed
    with ShardWriter(tmp_path, "stage", LEDGER) as writer:
        assert len(writer.done_ids) == 10
        writer.write(ledger_rows(range(1), "ok", 3))
    assert names(tmp_path)[-1] == "stage-00007.parquet"


def test_nothing_is_written_without_duplicates(tmp_path: Path) -> None:
    write_ledger(tmp_path, "first", range(6), "ok", 0)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    result = compact(tmp_path, "stage")
    assert not result.changed and result.rows_before == result.rows_after == 6
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert not compact(tmp_path / "absent", "stage").changed
    assert not (tmp_path / "absent").exists()  # never creates a folder


def test_a_shard_whose_rows_are_all_superseded_is_only_deleted(tmp_path: Path) -> None:
    write_ledger(tmp_path, "first", range(4), "timeout", 0)
    write_ledger(tmp_path, "retry", range(4), "ok", 1)
    result = compact(tmp_path, "stage")
    assert (result.shards_deleted, result.shards_written) == (1, 0)
    assert names(tmp_path) == ["stage-00001.parquet"]
    assert [r["value"] for r in newest(tmp_path)] == [1, 1, 1, 1]


def write_features(folder: Path, ids: range, scale: float, run: str) -> None:
    schema = with_provenance(
        feature_schema(DIM, sequence=True, pooled=True), "extract", {"run": run}
    )
    limits = limits_for(folder, schema)
    rows = []
    for i in ids:
        steps = (np.arange(2 * DIM, dtype=np.float32).reshape(2, DIM) + i) * scale
        rows.append(
            {
                COL.sample_id: f"v{i:03d}",
                COL.embeddings: steps.astype(np.float16).tolist(),
                COL.timestamps_s: [0.0, 1.0],
                COL.embedding: steps.mean(0).astype(np.float16).tolist(),
            }
        )
    with ShardWriter(folder, "part", schema, status_column=None, limits=limits) as writer:
        writer.write(rows)


def test_feature_vectors_keep_float16_and_their_encodings(tmp_path: Path) -> None:
    folder = tmp_path / "features" / "x"
    write_features(folder, range(6), 1.0, "first")
    write_features(folder, range(3), 0.5, "redo")
    expected = read_shards(folder, "part")
    assert expected is not None and pads.dataset(folder).count_rows() == 9

    assert compact(folder, "part").rows_after == 6

    assert pads.dataset(folder).count_rows() == 6  # the folder as it is
    got = read_shards(folder, "part", latest=False)
    assert got is not None
    mine = {r[COL.sample_id]: r for r in got.to_pylist()}
    for row in expected.to_pylist():
        assert mine[row[COL.sample_id]] == row
    assert got.schema.field(COL.embedding).type == pa.list_(pa.float16(), DIM)
    for shard in committed_shards(folder, "part"):
        meta = pq.ParquetFile(shard).metadata.row_group(0)
        for i in range(meta.num_columns):
            column = meta.column(i)
            vector = column.path_in_schema.startswith((f"{COL.embeddings}.", f"{COL.embedding}."))
            if vector:
                assert "PLAIN" in column.encodings
                assert not column.is_stats_set and "RLE_DICTIONARY" not in column.encodings
            assert column.compression == "ZSTD"


KILLED = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from svm_toolkit.io.compact import compact
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    compact(Path(sys.argv[1]), "stage")
    """
)


def kill_when_paused(args: list[str], step: str, *, cwd: Path | None = None) -> None:
    """Run ``python -c ARGS...`` and SIGKILL it once its compaction pauses at ``step``."""
    child = subprocess.Popen(
        [sys.executable, "-c", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, PAUSE_ENV: step},
        cwd=cwd,
    )
    assert child.stderr is not None
    try:
        for line in child.stderr:
            if f"compaction paused at {step}" in line:
                break
        else:
            raise AssertionError(f"the child ended before {step}: rc {child.wait()}")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)


def kill_at(folder: Path, step: str) -> None:
    """Run a compaction in a child process and SIGKILL it when it reaches ``step``."""
    kill_when_paused([KILLED, str(folder)], step)


@pytest.mark.parametrize("step", ["written", "planned", "deleting"])
def test_a_compaction_killed_at_each_step_loses_no_row(tmp_path: Path, step: str) -> None:
    retried_ledger(tmp_path)
    expected = newest(tmp_path)
    every = [f"s{i:03d}" for i in range(10)]

    kill_at(tmp_path, step)

    # At the kill: every sample is still in the folder as outside readers see it (some twice),
    # and our reader's newest rows are unchanged.
    seen = outside_ids(tmp_path)
    assert sorted(set(seen)) == every and len(seen) > len(every)
    assert newest(tmp_path) == expected
    assert plan_path(tmp_path, "stage").exists() == (step != "written")

    result = compact(tmp_path, "stage")  # rolls the plan forward, then compacts what is left
    assert result.resumed == (step != "written")
    assert outside_ids(tmp_path) == every
    assert newest(tmp_path) == expected
    assert not plan_path(tmp_path, "stage").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    stats = sorted(p.stem for p in (tmp_path / ".stats").glob("stage-*.json"))
    assert stats == [Path(n).stem for n in names(tmp_path)]


def test_a_stage_run_between_a_kill_and_the_next_compaction_keeps_its_rows(
    tmp_path: Path,
) -> None:
    retried_ledger(tmp_path)
    kill_at(tmp_path, "planned")
    write_ledger(tmp_path, "later", range(0, 10, 3), "ok", 9)  # a retry before the roll-forward
    expected = newest(tmp_path)
    assert [r["value"] for r in expected if r[COL.sample_id] == "s003"] == [9]
    compact(tmp_path, "stage")
    assert newest(tmp_path) == expected
    assert outside_ids(tmp_path) == [f"s{i:03d}" for i in range(10)]


def test_a_plan_that_is_not_ours_is_ignored(tmp_path: Path) -> None:
    retried_ledger(tmp_path)
    expected = newest(tmp_path)
    plan = plan_path(tmp_path, "stage")
    plan.write_text(json.dumps({"delete": ["../../etc/passwd"], "written": []}))
    assert compact(tmp_path, "stage").rows_after == 10
    assert newest(tmp_path) == expected and not plan.exists()
    retried_ledger(tmp_path)
    plan.write_text('{"delete": ')  # cut short
    assert compact(tmp_path, "stage").rows_after == 10 and not plan.exists()


def test_a_folder_being_written_is_busy(tmp_path: Path) -> None:
    retried_ledger(tmp_path)
    with ShardWriter(tmp_path, "stage", LEDGER) as writer:
        with pytest.raises(BusyError):
            compact(tmp_path, "stage")
        assert compact_writers(tmp_path, [writer]) == []  # left to the writer's own run
    assert compact_writers(tmp_path.parent, [writer])[0].rows_after == 10


def test_shard_sets_finds_every_folder_of_a_dataset(tmp_path: Path) -> None:
    write_ledger(tmp_path / "ledger", "a", range(2), "ok", 0)
    write_features(tmp_path / "features" / "x", range(2), 1.0, "a")
    write_features(tmp_path / "preprocess" / "mel_y", range(2), 1.0, "a")
    write_features(tmp_path / "runs" / "r", range(2), 1.0, "a")  # not a dataset folder
    write_features(tmp_path / "media" / "ab", range(2), 1.0, "a")
    (tmp_path / "ledger" / "other-00000.parquet").write_bytes(b"uncommitted")
    assert shard_sets(tmp_path) == [
        (tmp_path / "features" / "x", "part"),
        (tmp_path / "ledger", "stage"),
        (tmp_path / "preprocess" / "mel_y", "part"),
    ]
    assert limits_for(tmp_path / "preprocess" / "mel_y", LEDGER).max_bytes == 256 * 2**20


def test_svm_compact_prints_one_line_per_folder_changed(tmp_path: Path) -> None:
    retried_ledger(tmp_path / "ledger")
    write_features(tmp_path / "features" / "x", range(4), 1.0, "a")
    write_features(tmp_path / "features" / "x", range(2), 2.0, "b")
    write_features(tmp_path / "features" / "y", range(4), 1.0, "a")
    runner = CliRunner()
    first = runner.invoke(cli, ["compact", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        "compacted features/x: 6 -> 4 rows",
        "compacted ledger/stage: 14 -> 10 rows",
    ]
    again = runner.invoke(cli, ["compact", str(tmp_path)])
    assert again.exit_code == 0
    assert again.output == "nothing to compact: 3 shard sets hold one row per sample\n"


def test_a_folder_of_the_old_layout_is_compacted_into_the_new(tmp_path: Path) -> None:
    retried_ledger(tmp_path)
    for stats in (tmp_path / ".stats").glob("stage-*.json"):  # stats beside the shards
        stats.rename(tmp_path / f"{stats.stem}_stats.json")
    expected = newest(tmp_path)
    assert compact(tmp_path, "stage").rows_after == 10
    assert newest(tmp_path) == expected
    assert names(tmp_path) == [f"stage-0000{i}.parquet" for i in (2, 4, 5, 6)]
    assert not list(tmp_path.glob("stage-0000[013]*"))  # the old shards went with their stats
    assert (tmp_path / ".stats" / "stage-00005.json").exists()  # new shards: the new layout
    assert outside_ids(tmp_path) == [f"s{i:03d}" for i in range(10)]
