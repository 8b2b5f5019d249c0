"""One extractor's features held flat in memory (or memory-mapped): the steps of N samples.

Shards store each sample's steps as ``list<fixed_size_list<float16>[D]>`` with their start
times. A :class:`FeatureBank` keeps them as one ``(S, D)`` float16 array (all steps of all
samples, in row order) with ``offsets`` into it, so a batch of windows is one gather. Shards with
only a pooled ``embedding`` (YouTube-8M video-level records) give one step per sample at 0 s.

With a cache directory the steps are copied once into ``<cache>/<extractor>-<digest>.npy`` and
memory-mapped, so a training set larger than memory is read from disk as batches ask for it;
the digest changes when the shards do.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from svm_toolkit.errors import InputError
from svm_toolkit.io.checked import iter_batches, read_schema, read_table
from svm_toolkit.io.shards import committed_shards, stats_path
from svm_toolkit.schema import COL, read_provenance

logger = logging.getLogger(__name__)

SHARD_PREFIX = "part"


@dataclass(frozen=True, slots=True)
class FeatureBank:
    """The steps of ``N`` samples of one extractor.

    Attributes:
        name: the extractor.
        sample_ids: ``N`` ids, in row order.
        values: float16, shape (S, D): every step of every sample (may be a memory map).
        offsets: int64, shape (N + 1,): sample i's steps are ``values[offsets[i]:offsets[i+1]]``.
        times_s: float32, shape (S,): each step's start, seconds.
        step_s: seconds one step covers (the extractor's contract; 1.0 when unknown).
    """

    name: str
    sample_ids: tuple[str, ...]
    values: npt.NDArray[np.float16]
    offsets: npt.NDArray[np.int64]
    times_s: npt.NDArray[np.float32]
    step_s: float

    @property
    def dim(self) -> int:
        """Embedding dimension ``D``."""
        return int(self.values.shape[1])

    def durations(self, rows: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.float64]:
        """float64, shape (len(rows),) (all N by default): the end of each last step, seconds."""
        ends = self.offsets[1:] - 1 if rows is None else self.offsets[np.asarray(rows) + 1] - 1
        return self.times_s[ends].astype(np.float64) + self.step_s

    def gather(
        self, rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float16], npt.NDArray[np.int64]]:
        """The steps of ``rows``, concatenated, and how many each row has.

        Returns:
            ``(steps, lengths)``: float16, shape (sum(lengths), D), in memory; int64, (len(rows),).
        """
        lengths = np.diff(self.offsets)[rows]
        return np.asarray(self.values[_ranges(self.offsets[rows], lengths)]), lengths

    def take(self, rows: npt.NDArray[np.int64]) -> FeatureBank:
        """A bank of the given rows only (values copied into memory)."""
        values, lengths = self.gather(rows)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return FeatureBank(
            self.name,
            tuple(self.sample_ids[i] for i in rows),
            values,
            offsets,
            self.times_s[_ranges(self.offsets[rows], lengths)],
            self.step_s,
        )

    def window(
        self, rows: npt.NDArray[np.int64], start_s: npt.NDArray[np.float64], length_s: float
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """The steps of each row that overlap ``[start_s, start_s + length_s)``, padded.

        A step overlaps when it starts before the window ends and the next step starts after
        the window starts, so a sample with one step (a clip-level descriptor) always gives it.

        Args:
            rows: int64, shape (B,): sample rows.
            start_s: float64, shape (B,): window starts, seconds.
            length_s: window length, seconds.

        Returns:
            ``(x, mask)``: float32, shape (B, L, D), zero where padded, and bool, shape (B, L),
            True on real steps; ``L`` is the longest window of the batch.
        """
        lo = np.empty(len(rows), dtype=np.int64)
        hi = np.empty(len(rows), dtype=np.int64)
        for i, (row, t0) in enumerate(zip(rows, start_s, strict=True)):
            a, b = self.offsets[row], self.offsets[row + 1]
            times = self.times_s[a:b]
            first = max(int(np.searchsorted(times, t0, side="right")) - 1, 0)
            last = max(int(np.searchsorted(times, t0 + length_s, side="left")), first + 1)
            lo[i], hi[i] = a + first, a + last
        width = int((hi - lo).max())
        index = lo[:, None] + np.arange(width)[None, :]
        mask = index < hi[:, None]
        x = np.asarray(self.values[np.where(mask, index, lo[:, None])], dtype=np.float32)
        x[~mask] = 0.0
        return x, mask

    @classmethod
    def from_shards(cls, directory: Path, *, cache: Path | None = None) -> FeatureBank:
        """Read an extractor's committed shards (``DATASET/features/<extractor>``).

        Args:
            directory: the extractor's shard directory.
            cache: where to keep a memory-mapped copy of the steps (``None``: in memory).

        Raises:
            InputError: no committed shard (the message says to run ``svm extract``).
        """
        shards = committed_shards(directory, SHARD_PREFIX)
        name = directory.name
        if not shards:
            raise InputError(
                f"{directory}: no features of '{name}' yet; run `svm extract DATASET "
                f"--extractor {name}` first"
            )
        meta = read_provenance(read_schema(shards[0]), where=str(shards[0]))
        step_s = float((meta.get("input_contract") or {}).get("step_s") or 1.0)
        sequence = COL.embeddings in read_schema(shards[0]).names
        digest = _digest(shards)
        if cache is not None:
            stem = cache / f"{name}-{digest}"
            if stem.with_suffix(".npz").exists() and stem.with_suffix(".npy").exists():
                return _load_cached(name, stem, step_s)
        index = [_read_index(p, sequence) for p in shards]
        ids = [i for part in index for i in part[0]]
        lengths = np.concatenate([part[1] for part in index])
        times = np.concatenate([part[2] for part in index]).astype(np.float32)
        keep = _latest(ids)
        total = int(lengths.sum())
        dim = _dim(shards[0], sequence)
        values: npt.NDArray[np.float16]
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = stem.with_name(stem.name + ".tmp.npy")
            values = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(total, dim))
        else:
            values = np.empty((total, dim), dtype=np.float16)
        at = 0
        for shard in shards:
            for batch in iter_batches(shard, columns=[_vector_column(sequence)]):
                flat = _flat_values(batch.column(0), sequence, dim)
                values[at : at + len(flat)] = flat
                at += len(flat)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        bank = cls(name, tuple(ids), values, offsets, times, step_s)
        if len(keep) != len(ids):  # a sample re-extracted later: keep its newest row
            bank = bank.take(np.asarray(keep, dtype=np.int64))
        if cache is not None:
            assert isinstance(values, np.memmap)
            values.flush()
            del values
            if len(keep) != len(ids):
                np.save(tmp, bank.values)
            tmp.replace(stem.with_suffix(".npy"))
            _save_index(bank, stem)
            return _load_cached(name, stem, step_s)
        return bank


def _vector_column(sequence: bool) -> str:
    return COL.embeddings if sequence else COL.embedding


def _dim(shard: Path, sequence: bool) -> int:
    vector = read_schema(shard).field(_vector_column(sequence)).type
    return int((vector.value_type if sequence else vector).list_size)


def _read_index(
    shard: Path, sequence: bool
) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """A shard's ids, step counts and step times, without reading the embeddings."""
    if not sequence:
        ids = read_table(shard, columns=[COL.sample_id]).column(0).to_pylist()
        return ids, np.ones(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=np.float32)
    table = read_table(shard, columns=[COL.sample_id, COL.timestamps_s])
    times = table.column(COL.timestamps_s).combine_chunks()
    lengths = pc.list_value_length(times).to_numpy(zero_copy_only=False).astype(np.int64)
    if (lengths == 0).any():
        bad = table.column(COL.sample_id)[int(np.argmax(lengths == 0))].as_py()
        raise InputError(f"{shard}: sample {bad} has no steps; re-run `svm extract` for it")
    flat = times.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return table.column(COL.sample_id).to_pylist(), lengths, flat


def _flat_values(column: pa.Array, sequence: bool, dim: int) -> npt.NDArray[np.float16]:
    vectors = column.flatten() if sequence else column
    values = vectors.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float16).reshape(-1, dim)


