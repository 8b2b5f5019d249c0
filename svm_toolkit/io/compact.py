"""Compaction: one row per sample in a shard folder, for readers that do not apply our rules.

Shards only grow: a retried sample gets a new row in a newer shard, and "the newest row of a
sample wins" is a rule only :func:`~svm_toolkit.io.shards.read_shards` applies. pandas,
``pyarrow.dataset``, polars, DuckDB and Hugging Face ``datasets`` count every row. Compaction
rewrites a folder's shards so that each sample appears once, keeping exactly the row
``read_shards(latest=True)`` chooses:

1. Under the writers' lock (a :class:`~svm_toolkit.io.shards.ShardWriter` is opened for the
   folder and prefix, which also removes what a killed writer left, and reads every committed
   id): as many distinct ids as rows (Parquet footers) means nothing to do, and nothing more is
   read. Otherwise read the id column of every shard and find the superseded rows (an id's rows
   before its last one, in shard then row order).
2. A shard without superseded rows is kept as it is; a shard whose rows are all superseded is
   only deleted; the kept rows of the other shards are copied, 1,024 at a time, into new shards
   numbered after the last one (written hidden and committed as any shard is: stats first, then
   the rename). Each new shard takes the schema and provenance of the shards its rows came from
   (shards of different runs are not merged into one) and the writer's limits and encodings.
3. The plan (``.stats/<prefix>.compact.json``: the shards to delete and the shards written) is
   written atomically, then the old shards are deleted (each shard before its stats), then the
   plan.

A compaction killed at any point loses no row: before the plan, the new shards are copies of
rows that are still the newest where they were (a reader that keeps the newest row sees the
same rows; a later compaction drops the originals); after it, the next compaction (at the end of
the next run of a stage that writes the folder, or ``svm compact``) rolls the plan forward
first. Between the commit of the new shards and the deletion of the old ones, an outside reader
can count a kept row twice; no sample's row is ever absent from the folder.

Memory: the ids of the whole folder, 1,024 rows being copied and the writer's buffer (bounded
by its :class:`~svm_toolkit.io.shards.ShardLimits`: 20,000 rows or 128 MiB for features).
Measured (2 cores): a 450 MB feature folder of 200,000 rows of 1280-d float16 vectors, 40,000
of them superseded in all 8 of its full shards, compacts in 6.2 s at a peak RSS of 395 MiB
(117 MiB of it the interpreter and pyarrow); a 1,000,000-row ledger of 200 shards with no id
twice is checked in 0.65 s (the cost added to the end of every stage run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from svm_toolkit.errors import BusyError
from svm_toolkit.io.atomic import atomic_path, fsync_dir
from svm_toolkit.io.checked import LEDGER_SHARD, READ_ERRORS, read_schema, read_table, unreadable
from svm_toolkit.io.paths import id_problem
from svm_toolkit.io.shards import (
    STATS_DIR,
    ShardLimits,
    ShardWriter,
    committed_shards,
    legacy_stats_path,
    new_stats_path,
)
from svm_toolkit.schema import COL

logger = logging.getLogger(__name__)

PLAN_SUFFIX: Final = ".compact.json"
"""The plan of a compaction is ``<folder>/.stats/<prefix>.compact.json`` (hidden, like stats)."""
PAUSE_ENV: Final = "SVM_TEST_COMPACT_PAUSE"
"""Test hook: a step name (``written``, ``planned``, ``deleting``) at which compaction logs
``compaction paused at <step>`` and sleeps, so a test can kill the process there."""
_STEPS: Final = ("written", "planned", "deleting")
COPY_BATCH_ROWS: Final = 1_024
"""Rows read at a time from a shard being rewritten (bounds the copy's memory besides the
writer's buffer)."""
#: Folders never searched for shard sets by :func:`shard_sets` (media files, training runs).
_SKIPPED_FOLDERS: Final = frozenset({"media", "runs"})

__all__ = [
    "PLAN_SUFFIX",
    "CompactResult",
    "compact",
    "compact_dataset",
    "compact_writers",
    "limits_for",
    "plan_path",
    "shard_sets",
]


@dataclass(frozen=True, slots=True)
class CompactResult:
    """What one compaction of a folder's shards did.

    Attributes:
        directory: the shard folder.
        prefix: the shard name prefix.
        rows_before: committed rows before (after rolling forward a killed compaction's plan).
        rows_after: committed rows after: one per sample when anything was compacted.
        shards_deleted: old shards deleted (those of a rolled-forward plan included).
        shards_written: new shards written.
        resumed: a killed compaction's plan was rolled forward.
    """

    directory: Path
    prefix: str
    rows_before: int = 0
    rows_after: int = 0
    shards_deleted: int = 0
    shards_written: int = 0
    resumed: bool = False

    @property
    def changed(self) -> bool:
        """Whether any shard was deleted or written."""
        return bool(self.shards_deleted or self.shards_written)

    def describe(self, root: Path | None = None) -> str:
        """One line, e.g. ``compacted features/x: 170 -> 85 rows``.

        Args:
            root: the dataset root the folder is named relative to (``None``: as given).
        """
        folder = self.directory
        if root is not None:
            with contextlib.suppress(ValueError):
                folder = self.directory.relative_to(root)
        name = folder.as_posix() if self.prefix == "part" else f"{folder.as_posix()}/{self.prefix}"
        line = f"compacted {name}: {self.rows_before:,} -> {self.rows_after:,} rows"
        if self.resumed:
            line += " (finished an interrupted compaction)"
        return line


def plan_path(directory: Path, prefix: str) -> Path:
    """Return where a compaction of ``prefix`` keeps its plan: ``.stats/<prefix>.compact.json``."""
    return Path(directory) / STATS_DIR / f"{prefix}{PLAN_SUFFIX}"


def limits_for(directory: Path, schema: pa.Schema) -> ShardLimits:
    """The limits and encodings the stage writing a folder uses, from its schema and name.

    Feature folders (vector columns): 20,000 rows, vectors PLAIN without statistics; Mel folders
    (``preprocess/mel_*``): 5,000 rows and 256 MiB; fingerprints: 20,000 rows; ledgers and
    anything else: 5,000 rows. Mirrors the limits in the stages' runners.
    """
    vectors = tuple(c for c in (COL.embeddings, COL.embedding) if c in schema.names)
    if vectors:
        return ShardLimits(max_rows=20_000, vector_columns=vectors)
    name = Path(directory).name
    if name.startswith("mel_"):
        return ShardLimits(max_rows=5_000, max_bytes=256 * 2**20)
    if name == "fingerprints":
        return ShardLimits(max_rows=20_000)
    return ShardLimits(max_rows=5_000)


def compact(
    directory: Path,
    prefix: str,
    *,
    id_column: str = COL.sample_id,
    limits: ShardLimits | None = None,
) -> CompactResult:
    """Rewrite a folder's shards of ``prefix`` so that each id appears once (the newest row).

    Finishes a killed compaction first (its plan). Writes nothing when no id appears twice.

    Args:
        directory: the shard folder.
        prefix: the shard name prefix (``part``, or a ledger's stage).
        id_column: the key column.
        limits: the new shards' limits and encodings (``None``: :func:`limits_for`).

    Returns:
        What was done.

    Raises:
        BusyError: another process is writing (or compacting) these shards.
        InputError: a committed shard is truncated or damaged, or holds an unsafe id.
    """
    directory = Path(directory)
    if not committed_shards(directory, prefix) and not plan_path(directory, prefix).exists():
        return CompactResult(directory, prefix)  # never create a folder that is not there
    placeholder = pa.schema([pa.field(id_column, pa.string())])
    writer = ShardWriter(directory, prefix, placeholder, id_column=id_column, status_column=None)
    writer.open()  # the lock, for the whole compaction; removes a killed writer's leftovers
    try:
        resumed = _roll_forward(directory, prefix)
        result = _compact_locked(writer, limits, resumed=bool(resumed))
    except BaseException:
        writer.abort()
        raise
    writer.close()  # nothing is buffered: releases the lock
    return dataclasses.replace(
        result, resumed=bool(resumed), shards_deleted=result.shards_deleted + resumed
    )


def compact_writers(root: Path, writers: Iterable[ShardWriter]) -> list[CompactResult]:
    """Compact the folders a stage run has just written (call after the writers are closed).

    Logs one line per folder compacted (``compacted features/x: 170 -> 85 rows``). A folder
    another process has started writing meanwhile is left to that process's own compaction;
    a file-system error (a full disk) leaves the folder as it was, readable, with a warning:
    the stage's work is done either way.

    Args:
        root: the dataset root (folders are named relative to it).
        writers: the run's shard writers (closed); their folders, prefixes and limits are used.

    Returns:
        The results of the folders that changed.

    Raises:
        InputError: a committed shard is truncated or damaged, or holds an unsafe id.
    """
    done: list[CompactResult] = []
    for writer in writers:
        try:
            result = compact(
                writer.directory, writer.prefix, id_column=writer.id_column, limits=writer.limits
            )
        except BusyError:
            logger.info("%s/%s: busy, not compacted now", writer.directory, writer.prefix)
            continue
        except OSError as exc:
            logger.warning(
                "%s/%s: not compacted (%s); outside readers may count a retried sample twice "
                "until 'svm compact %s' runs",
                writer.directory,
                writer.prefix,
                exc,
                root,
            )
            continue
        if result.changed:
            logger.info("%s", result.describe(root))
            done.append(result)
    return done


def shard_sets(root: Path) -> list[tuple[Path, str]]:
    """Every shard set of a dataset: ``(folder, prefix)`` pairs, in path order.

    Searches the whole root except ``media/``, ``runs/`` and hidden folders, for committed
    ``<prefix>-NNNNN.parquet`` shards (ledger, preprocess, fingerprints, Mel, features/*, ...).
    """
    root = Path(root)
    found: set[tuple[Path, str]] = set()
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        subfolders[:] = sorted(
            d
            for d in subfolders
            if not d.startswith((".", "_")) and not (here == root and d in _SKIPPED_FOLDERS)
        )
        for name in files:
            match = LEDGER_SHARD.fullmatch(name)
            shard = here / name
            if match and (new_stats_path(shard).exists() or legacy_stats_path(shard).exists()):
                found.add((here, match.group("stage")))
        found.update(
            (here, name.removesuffix(PLAN_SUFFIX))
            for name in _listing(here / STATS_DIR)
            if name.endswith(PLAN_SUFFIX) and id_problem(name.removesuffix(PLAN_SUFFIX)) is None
        )
    return sorted(found)


def compact_dataset(
    root: Path, *, on_set: Callable[[Path, str], None] | None = None
) -> tuple[list[CompactResult], list[str]]:
    """Compact every shard set of a dataset (:func:`shard_sets`).

    Args:
        root: the dataset root.
        on_set: called with each shard set's folder and prefix once it is done (progress).

    Returns:
        The results of the folders that changed, and the shard sets left busy (another process
        is writing them), as ``folder/prefix`` relative to the root.

    Raises:
        InputError: a committed shard is truncated or damaged, or holds an unsafe id.
    """
    changed: list[CompactResult] = []
    busy: list[str] = []
    for folder, prefix in shard_sets(root):
        try:
            result = compact(folder, prefix)
        except BusyError:
            busy.append(f"{folder.relative_to(root).as_posix()}/{prefix}")
            result = CompactResult(folder, prefix)
        if result.changed:
            changed.append(result)
        if on_set is not None:
            on_set(folder, prefix)
    return changed, busy


# -- internals ----------------------------------------------------------------------------------


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _compact_locked(
    writer: ShardWriter, limits: ShardLimits | None, *, resumed: bool
) -> CompactResult:
    """Steps 1-3 of the module's docstring, the lock held by ``writer``.

    Args:
        writer: the open writer (its :attr:`~ShardWriter.done_ids` are the committed ids).
        limits: the new shards' limits (``None``: :func:`limits_for` each source schema).
        resumed: a plan was rolled forward since the writer opened.
    """
    directory, prefix, id_column = writer.directory, writer.prefix, writer.id_column
    shards = committed_shards(directory, prefix)
    if not resumed:  # the writer read every id when it opened: no id twice, nothing to read
        total = sum(_num_rows(p) for p in shards)
        if total == len(writer.done_ids):
            return CompactResult(directory, prefix, rows_before=total, rows_after=total)
    ids = [read_table(p, columns=[id_column], id_column=id_column).column(0) for p in shards]
    counts = [len(column) for column in ids]
    total = sum(counts)
    keep = _newest_rows(ids, total)
    kept = int(keep.sum())
    result = CompactResult(directory, prefix, rows_before=total, rows_after=total)
    if kept == total:
        return result
    bounds = np.cumsum([0, *counts])
    rewrite: list[tuple[Path, np.ndarray]] = []
    delete: list[Path] = []
    for shard, start, end in zip(shards, bounds[:-1], bounds[1:], strict=True):
        mask = keep[start:end]
        if mask.all():
            continue  # nothing superseded: the shard stays as it is
        delete.append(shard)
        if mask.any():
            rewrite.append((shard, mask))
    before = set(committed_shards(directory, prefix))
    for shard, mask in rewrite:
        schema = read_schema(shard)
        if not writer.schema.equals(schema, check_metadata=True):
            writer.flush()  # one schema (and provenance) per new shard
            _use_schema(writer, schema, limits or limits_for(directory, schema))
        offset = 0
        # Batch by batch (the ids were checked above): memory ~ a batch and the writer's buffer.
        for batch in _batches(shard, schema.names):
            rows = pa.Table.from_batches([batch])
            part = mask[offset : offset + rows.num_rows]
            offset += rows.num_rows
            if part.any():
                writer.write(rows.filter(pa.array(part)))
    writer.flush()
    written = sorted(set(committed_shards(directory, prefix)) - before)
    _pause("written")
    plan = plan_path(directory, prefix)
    _write_json(plan, {"delete": [p.name for p in delete], "written": [p.name for p in written]})
    _pause("planned")
    _delete_shards(delete)
    plan.unlink()
    return dataclasses.replace(
        result, rows_after=kept, shards_deleted=len(delete), shards_written=len(written)
    )


def _num_rows(shard: Path) -> int:
    """Rows of a committed shard, from its Parquet footer.

    Raises:
        InputError: the file is truncated, damaged or unreadable.
    """
    try:
        return int(pq.read_metadata(shard).num_rows)
    except READ_ERRORS as exc:
        raise unreadable(shard, exc) from None


def _batches(path: Path, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """Stream a shard's rows, :data:`COPY_BATCH_ROWS` at a time.

    Raises:
        InputError: the file is truncated, damaged or unreadable (also part-way through).
    """
    try:
        parquet = pq.ParquetFile(path)
        yield from parquet.iter_batches(batch_size=COPY_BATCH_ROWS, columns=list(columns))
    except READ_ERRORS as exc:
        raise unreadable(path, exc) from None


def _newest_rows(ids: Sequence[pa.ChunkedArray], total: int) -> np.ndarray:
    """A boolean mask over all rows (shard then row order): True for each id's last row."""
    keep = np.zeros(total, dtype=bool)
    if not total:
        return keep
    column = pa.chunked_array([c for column in ids for c in column.chunks], type=pa.string())
    table = pa.table({"id": column, "row": pa.array(np.arange(total, dtype=np.int64))})
    last = table.group_by("id", use_threads=False).aggregate([("row", "max")])
    keep[last.column("row_max").to_numpy()] = True
    return keep


def _use_schema(writer: ShardWriter, schema: pa.Schema, limits: ShardLimits) -> None:
    """Point the compaction's writer at the next rows' schema (its lock stays held).

    The attributes are the ones :class:`ShardWriter` reads at each commit; one writer (one
    lock) is kept for the whole compaction so that no other writer's shard can be numbered
    between the new shards.
    """
    writer.schema = schema
    writer.status_column = COL.status if COL.status in schema.names else None
    vectors = tuple(c for c in limits.vector_columns if c in schema.names)
    writer.limits = dataclasses.replace(limits, vector_columns=vectors)


def _roll_forward(directory: Path, prefix: str) -> int:
    """Finish the compaction a kill interrupted after its plan: the old shards deleted.

    Returns:
        The number of old shards deleted (0 without a plan).
    """
    plan = plan_path(directory, prefix)
    if not plan.exists():
        return 0
    names = _read_plan(plan, prefix)
    if names is None:
        plan.unlink()
        return 0
    delete, written = names
    committed = {p.name for p in committed_shards(directory, prefix)}
    if not set(written) <= committed:
        # Only a hand-made change does this; without the copies the old shards are the data.
        logger.warning(
            "%s: the shards it lists as written are gone; old shards kept, compacting again", plan
        )
        plan.unlink()
        return 0
    old = [directory / name for name in delete if name in committed]
    logger.info("%s: finishing a compaction a kill interrupted (%d shards)", directory, len(old))
    _delete_shards(old)
    plan.unlink()
    return len(old)


def _read_plan(plan: Path, prefix: str) -> tuple[list[str], list[str]] | None:
    """The plan's shard names, or ``None`` when it is not a plan of ours (ignored: safe)."""
    try:
        raw = json.loads(plan.read_text())
        delete, written = raw["delete"], raw["written"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("%s: not a compaction plan (%s); ignored", plan, exc)
        return None
    names = [delete, written]
    valid = all(
        isinstance(group, list)
        and all(isinstance(n, str) and _is_shard_name(n, prefix) for n in group)
        for group in names
    )
    if not valid:
        logger.warning("%s: names that are not %s shards; ignored", plan, prefix)
        return None
    return list(delete), list(written)


def _is_shard_name(name: str, prefix: str) -> bool:
    match = LEDGER_SHARD.fullmatch(name)
    return match is not None and match.group("stage") == prefix


def _delete_shards(shards: Sequence[Path]) -> None:
    """Delete committed shards, each shard before its stats.

    A kill between the two leaves stats without a shard, which every reader ignores and the
    next writer removes.
    """
    for index, shard in enumerate(shards):
        shard.unlink(missing_ok=True)
        new_stats_path(shard).unlink(missing_ok=True)
        legacy_stats_path(shard).unlink(missing_ok=True)
        if index == 0:
            _pause("deleting")
    for folder in {p.parent for p in shards}:
        fsync_dir(folder)


def _write_json(path: Path, payload: dict[str, list[str]]) -> None:
    """Write a small JSON file atomically (hidden temp, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")


def _pause(step: str) -> None:
    """The test hook of :data:`PAUSE_ENV` (no effect unless the variable names ``step``)."""
    if os.environ.get(PAUSE_ENV) == step and step in _STEPS:
        logger.warning("compaction paused at %s", step)
        for handler in logging.getLogger().handlers:
            handler.flush()
        time.sleep(3600)
