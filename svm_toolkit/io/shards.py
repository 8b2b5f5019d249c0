"""The one sharded Parquet writer every stage uses.

Life cycle (after Ray's ``Datasink``): ``open()`` → ``write(rows)`` … → ``close()`` / ``abort()``.

* Shards are ``<prefix>-00000.parquet``, ``<prefix>-00001.parquet``, … bounded by rows and by
  in-memory bytes (which also bounds the writer's memory).
* The folder holds only committed shards under names outside readers see (pandas, pyarrow,
  polars, DuckDB, Hugging Face ``datasets``: they skip names starting with ``.`` or ``_``); see
  :mod:`svm_toolkit.io.layout`. A shard is written to a hidden ``.<name>.tmp`` and fsynced; its
  stats (the commit record) go to ``.stats/<stem>.json``, fsynced and renamed; only then is the
  shard renamed into place. So a visible shard is a committed one.
* ``open()`` removes what a killed writer left behind (hidden temp files, stats whose shard never
  became visible, and, from the old layout, a shard without stats) and reads the ids already
  committed, so a re-run skips them (:attr:`ShardWriter.done_ids`).
* Datasets of the old layout (``<stem>_stats.json`` beside each shard) still read; the next
  writer that opens such a folder moves those files into ``.stats/`` (one rename each).
* One writer per ``(directory, prefix)`` at a time, enforced by a hidden lock file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from svm_toolkit.errors import BusyError, InputError
from svm_toolkit.io.atomic import atomic_path, fsync_dir
from svm_toolkit.io.checked import read_table
from svm_toolkit.io.layout import (
    LEGACY_STATS_SUFFIX,
    STATS_DIR,
    TMP_SUFFIX,
    has_stats,
    hidden_tmp,
    legacy_stats_path,
    new_stats_path,
    stats_path,
)
from svm_toolkit.io.paths import check_sample_id
from svm_toolkit.schema import COL, SCHEMA_VERSION

logger = logging.getLogger(__name__)

VECTOR_ENCODING: Final = "PLAIN"
"""Parquet encoding of vector leaves: the one float16 encoding every reader takes.

