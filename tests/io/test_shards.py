from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from svm_toolkit.errors import BusyError
from svm_toolkit.io.shards import (
    ShardLimits,
    ShardWriter,
    committed_shards,
    read_shards,
    stats_path,
)
from svm_toolkit.schema import read_provenance, with_provenance

SCHEMA = with_provenance(
    pa.schema(
        [
            pa.field("sample_id", pa.string(), nullable=False),
            ("status", pa.string()),
            ("value", pa.int64()),
        ]
    ),
    "test",
)


def rows(ids: range, status: str = "ok") -> list[dict[str, object]]:
    return [{"sample_id": f"s{i:04d}", "status": status, "value": i} for i in ids]


def test_shards_are_bounded_by_rows_and_committed_with_stats(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "stage", SCHEMA, limits=ShardLimits(max_rows=4)) as writer:
        writer.write(rows(range(10)))
    shards = committed_shards(tmp_path, "stage")
    assert [p.name for p in shards] == [
        "stage-00000.parquet",
        "stage-00001.parquet",
        "stage-00002.parquet",
    ]
    assert [pq.read_metadata(p).num_rows for p in shards] == [4, 4, 2]
    stats = json.loads(stats_path(shards[0]).read_text())
    assert stats["rows"] == 4 and stats["by_status"] == {"ok": 4}
    assert pq.read_schema(shards[0]).equals(SCHEMA, check_metadata=True)
    assert read_provenance(pq.read_schema(shards[0]))["stage"] == "test"
    # Outside readers see only the shards: stats and temp files live under hidden names.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        p.name for p in shards
    ]
    assert stats_path(shards[0]) == tmp_path / ".stats" / "stage-00000.json"
    assert sorted(p.name for p in (tmp_path / ".stats").iterdir()) == [
        "stage-00000.json",
        "stage-00001.json",
        "stage-00002.json",
    ]
    assert stats["bytes"] == shards[0].stat().st_size
    assert not list(tmp_path.rglob("*.tmp"))


def test_shards_are_bounded_by_bytes(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "stage", SCHEMA, limits=ShardLimits(max_bytes=300)) as writer:
        writer.write(rows(range(40)))
    shards = committed_shards(tmp_path, "stage")
    assert len(shards) > 1
    assert sum(pq.read_metadata(p).num_rows for p in shards) == 40