def _latest(ids: list[str]) -> list[int]:
    last = {sample_id: i for i, sample_id in enumerate(ids)}
    return sorted(last.values())


def _ranges(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Concatenated ``arange(start, start + length)`` for each pair."""
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    within = np.arange(total) - np.repeat(ends - lengths, lengths)
    return np.asarray(np.repeat(starts, lengths) + within, dtype=np.int64)


def _digest(shards: list[Path]) -> str:
    h = hashlib.sha256()
    for shard in shards:
        h.update(shard.name.encode())
        h.update(stats_path(shard).read_bytes())
    return h.hexdigest()[:16]


def _save_index(bank: FeatureBank, stem: Path) -> None:
    tmp = stem.with_name(stem.name + ".tmp.npz")
    with tmp.open("wb") as fh:
        np.savez(
            fh,
            sample_ids=np.asarray(json.dumps(bank.sample_ids)),
            offsets=bank.offsets,
            times_s=bank.times_s,
        )
    tmp.replace(stem.with_suffix(".npz"))


def _load_cached(name: str, stem: Path, step_s: float) -> FeatureBank:
    with np.load(stem.with_suffix(".npz")) as index:
        ids = tuple(json.loads(str(index["sample_ids"])))
        offsets, times = index["offsets"], index["times_s"]
    values = np.load(stem.with_suffix(".npy"), mmap_mode="r")
    logger.info("%s: %d samples memory-mapped from %s", name, len(ids), stem.with_suffix(".npy"))
    return FeatureBank(name, ids, values, offsets, times, step_s)
