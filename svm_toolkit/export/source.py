"""What an export reads: each feature set's committed rows, samples' splits and songs.

A :class:`FeatureSource` indexes one extractor's committed shards (``DATASET/features/<name>``)
without reading a vector: for each sample, where its newest row lies (shard, row group, row)
and its step times. It applies the dataset's rules exactly as
:func:`svm_toolkit.io.shards.read_shards` does (only committed shards count, a sample written
twice keeps its newest row), but reads the vectors later, streaming each row group in small
batches, so memory holds one batch and the rows asked for, never a row group or feature set.

Reads in storage order continue one stream; a read of an earlier row restarts its row group.
Extractors run together (``svm extract``) store samples in the same order, so an export of
several feature sets streams each once; feature sets stored in unrelated orders cost up to one
partial row-group decode per read of the second one.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from svm_toolkit.data.join import read_splits
from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.io.checked import READ_ERRORS, read_schema, read_table, unreadable
from svm_toolkit.io.paths import DatasetLayout, check_sample_id
from svm_toolkit.io.shards import committed_shards, stats_path
from svm_toolkit.manifest import read_manifest
from svm_toolkit.names import check_feature_sets
from svm_toolkit.schema import COL, Split

logger = logging.getLogger(__name__)

SHARD_PREFIX = "part"
"""The prefix of feature shards (``part-00000.parquet``)."""

READ_BATCH_BYTES = 8 * 2**20
"""Vectors decoded at a time from a row group, bytes (about; at least one row)."""

READ_BUFFER_BYTES = 2**20
"""Bytes of a shard read at a time (Parquet's buffered stream), bytes."""


@dataclass(frozen=True, slots=True)
class Steps:
    """One sample's steps of one feature.

    Attributes:
        values: float16, shape (T, D): the vectors as stored.
        times_s: float32, shape (T,): each step's start, seconds.
    """

    values: npt.NDArray[np.float16]
    times_s: npt.NDArray[np.float32]


class FeatureSource:
    """One extractor's committed shards, indexed by sample; vectors read on demand.

    Attributes:
        name: the extractor (the folder name).
        directory: its shard folder.
        shards: the committed shards, in commit order.
        sequence: whether rows hold per-step ``embeddings`` (else one pooled ``embedding``,
            exported as one step at 0 s).
        dim: the vector dimension ``D``.
        digest: a hash of the committed shards' names and commit records; it changes whenever a
            shard is committed.
    """

    def __init__(self, directory: Path, *, batch_bytes: int = READ_BATCH_BYTES) -> None:
        """Index the committed shards of ``directory`` (reads ids and step times only).

        Args:
            directory: the extractor's shard folder.
            batch_bytes: vectors decoded at a time from a row group, bytes (at least one row).

        A shard listed, then deleted before it is indexed (a compaction merged it meanwhile),
        makes the folder be listed and indexed again, once.

        Raises:
            InputError: no committed shard, or a shard that is damaged, holds an unsafe id, a
                sample without steps, or no vector column; or the shards changed twice while
                they were indexed.
        """
        self.name = directory.name
        self.directory = directory
        for attempt in range(2):
            try:
                self._load(batch_bytes)
                return
            except (InputError, FileNotFoundError):
                if not any(not shard.exists() for shard in self.shards):
                    raise
                if attempt:
                    raise self._changed() from None
                logger.info("%s: shards compacted while indexed; listing again", directory)

    def _load(self, batch_bytes: int) -> None:
        """List the committed shards and index them (see :meth:`__init__`)."""
        directory = self.directory
        self.shards = committed_shards(directory, SHARD_PREFIX)
        if not self.shards:
            raise InputError(
                f"{directory}: no committed features of '{self.name}'; run "
                f"`svm extract DATASET --extractor {self.name}` first"
            )
        names = read_schema(self.shards[0]).names
        if COL.embeddings not in names and COL.embedding not in names:
            raise InputError(
                f"{self.shards[0]}: neither '{COL.embeddings}' nor '{COL.embedding}' column; "
                "this is not a feature shard"
            )
        self.sequence = COL.embeddings in names
        self.dim = _dim(self.shards[0], self.sequence)
        digest = hashlib.sha256()
        for shard in self.shards:
            digest.update(shard.name.encode())
            digest.update(stats_path(shard).read_bytes())
        self.digest = digest.hexdigest()
        # compact: a dict of ids to row positions, the rest in arrays over every row read
        self._position: dict[str, int] = {}  # a sample's newest row among all shards' rows
        self._rows_seen = 0
        parts = [self._index(i, shard) for i, shard in enumerate(self.shards)]
        self._place = np.concatenate([p[0] for p in parts])  # int32 (R, 3): shard, group, row
        lengths = np.concatenate([p[1] for p in parts])
        self._offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._times = np.concatenate([p[2] for p in parts])
        steps = float(lengths.mean()) if len(lengths) else 1.0
        self._batch_rows = max(1, batch_bytes // max(int(steps * self.dim * 2), 1))
        self._cursor: _Cursor | None = None

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._position

    def __len__(self) -> int:
        return len(self._position)

    @property
    def sample_ids(self) -> list[str]:
        """Every sample with a committed row, in storage order of its newest row."""
        return sorted(self._position, key=self._position.__getitem__)

    def position(self, sample_id: str) -> int:
        """Where the newest row of ``sample_id`` is stored: a sort key (shards, then rows)."""
        return self._position[sample_id]

    def times_s(self, sample_id: str) -> npt.NDArray[np.float32]:
        """float32, shape (T,): the step start times of ``sample_id``, seconds."""
        p = self._position[sample_id]
        return self._times[self._offsets[p] : self._offsets[p + 1]]

    def nbytes(self, sample_id: str) -> int:
        """Bytes of the sample's float16 vectors, ``T * D * 2``."""
        p = self._position[sample_id]
        return int(self._offsets[p + 1] - self._offsets[p]) * self.dim * 2

    def read(self, sample_ids: Iterable[str]) -> dict[str, Steps]:
        """Read the newest rows of ``sample_ids``.

        Row groups are streamed in batches of about ``batch_bytes`` of vectors, from
        the first row asked for to the last, and the position is kept for the next call: calls
        that ask for rows in storage order (as every export does) read each row group once.
        Memory: one batch and the rows asked for (pyarrow decodes a whole nested row group
        at several times its size, so it is never read at once).

        Raises:
            InputError: a shard became unreadable (truncated or damaged), or changed or was
                deleted (compacted, re-extracted) since it was indexed.
        """
        wanted = sorted(set(sample_ids), key=self._position.__getitem__)
        place = self._place[[self._position[s] for s in wanted]].tolist()
        out: dict[str, Steps] = {}
        at = 0
        while at < len(wanted):
            shard, group, _ = place[at]
            end = at
            while end < len(wanted) and place[end][:2] == [shard, group]:
                end += 1
            rows = [p[2] for p in place[at:end]]
            for sample_id, values in zip(
                wanted[at:end], self._rows(shard, group, rows), strict=True
            ):
                times = self.times_s(sample_id)
                if len(values) != len(times):
                    raise InputError(
                        f"{self.shards[shard]}: sample {sample_id} has {len(values)} vectors "
                        f"for {len(times)} step times; re-run `svm extract --extractor "
                        f"{self.name}` for it"
                    )
                out[sample_id] = Steps(values, times)
            at = end
        return out

    def _index(
        self, i: int, shard: Path
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Index one shard: its rows' places ``(shard, group, row)``, step counts and times."""
        columns = [COL.sample_id, COL.timestamps_s] if self.sequence else [COL.sample_id]
        table = read_table(shard, columns=columns)  # checked: safe ids, readable file
        ids = table.column(COL.sample_id).to_pylist()
        groups = pq.read_metadata(shard)
        starts = np.cumsum(
            [0] + [groups.row_group(g).num_rows for g in range(groups.num_row_groups)]
        )
        rows = np.arange(len(ids))
        group_of = np.searchsorted(starts, rows, side="right") - 1
        place = np.stack([np.full(len(ids), i), group_of, rows - starts[group_of]], axis=1)
        if self.sequence:
            times = table.column(COL.timestamps_s).combine_chunks()
            lengths = pc.list_value_length(times).to_numpy(zero_copy_only=False).astype(np.int64)
            flat = times.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        else:
            lengths = np.ones(len(ids), dtype=np.int64)
            flat = np.zeros(len(ids), dtype=np.float32)
        if (lengths == 0).any():
            row = int(np.argmax(lengths == 0))
            raise InputError(
                f"{shard}: row {row} (sample {ids[row]}) has no steps; re-run "
                f"`svm extract --extractor {self.name}` for it"
            )
        base = self._rows_seen
        self._position.update(zip(ids, range(base, base + len(ids)), strict=True))
        self._rows_seen = base + len(ids)  # later rows (newer commits) replace earlier ones
        return place.astype(np.int32), lengths, flat

    def _rows(self, shard: int, group: int, rows: Sequence[int]) -> list[npt.NDArray[np.float16]]:
        """The vectors of ``rows`` (sorted) of one row group, continuing the last stream."""
        cursor = self._cursor
        if (
            cursor is None
            or (cursor.shard, cursor.group) != (shard, group)
            or rows[0] < cursor.start
        ):
            cursor = self._cursor = None  # release the previous stream first
            batches = self._stream(shard, group, self._batch_rows)
            cursor = self._cursor = _Cursor(shard, group, batches)
        out: list[npt.NDArray[np.float16]] = []
        at = 0
        while at < len(rows):
            while rows[at] >= cursor.start + cursor.batch.num_rows:
                cursor.start += cursor.batch.num_rows
                batch = next(cursor.batches, None)
                if batch is None:
                    raise InputError(
                        f"{self.shards[shard]}: row group {group} ended before row {rows[at]}; "
                        "the shard changed during the export: run it again"
                    )
                cursor.batch = batch
            end = at
            stop = cursor.start + cursor.batch.num_rows
            while end < len(rows) and rows[end] < stop:
                end += 1
            taken = [r - cursor.start for r in rows[at:end]]
            out.extend(self._values(cursor.batch.column(0), taken))
            at = end
        return out

    def _stream(self, shard: int, group: int, batch_rows: int) -> Iterator[pa.RecordBatch]:
        path = self.shards[shard]
        columns = [COL.embeddings if self.sequence else COL.embedding]
        try:
            # a buffered stream: pre-buffering would hold the whole compressed column chunk
            shard_file = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
            yield from shard_file.iter_batches(
                batch_size=batch_rows, row_groups=[group], columns=columns
            )
        except READ_ERRORS as exc:
            if isinstance(exc, FileNotFoundError) or not path.exists():
                raise self._changed() from None
            raise unreadable(path, exc) from None

    def _changed(self) -> InputError:
        """The error for shards deleted since they were indexed (compacted or re-extracted)."""
        return InputError(
            f"{self.directory}: the features of '{self.name}' changed during the export "
            "(compacted or re-extracted): run the same command again"
        )

    def _values(self, column: pa.Array, rows: Sequence[int]) -> list[npt.NDArray[np.float16]]:
        column = column.take(pa.array(rows, pa.int64()))
        if self.sequence:
            lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
            vectors = column.flatten()
        else:
            lengths = np.ones(len(rows), dtype=np.int64)
            vectors = column
        flat = np.asarray(
            vectors.flatten().to_numpy(zero_copy_only=False), dtype=np.float16
        ).reshape(-1, self.dim)
        bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return [flat[a:b] for a, b in itertools.pairwise(bounds)]


@dataclass(slots=True)
class _Cursor:
    """Where the stream of one row group is: its current batch starts at row ``start``."""

    shard: int
    group: int
    batches: Iterator[pa.RecordBatch]
    batch: pa.RecordBatch = field(default_factory=lambda: pa.record_batch({"empty": []}))
    start: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    """One exported sample.

    Attributes:
        sample_id: its id.
        split: ``train``, ``val`` or ``test``.
        music_id: its song (``None`` when the manifest gives none).
    """

    sample_id: str
    split: str
    music_id: str | None


def feature_names(dataset: Path) -> list[str]:
    """The feature sets of ``dataset`` with at least one committed shard, sorted."""
    root = DatasetLayout(dataset).root / "features"
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and committed_shards(p, SHARD_PREFIX)
    )


def open_sources(dataset: Path, features: Sequence[str]) -> dict[str, FeatureSource]:
    """Index the named feature sets (all of them when ``features`` is empty).

    Raises:
        ConfigError: a feature named twice, or a name neither extracted nor an extractor.
        InputError: no feature set at all, or one that was never extracted.
    """
    names = list(features) or feature_names(dataset)
    if not names:
        raise InputError(f"{dataset}: no features yet; run `svm extract {dataset}` first")
    if len(set(names)) != len(names):
        raise ConfigError(f"--features {','.join(names)}: name each feature set once")
    check_feature_sets(dataset, names)
    layout = DatasetLayout(dataset)
    return {name: FeatureSource(layout.features_dir(check_sample_id(name))) for name in names}


def plan_samples(
    dataset: Path, sources: Mapping[str, FeatureSource], split: str | None
) -> tuple[list[Sample], dict[str, int]]:
    """The samples to export: those with a split (``split`` only, if given) and every feature.

    Ordered by where the first feature stores them (so that feature is read sequentially).

    Returns:
        ``(samples, left_out)``: the samples, and why samples with a split were left out, e.g.
        ``{"no vggish": 3}``.

    Raises:
        InputError: no splits, a bad split value, or no sample left to export.
    """
    layout = DatasetLayout(dataset)
    manifest = read_manifest(layout.root)
    split_of = read_splits(layout, manifest)
    ids, songs = (manifest.column(c).to_pylist() for c in (COL.sample_id, COL.music_id))
    music = dict(zip(ids, songs, strict=True))
    first = next(iter(sources.values()))
    left_out: dict[str, int] = {}
    chosen = []
    for sample_id, name in split_of.items():
        if split is not None and name != split:
            continue
        missing = [f for f, source in sources.items() if sample_id not in source]
        if missing:
            key = f"no {' or '.join(missing)}"
            left_out[key] = left_out.get(key, 0) + 1
            continue
        chosen.append(Sample(sample_id, name, music.get(sample_id)))
    if not chosen:
        what = f"in split '{split}' " if split else ""
        raise InputError(
            f"{dataset}: no sample {what}has a split and features of "
            f"{', '.join(sources)}; run `svm extract {dataset}` and `svm splits make {dataset}`"
        )
    if left_out:
        logger.warning("left out (samples with a split): %s", left_out)
    chosen.sort(key=lambda s: first.position(s.sample_id))
    return chosen, left_out


def parse_split_option(value: str | None) -> str | None:
    """Check a ``--split`` value (``train``, ``val`` or ``test``; ``None`` for all).

    Raises:
        ConfigError: another value.
    """
    if value is None:
        return None
    try:
        return Split(value).value
    except ValueError:
        raise ConfigError(
            f"--split {value!r}: use one of {', '.join(s.value for s in Split)}"
        ) from None


def _dim(shard: Path, sequence: bool) -> int:
    kind = read_schema(shard).field(COL.embeddings if sequence else COL.embedding).type
    if sequence:
        kind = kind.value_type
    if not pa.types.is_fixed_size_list(kind):
        raise InputError(
            f"{shard}: vectors of type {kind}, not fixed-size lists; not a feature shard"
        )
    return int(kind.list_size)