BYTE_STREAM_SPLIT (what the shards used before) is refused by DuckDB for float16. Measured on the
demo dataset's real outputs (zstd, bytes per stored vector, pooled and per-step alike): PLAIN
costs 939 against 955 B for EfficientNet-Lite0's sparse 1280-d features (2 % less), 1613 against
1289 B for vmnet_music's dense 1140-d descriptors (25 % more); 8 % more on random-normal vectors.
"""

__all__ = [
    "STATS_DIR",
    "VECTOR_ENCODING",
    "ShardLimits",
    "ShardWriter",
    "WriteSummary",
    "committed_shards",
    "has_stats",
    "hidden_tmp",
    "latest_statuses",
    "legacy_stats_path",
    "new_stats_path",
    "read_shards",
    "shard_path",
    "stats_path",
    "write_table_atomic",
]


@dataclass(frozen=True, slots=True)
class ShardLimits:
    """When a shard is closed and how it is encoded.

    Attributes:
        max_rows: rows per shard.
        max_bytes: in-memory Arrow bytes per shard (also the writer's buffer bound), bytes.
        row_group_rows: rows per Parquet row group.
        compression: Parquet codec.
        vector_columns: float columns (embeddings) written with PLAIN encoding and without
            statistics or dictionary, which only cost space and time on such data. PLAIN because
            every reader takes it: DuckDB reads BYTE_STREAM_SPLIT only for FLOAT, DOUBLE, INT32
            and INT64, not for the float16 vectors (see :data:`VECTOR_ENCODING` for the cost).
    """

    max_rows: int = 50_000
    max_bytes: int = 128 * 2**20
    row_group_rows: int = 8_192
    compression: str = "zstd"
    vector_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_bytes < 1 or self.row_group_rows < 1:
            raise ValueError(f"shard limits must be >= 1, got {self}")


@dataclass(frozen=True, slots=True)
class WriteSummary:
    """What one writer session committed."""

    rows: int = 0
    shards: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)


def shard_path(directory: Path, prefix: str, index: int) -> Path:
    """Return ``directory/<prefix>-<index:05d>.parquet``."""
    return directory / f"{prefix}-{index:05d}.parquet"


def _shard_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"-(\d{5,})\.parquet")


def committed_shards(directory: Path, prefix: str) -> list[Path]:
    """Return the committed shards of ``prefix`` in index order.

    A shard is committed when it is visible and has a stats file (``.stats/<stem>.json``, or the
    old layout's ``<stem>_stats.json``). The new layout never shows a shard without stats; the
    old one did when its writer was killed between the two renames, and such a shard is skipped.
    """
    pattern = _shard_pattern(prefix)
    found = [
        (int(m.group(1)), p)
        for p in directory.glob(f"{prefix}-*.parquet")
        if (m := pattern.fullmatch(p.name)) and has_stats(p)
    ]
    return [p for _, p in sorted(found)]


def read_shards(
    directory: Path,
    prefix: str,
    *,
    columns: Sequence[str] | None = None,
    id_column: str = COL.sample_id,
    latest: bool = True,
) -> pa.Table | None:
    """Read every committed shard of ``prefix`` into one table.

    Args:
        directory: the shard directory.
        prefix: shard name prefix (usually the stage or ``part``).
        columns: columns to read (all when ``None``).
        id_column: the key column.
        latest: keep only the last row of each id (a retried sample's newest outcome).

    A shard that is listed, then gone with its stats file before it is read, was compacted
    meanwhile (:func:`svm_toolkit.io.compact.compact` commits the merged shard before it deletes
    the old ones): the shards are listed and read again, once.

    Returns:
        The rows, or ``None`` when nothing is committed yet.

    Raises:
        InputError: a shard is truncated or damaged, or holds an unsafe id or a path outside its
            folder (checked per shard, before any stage acts on a row; see
            :mod:`svm_toolkit.io.checked`).
    """
    cols = None if columns is None else list(dict.fromkeys([id_column, *columns]))
    for attempt in range(2):
        shards = committed_shards(directory, prefix)
        if not shards:
            return None
        try:
            tables = [read_table(p, columns=cols, id_column=id_column) for p in shards]
            break
        except InputError:
            # a shard listed then gone with its stats: a compaction committed its replacement
            # before deleting it, so listing again reads the same rows
            gone = [p.name for p in shards if not p.exists() and not has_stats(p)]
            if attempt or not gone:
                raise
            logger.info("%s: %s compacted away while read; listing again", directory, gone[0])
    table = pa.concat_tables(tables, promote_options="default")
    if not latest:
        return table
    ids = table.column(id_column).to_pylist()
    last = {sample_id: i for i, sample_id in enumerate(ids)}
    if len(last) == len(ids):
        return table
    return table.take(sorted(last.values()))


def latest_statuses(directory: Path, prefix: str) -> dict[str, str]:
    """Each sample's newest status in a stage's ledger shards (empty before the first commit)."""
    table = read_shards(directory, prefix, columns=[COL.status])
    if table is None:
        return {}
    ids, statuses = (table.column(c).to_pylist() for c in (COL.sample_id, COL.status))
    return dict(zip(ids, statuses, strict=True))


class ShardWriter:
    """Write rows of one schema to size-bounded, atomically committed Parquet shards.

    Args:
        directory: where the shards go (created on open).
        prefix: shard name prefix, a safe name such as ``download`` or ``part``.
        schema: Arrow schema of every row, with provenance metadata.
        id_column: the key column; a re-run skips ids in :attr:`done_ids`.
        status_column: column whose value counts go into each shard's stats (or ``None``).
        limits: shard size bounds and encoding.

    Example:
        >>> with ShardWriter(tmp, "download", schema) as writer:  # doctest: +SKIP
        ...     todo = [r for r in records if r.sample_id not in writer.done_ids]
        ...     writer.write([row(r) for r in todo])
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        schema: pa.Schema,
        *,
        id_column: str = COL.sample_id,
        status_column: str | None = COL.status,
        limits: ShardLimits = ShardLimits(),
    ) -> None:
        self.directory = Path(directory)
        self.prefix = check_sample_id(prefix)
        self.schema = schema
        self.id_column = id_column
        self.status_column = status_column if status_column in schema.names else None
        self.limits = limits
        self._buffer: list[pa.Table] = []
        self._buffer_rows = 0
        self._buffer_bytes = 0
        self._next_index = 0
        self._done: frozenset[str] = frozenset()
        self._written: set[str] = set()
        self._lock: IO[str] | None = None
        self._rows = 0
        self._shards = 0
        self._by_status: Counter[str] = Counter()

    # -- life cycle ---------------------------------------------------------------------------

    def open(self) -> Self:
        """Take the lock, clean up after a killed writer and load the committed ids.

        Raises:
            BusyError: another process holds the lock on this directory and prefix.
            InputError: a committed shard is truncated or damaged, or holds an unsafe id.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_path = self.directory / f".{self.prefix}.lock"
        lock = lock_path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise BusyError(
                f"{self.directory}: another svm process is writing '{self.prefix}' shards; "
                "wait for it to finish (or stop it) and run again"
            ) from None
        self._lock = lock
        self._remove_uncommitted()
        self._move_legacy_stats()
        shards = committed_shards(self.directory, self.prefix)
        done: set[str] = set()
        try:
            for shard in shards:
                ids = read_table(shard, columns=[self.id_column], id_column=self.id_column)
                done.update(ids.column(0).to_pylist())
        except BaseException:
            self._release()
            raise
        self._done = frozenset(done)
        pattern = _shard_pattern(self.prefix)
        indices = [int(m.group(1)) for p in shards if (m := pattern.fullmatch(p.name))]
        self._next_index = max(indices, default=-1) + 1
        return self

    @property
    def done_ids(self) -> frozenset[str]:
        """Ids committed by earlier runs (before :meth:`open`); built once, so cheap to call."""
        return self._done

    def write(self, rows: pa.Table | Sequence[Mapping[str, Any]]) -> None:
        """Buffer rows; a shard is committed whenever the buffer reaches a limit.

        Args:
            rows: a table with the schema's columns, or dicts keyed by column name.

        Raises:
            ValueError: an id is written twice by this writer (a bug in the calling stage).
        """
        if self._lock is None:
            raise RuntimeError("ShardWriter.write() before open()")
        table = self._conform(rows)
        if table.num_rows == 0:
            return
        self._claim_ids(table)
        self._buffer.append(table)
        self._buffer_rows += table.num_rows
        self._buffer_bytes += table.nbytes
        while (
            self._buffer_rows >= self.limits.max_rows or self._buffer_bytes >= self.limits.max_bytes
        ):
            self._flush()

    def _claim_ids(self, table: pa.Table) -> None:
        """Note the ids of ``table`` as written by this writer.

        Raises:
            ValueError: an id is written twice by this writer (a bug in the calling stage).
        """
        ids = table.column(self.id_column).to_pylist()
        again = self._written.intersection(ids)
        if again or len(set(ids)) != len(ids):
            raise ValueError(
                f"ids written twice by one '{self.prefix}' writer: {sorted(again)[:5]}"
            )
        self._written.update(ids)

    def flush(self) -> None:
        """Commit everything buffered as shards now."""
        while self._buffer_rows:
            self._flush()

    def close(self) -> WriteSummary:
        """Commit the buffered rows and release the lock."""
        try:
            self.flush()
        finally:
            self._release()
        return WriteSummary(rows=self._rows, shards=self._shards, by_status=dict(self._by_status))

    def abort(self) -> None:
        """Drop the buffered rows (never committed) and release the lock."""
        self._buffer.clear()
        self._buffer_rows = self._buffer_bytes = 0
        self._release()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Rows already written are complete results, so they are committed even when the stage
        # stops on an error or Ctrl-C: nothing done is lost.
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _conform(self, rows: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
        if isinstance(rows, pa.Table):
            missing = set(self.schema.names) - set(rows.column_names)
            if missing:
                raise ValueError(f"rows lack columns {sorted(missing)}")
            return rows.select(self.schema.names).cast(self.schema)
        return pa.Table.from_pylist(list(rows), schema=self.schema)

    def _flush(self) -> None:
        table = pa.concat_tables(self._buffer)
        limit = self.limits.max_rows
        if table.num_rows > limit:
            head, rest = table.slice(0, limit), table.slice(limit)
        else:
            head, rest = table, table.slice(0, 0)
        if self.limits.max_bytes < head.nbytes and head.num_rows > 1:
            # Too many bytes for one shard: split at the byte bound (rows are kept whole).
            per_row = max(1, head.nbytes // head.num_rows)
            keep = max(1, self.limits.max_bytes // per_row)
            head, rest = table.slice(0, keep), table.slice(keep)
        self._commit(head)
        self._buffer = [rest] if rest.num_rows else []
        self._buffer_rows = rest.num_rows
        self._buffer_bytes = rest.nbytes if rest.num_rows else 0

    def _commit(self, table: pa.Table) -> None:
        path = shard_path(self.directory, self.prefix, self._next_index)
        counts = self._status_counts(table)
        with _atomic_path(path) as tmp:
            self._write_file(table, tmp)
            stats = {
                "shard": path.name,
                "rows": table.num_rows,
                "bytes": tmp.stat().st_size,
                "schema_version": SCHEMA_VERSION,
                "by_status": counts,
            }
            # The stats first, the shard's rename (on leaving this block) last: a shard that
            # readers can see is a committed one.
            _write_stats(new_stats_path(path), stats)
        logger.debug("committed %s (%d rows)", path, table.num_rows)
        self._next_index += 1
        self._rows += table.num_rows
        self._shards += 1
        self._by_status.update(counts)

    def _write_file(self, table: pa.Table, path: Path) -> None:
        """Write one shard's rows as Parquet to ``path`` (its temp file, fsynced by the caller).

        A subclass may write the file its own way (the YT8M frame-level writer does).
        """
        pq.write_table(
            table.replace_schema_metadata(self.schema.metadata),
            path,
            compression=self.limits.compression,
            row_group_size=self.limits.row_group_rows,
            **_encoding(self.schema, self.limits.vector_columns),
        )

    def _status_counts(self, table: pa.Table) -> dict[str, int]:
        if self.status_column is None:
            return {}
        counts = pc.value_counts(table.column(self.status_column)).to_pylist()
        return {str(c["values"]): int(c["counts"]) for c in counts}

    def _remove_uncommitted(self) -> None:
        """Remove what a writer killed mid-commit left behind (never a committed shard).

        In the new layout that is a hidden temp file, or stats whose shard was never renamed
        into place; in the old layout, a temp file, or a shard whose stats were never written
        (and a stats file whose shard was deleted by hand, the repair of a damaged shard).
        """
        prefix, directory = self.prefix, self.directory
        pattern = _shard_pattern(prefix)
        own = re.compile(re.escape(prefix) + r"-\d{5,}(?:\.parquet|\.json|_stats\.json)")
        stats_dir = directory / STATS_DIR
        temps = [
            *directory.glob(f".{prefix}-*{TMP_SUFFIX}"),
            *stats_dir.glob(f".{prefix}-*{TMP_SUFFIX}"),
            *directory.glob(f"{prefix}-*{TMP_SUFFIX}"),  # the old layout's temp names
        ]
        leftovers = [
            p for p in temps if own.fullmatch(p.name.removeprefix(".").removesuffix(TMP_SUFFIX))
        ]
        for stats in stats_dir.glob(f"{prefix}-*.json"):
            shard = directory / f"{stats.stem}.parquet"
            if pattern.fullmatch(shard.name) and not shard.exists():
                leftovers.append(stats)
        for stats in directory.glob(f"{prefix}-*{LEGACY_STATS_SUFFIX}"):
            shard = directory / (stats.name.removesuffix(LEGACY_STATS_SUFFIX) + ".parquet")
            if pattern.fullmatch(shard.name) and not shard.exists():
                leftovers.append(stats)
        for shard in directory.glob(f"{prefix}-*.parquet"):
            if pattern.fullmatch(shard.name) and not has_stats(shard):
                leftovers.append(shard)
        for path in leftovers:
            if path.is_file():
                logger.info("removing %s left by an interrupted run", path)
                path.unlink()

    def _move_legacy_stats(self) -> None:
        """Move the old layout's ``<stem>_stats.json`` files into ``.stats/`` (old datasets).

        Then pandas, pyarrow, polars and Hugging Face ``datasets`` read the folder, which the
        sidecars stopped. Each move is one rename, so every shard keeps exactly one stats file.
        """
        pattern = _shard_pattern(self.prefix)
        moved = 0
        for old in sorted(self.directory.glob(f"{self.prefix}-*{LEGACY_STATS_SUFFIX}")):
            shard = self.directory / (old.name.removesuffix(LEGACY_STATS_SUFFIX) + ".parquet")
            if not pattern.fullmatch(shard.name) or not shard.exists():
                continue
            new = new_stats_path(shard)
            new.parent.mkdir(exist_ok=True)
            os.replace(old, new)
            moved += 1
        if moved:
            fsync_dir(self.directory / STATS_DIR)
            fsync_dir(self.directory)
            logger.info(
                "%s: moved %d '%s' stats files of the old layout into %s/",
                self.directory,
                moved,
                self.prefix,
                STATS_DIR,
            )

    def _release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


_atomic_path = atomic_path  # by module name: the disk-full fault tests wrap each shard write


def _write_stats(path: Path, stats: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_path(path) as tmp:
        tmp.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")


def write_table_atomic(table: pa.Table, path: Path, *, compression: str = "zstd") -> None:
    """Write one Parquet file atomically (temp file, fsync, rename): for single-file outputs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=compression)


def _encoding(schema: pa.Schema, vectors: Sequence[str]) -> dict[str, Any]:
    """``pq.write_table`` options: PLAIN leaves and no stats/dictionary for vector columns.

    PLAIN is the one float16 encoding every reader of the outputs takes (pyarrow, pandas, polars,
    DuckDB, Hugging Face ``datasets``); DuckDB refuses BYTE_STREAM_SPLIT for float16 ("only
    supported for FLOAT, DOUBLE, INT32 or INT64 data"). Sizes: :data:`VECTOR_ENCODING`.
    """
    if not vectors:
        return {}
    others = [name for name in schema.names if name not in vectors]
    leaves = {}
    for name in vectors:
        path, kind = name, schema.field(name).type
        while pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind):
            path, kind = f"{path}.list.element", kind.value_type
        leaves[path] = VECTOR_ENCODING
    return {"use_dictionary": others, "write_statistics": others, "column_encoding": leaves}