def test_reopen_skips_done_ids_and_continues_numbering(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        assert writer.done_ids == frozenset()
        writer.write(rows(range(5)))
    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        assert writer.done_ids == {f"s{i:04d}" for i in range(5)}
        writer.write(rows(range(5, 8)))
    assert [p.name for p in committed_shards(tmp_path, "stage")] == [
        "stage-00000.parquet",
        "stage-00001.parquet",
    ]
    table = read_shards(tmp_path, "stage")
    assert table is not None and table.column("sample_id").to_pylist() == [
        f"s{i:04d}" for i in range(8)
    ]


def test_read_shards_keeps_the_latest_row_of_a_retried_id(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        writer.write(rows(range(3), status="rate_limited"))
    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        writer.write(rows(range(1), status="ok"))
    latest = read_shards(tmp_path, "stage")
    assert latest is not None
    assert dict(
        zip(latest["sample_id"].to_pylist(), latest["status"].to_pylist(), strict=True)
    ) == {
        "s0001": "rate_limited",
        "s0002": "rate_limited",
        "s0000": "ok",
    }
    everything = read_shards(tmp_path, "stage", latest=False)
    assert everything is not None and everything.num_rows == 4
    assert read_shards(tmp_path / "nothing", "stage") is None


def test_rows_written_before_an_error_are_committed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        writer.write(rows(range(3)))
        raise RuntimeError("stage crashed")
    table = read_shards(tmp_path, "stage")
    assert table is not None and table.num_rows == 3


def test_abort_drops_buffered_rows(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, "stage", SCHEMA).open()
    writer.write(rows(range(3)))
    writer.abort()
    assert committed_shards(tmp_path, "stage") == []


def test_one_writer_per_directory_and_prefix(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "stage", SCHEMA):
        with pytest.raises(BusyError, match="another svm process"):
            ShardWriter(tmp_path, "stage", SCHEMA).open()
        with ShardWriter(tmp_path, "other", SCHEMA) as other:  # another prefix is fine
            other.write(rows(range(1)))


def test_writing_an_id_twice_is_a_bug(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        writer.write(rows(range(2)))
        with pytest.raises(ValueError, match="written twice"):
            writer.write(rows(range(1, 3)))


def test_leftovers_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        writer.write(rows(range(2)))
    partial = pa.Table.from_pylist(rows(range(2, 4)), schema=SCHEMA)
    pq.write_table(partial, tmp_path / ".stage-00001.parquet.tmp")  # killed before its stats
    (tmp_path / ".stats" / "stage-00002.json").write_text("{}")  # killed before the rename
    (tmp_path / ".stats" / ".stage-00003.json.tmp").write_text("{")
    (tmp_path / ".other-00000.parquet.tmp").write_bytes(b"another prefix's")
    (tmp_path / ".stage-x-00000.parquet.tmp").write_bytes(b"prefix 'stage-x'")
    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        assert writer.done_ids == {"s0000", "s0001"}
        writer.write(rows(range(2, 3)))
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == [
        ".other-00000.parquet.tmp",
        ".stage-x-00000.parquet.tmp",
        ".stats",
        "stage-00000.parquet",
        "stage-00001.parquet",
    ]
    assert sorted(p.name for p in (tmp_path / ".stats").iterdir()) == [
        "stage-00000.json",
        "stage-00001.json",
    ]


def legacy_folder(directory: Path) -> None:
    """Rewrite a folder the way the old layout left it: ``<stem>_stats.json`` beside shards."""
    for stats in (directory / ".stats").iterdir():
        stats.rename(directory / stats.name.replace(".json", "_stats.json"))
    (directory / ".stats").rmdir()


def test_old_layout_still_reads_and_its_stats_move_to_the_new_layout(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "stage", SCHEMA, limits=ShardLimits(max_rows=2)) as writer:
        writer.write(rows(range(4)))
    legacy_folder(tmp_path)
    old = committed_shards(tmp_path, "stage")
    assert [p.name for p in old] == ["stage-00000.parquet", "stage-00001.parquet"]
    assert stats_path(old[0]) == tmp_path / "stage-00000_stats.json"
    assert json.loads(stats_path(old[0]).read_text())["rows"] == 2
    with pytest.raises(pa.ArrowInvalid):  # the issue: outside readers stop on the sidecars
        pads.dataset(tmp_path).to_table()
    # What a killed old writer left: a shard renamed without its stats, old temp names.
    pq.write_table(
        pa.Table.from_pylist(rows(range(4, 6)), schema=SCHEMA), tmp_path / "stage-00002.parquet"
    )
    (tmp_path / "stage-00003.parquet.tmp").write_bytes(b"partial")
    (tmp_path / "stage-00003_stats.json.tmp").write_text("{")
    assert len(committed_shards(tmp_path, "stage")) == 2  # the shard without stats is not done

    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        assert writer.done_ids == {f"s{i:04d}" for i in range(4)}
        writer.write(rows(range(4, 6)))
    shards = committed_shards(tmp_path, "stage")
    assert [p.name for p in shards] == [f"stage-0000{i}.parquet" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        p.name for p in shards
    ]
    assert [stats_path(p) for p in shards] == [
        tmp_path / ".stats" / f"stage-0000{i}.json" for i in range(3)
    ]
    assert json.loads(stats_path(shards[0]).read_text())["rows"] == 2  # moved as it was
    table = read_shards(tmp_path, "stage")
    assert table is not None and table.column("value").to_pylist() == list(range(6))
    assert pads.dataset(tmp_path).to_table().num_rows == 6  # now outside readers open it


def test_the_old_repair_leftover_is_removed(tmp_path: Path) -> None:
    # The old repair message deleted a damaged shard and its sidecar; one who deleted only the
    # shard left the sidecar, which outside readers stop on: the writer removes it.
    with ShardWriter(tmp_path, "stage", SCHEMA, limits=ShardLimits(max_rows=2)) as writer:
        writer.write(rows(range(4)))
    legacy_folder(tmp_path)
    (tmp_path / "stage-00001.parquet").unlink()
    with ShardWriter(tmp_path, "stage", SCHEMA) as writer:
        assert writer.done_ids == {"s0000", "s0001"}
    assert not (tmp_path / "stage-00001_stats.json").exists()
    assert sorted(p.name for p in (tmp_path / ".stats").iterdir()) == ["stage-00000.json"]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import svm_toolkit.io.shards as shards
    sys.path.insert(0, sys.argv[2])
    from test_shards import SCHEMA, rows

    real, calls = shards._write_stats, []
    def write_stats_then_die(path, stats):
        calls.append(path)
        if len(calls) == int(sys.argv[3]) and sys.argv[4] == "before":
            os.kill(os.getpid(), signal.SIGKILL)  # the shard is written, its stats are not
        real(path, stats)
        if len(calls) == int(sys.argv[3]) and sys.argv[4] == "after":
            os.kill(os.getpid(), signal.SIGKILL)  # the stats are written, the shard is hidden
    shards._write_stats = write_stats_then_die

    limits = shards.ShardLimits(max_rows=3)
    with shards.ShardWriter(Path(sys.argv[1]), "stage", SCHEMA, limits=limits) as w:
        todo = [r for r in rows(range(10)) if r["sample_id"] not in w.done_ids]
        for i in range(0, len(todo), 2):
            w.write(todo[i : i + 2])
    """
)


@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_mid_shard_then_resumed_equals_an_uninterrupted_run(
    tmp_path: Path, when: str
) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    here = str(Path(__file__).parent)
    run = subprocess.run([sys.executable, str(script), str(killed), here, "2", when], check=False)
    assert run.returncode == -9

    # The second shard was written but never renamed into place: nobody sees it.
    assert (killed / ".stage-00001.parquet.tmp").exists()
    assert (killed / ".stats" / "stage-00001.json").exists() == (when == "after")
    assert sorted(p.name for p in killed.glob("*.parquet")) == ["stage-00000.parquet"]
    assert [p.name for p in committed_shards(killed, "stage")] == ["stage-00000.parquet"]

    resumed = subprocess.run(
        [sys.executable, str(script), str(killed), here, "0", when], check=False
    )
    assert resumed.returncode == 0
    subprocess.run([sys.executable, str(script), str(clean), here, "0", when], check=True)

    got, want = (
        read_shards(killed, "stage", latest=False),
        read_shards(clean, "stage", latest=False),
    )
    assert got is not None and want is not None
    assert sorted(got.to_pylist(), key=str) == sorted(want.to_pylist(), key=str)
    assert got.num_rows == 10  # every id exactly once
    assert not list(killed.rglob("*.tmp"))
    assert sorted(p.name for p in (killed / ".stats").iterdir()) == sorted(
        p.name for p in (clean / ".stats").iterdir()
    )
