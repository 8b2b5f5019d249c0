"""YouTube-8M's own features as feature shards: ``features/yt8m_rgb`` and ``features/yt8m_audio``.

Video-level records give one pooled vector per video (``embedding``); frame-level records give
one vector per second (``embeddings`` + ``timestamps_s``), dequantised as the official code does.
Vectors are float16 (the schema's embedding type) for every reader. Frame-level shards store
each value as the record's byte, an index into a 256-value float16 dictionary
(:mod:`svm_toolkit.yt8m.parquet`): written at the speed of copying the bytes, read as
:data:`FLOAT16_OF_BYTE` of each byte. One layout per dataset: the first shard fixes it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from svm_toolkit.errors import InputError
from svm_toolkit.io import shards
from svm_toolkit.io.checked import read_schema
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import (
    ShardLimits,
    ShardWriter,
    committed_shards,
    new_stats_path,
    shard_path,
)
from svm_toolkit.schema import COL, SCHEMA_VERSION, feature_schema, with_provenance
from svm_toolkit.yt8m.parquet import FrameShardFile
from svm_toolkit.yt8m.records import AUDIO_DIM, RGB_DIM, Layout, Yt8mVideo, dequantize

#: Extractor name -> (embedding dim, which array of a record).
EXTRACTORS: Final = {
    "yt8m_rgb": (RGB_DIM, "stored_rgb"),
    "yt8m_audio": (AUDIO_DIM, "stored_audio"),
}
logger = logging.getLogger(__name__)

SHARD_PREFIX: Final = "part"
_BATCH: Final = 256
#: Videos per Parquet row group at frame level, and per write (the writer streams them):
#: about 5 MiB of rgb (300 s x 1 KiB per second, one byte per value).
_FRAME_ROW_GROUP: Final = 16
#: Byte value -> its dequantised value (:func:`dequantize`, float32) rounded to float16.
FLOAT16_OF_BYTE: Final = dequantize(np.arange(256, dtype=np.uint8)).astype(np.float16)
#: Two bytes read as one uint16 -> their two float16 values' bits as one uint32, in memory order
#: on either byte order (the first byte is the high half of both on big-endian machines).
_PAIRS: Final = (
    FLOAT16_OF_BYTE.view(np.uint16).astype(np.uint32)[np.arange(1 << 16) & 0xFF]
    | FLOAT16_OF_BYTE.view(np.uint16).astype(np.uint32)[np.arange(1 << 16) >> 8] << 16
)


def dequantize_float16(
    values: npt.NDArray[np.uint8], out: npt.NDArray[np.float16] | None = None
) -> npt.NDArray[np.float16]:
    """:func:`dequantize` rounded to float16, by table lookup (two bytes per lookup).

    Exactly ``dequantize(values).astype(np.float16)``, in half the time of a one-byte table.

    Args:
        values: uint8, any shape; rows may be strided (views into the records' bytes).
        out: where to write the result (C-contiguous, ``values``' shape); a new array if ``None``.
    """
    if out is None:
        out = np.empty(values.shape, dtype=np.float16)
    if values.ndim == 0 or values.shape[-1] % 2:
        out[...] = FLOAT16_OF_BYTE[values]
        return out
    try:
        pairs = values.view(np.uint16)  # no copy where the last axis is contiguous
    except ValueError:
        pairs = np.ascontiguousarray(values).view(np.uint16)
    # mode="clip": every uint16 is a valid index, and "raise" would buffer the output
    np.take(_PAIRS, pairs, out=out.view(np.uint32), mode="clip")
    return out


def input_spec(layout: Layout) -> dict[str, object]:
    """Describe the features for the shards' provenance."""
    return {
        "source": "YouTube-8M",
        "layout": layout.value,
        "fps": 1 if layout is Layout.FRAME else None,
        "dequantize": "x * 4/255 + (4/512 - 2)" if layout is Layout.FRAME else None,
        "rgb": "Inception pool_3, PCA to 1024-d",
        "audio": "VGG-like audio embedding, 128-d",
    }


class Yt8mFeatureWriter:
    """Write each video's rgb and audio features to their two shard sets.

    Args:
        dataset: the dataset root.
        layout: the records' layout (video: pooled vectors; frame: per-second sequences).
    """

    def __init__(self, dataset: Path, layout: Layout) -> None:
        self.layout = layout
        self._pending: list[Yt8mVideo] = []
        self._done: frozenset[str] = frozenset()
        self._writers: dict[str, ShardWriter] = {}
        self._scratch: dict[str, npt.NDArray[np.uint8]] = {}
        layout_root = DatasetLayout(Path(dataset))
        for name, (dim, _) in EXTRACTORS.items():
            directory = layout_root.features_dir(name)
            schema = with_provenance(
                feature_schema(dim, sequence=layout is Layout.FRAME),
                "extract",
                extractor=name,
                input_spec=input_spec(layout),
            )
            _check_existing_layout(directory, schema, layout)
            vectors = COL.embeddings if layout is Layout.FRAME else COL.embedding
            # Pooled vectors float16 PLAIN without statistics or dictionary (as the extractors
            # write them); frame level streamed from the records' bytes, in row groups of a few
            # MiB (_QuantizedShardWriter).
            rows = _FRAME_ROW_GROUP if layout is Layout.FRAME else ShardLimits().row_group_rows
            limits = ShardLimits(row_group_rows=rows, vector_columns=(vectors,))
            kind = _QuantizedShardWriter if layout is Layout.FRAME else ShardWriter
            self._writers[name] = kind(
                directory, SHARD_PREFIX, schema, status_column=None, limits=limits
            )

    def open(self) -> Self:
        """Open both shard writers."""
        for writer in self._writers.values():
            writer.open()
        rgb, audio = (w.done_ids for w in self._writers.values())
        self._done = rgb & audio
        return self

    @property
    def done_ids(self) -> frozenset[str]:
        """Ids whose features were committed in both shard sets before :meth:`open`."""
        return self._done

    def write(self, video: Yt8mVideo) -> None:
        """Queue one video's features (both arrays must be decoded)."""
        if video.stored_rgb is None or video.stored_audio is None:
            raise ValueError(f"{video.yt8m_id}: features were not decoded")
        if video.layout is not self.layout:
            raise InputError(
                f"{video.yt8m_id}: a {video.layout.value}-level record among "
                f"{self.layout.value}-level ones; write each layout's features to its own dataset"
            )
        self._pending.append(video)
        if len(self._pending) >= (_FRAME_ROW_GROUP if self.layout is Layout.FRAME else _BATCH):
            self._flush()

    def close(self) -> dict[str, int]:
        """Commit what is queued and close; return rows committed per extractor (all runs).

        The shard sets are committed side by side (a thread each): a commit is mostly waiting
        for fsyncs (4, a few ms each), and the two sets' waits overlap.
        """
        try:
            self._flush()
        finally:
            with ThreadPoolExecutor(len(self._writers), thread_name_prefix="yt8m-commit") as pool:
                closing = {name: pool.submit(w.close) for name, w in self._writers.items()}
            counts = {
                name: len(self._writers[name].done_ids) + done.result().rows
                for name, done in closing.items()
            }
        return counts

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        for name, (dim, attribute) in EXTRACTORS.items():
            writer = self._writers[name]
            keep = [v for v in self._pending if v.yt8m_id not in writer.done_ids]
            if keep:
                arrays = [getattr(v, attribute) for v in keep]
                writer.write(self._table(name, [v.yt8m_id for v in keep], arrays, dim))
        self._pending.clear()

    def _table(self, name: str, ids: list[str], arrays: list[np.ndarray], dim: int) -> pa.Table:
        """Build a shard table: pooled float16 vectors, or the records' per-second uint8 values.

        Frame-level values stay the records' bytes (:func:`_quantized_table`): the shard file
        stores them as indices of the 256 float16 values (:class:`_QuantizedShardWriter`). They
        are copied into one buffer per extractor, reused by every batch (fresh memory costs
        page faults): the streaming writer has written the table before :meth:`write` returns.
        """
        matrices = [a.reshape(-1, dim) for a in arrays]
        if self.layout is Layout.FRAME:
            needed = sum(m.size for m in matrices)
            if self._scratch.get(name, np.empty(0, np.uint8)).size < needed:
                self._scratch[name] = np.empty(needed, np.uint8)
            return _quantized_table(ids, matrices, dim, self._scratch[name])
        vectors = np.concatenate(matrices).astype(np.float16)
        values = pa.Array.from_buffers(
            pa.float16(), vectors.size, [None, pa.py_buffer(vectors.reshape(-1).view(np.uint16))]
        )
        return pa.table(
            {COL.sample_id: ids, COL.embedding: pa.FixedSizeListArray.from_arrays(values, dim)}
        )


def quantized_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with uint8 (the records' bytes) in place of its float16 vector values."""
    fields = []
    for field in schema:
        if field.name == COL.embeddings:
            vector = field.type.value_type
            uint8 = pa.list_(vector.value_field.with_type(pa.uint8()), vector.list_size)
            field = field.with_type(pa.list_(field.type.value_field.with_type(uint8)))
        fields.append(field)
    return pa.schema(fields, metadata=schema.metadata)


def _quantized_table(
    ids: list[str], matrices: list[np.ndarray], dim: int, buffer: npt.NDArray[np.uint8]
) -> pa.Table:
    """Frame-level rows as the records hold them: uint8 vectors, per-second timestamps (s).

    The vectors are copied into ``buffer`` (flat, large enough), which the table wraps.
    """
    if any(m.dtype != np.uint8 for m in matrices):
        raise ValueError("frame-level features must be the records' uint8 values")
    lengths = np.array([len(m) for m in matrices], dtype=np.int32)
    starts = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=starts[1:])
    values = buffer[: int(starts[-1]) * dim].reshape(-1, dim)
    for matrix, start, stop in zip(matrices, starts[:-1], starts[1:], strict=True):
        values[start:stop] = matrix  # one copy, straight from the records' bytes
    offsets = pa.array(starts)
    leaves = pa.Array.from_buffers(pa.uint8(), values.size, [None, pa.py_buffer(values)])
    flat = pa.FixedSizeListArray.from_arrays(leaves, dim)
    seconds = (np.arange(starts[-1]) - np.repeat(starts[:-1], lengths)).astype(np.float32)
    return pa.table(
        {
            COL.sample_id: ids,
            COL.embeddings: pa.ListArray.from_arrays(offsets, flat),
            COL.timestamps_s: pa.ListArray.from_arrays(offsets, pa.array(seconds)),
        }
    )


class _QuantizedShardWriter(ShardWriter):
    """Frame-level shards streamed from the records' bytes (:mod:`svm_toolkit.yt8m.parquet`).

    Rows arrive as uint8 (one byte per value, what the records hold) and go straight into the
    open shard's hidden temp file, a row group per :meth:`write` (the feature writer hands over
    16 videos at a time), each handed to the disk at once (:class:`FrameShardFile`); the float16
    values are the file's 256-entry dictionary, so readers get ``schema``'s float16 vectors,
    exactly :data:`FLOAT16_OF_BYTE` of each byte. A shard is committed as :class:`ShardWriter`
    commits (footer, fsync, stats, rename) when it reaches the limits, on :meth:`flush` and on
    close. An error (or Ctrl-C) while rows are written leaves the shard its complete row groups,
    committed on close as :class:`ShardWriter` commits what it buffered; an error while it is
    committed removes it (a re-run writes its rows). Memory: one row group, not a shard.
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        schema: pa.Schema,
        *,
        status_column: str | None,
        limits: ShardLimits,
    ) -> None:
        super().__init__(
            directory,
            prefix,
            quantized_schema(schema),
            status_column=status_column,
            limits=limits,
        )
        self.file_schema = schema
        self._shard: tuple[Path, FrameShardFile, ExitStack] | None = None

    def write(self, rows: pa.Table | Sequence[Mapping[str, Any]]) -> None:
        """Write rows into the open shard (opened first if none), committing it at the limits.

        Raises:
            ValueError: an id is written twice by this writer (a bug in the calling stage).
        """
        if self._lock is None:
            raise RuntimeError("ShardWriter.write() before open()")
        table = self._conform(rows)
        self._claim_ids(table)
        limits = self.limits
        try:
            while table.num_rows:
                shard = self._open_shard()
                room = limits.max_rows - shard.rows
                shard.write(table.slice(0, room), limits.row_group_rows)
                table = table.slice(room)
                if shard.rows >= limits.max_rows or shard.size >= limits.max_bytes:
                    self.flush()
        except BaseException:
            # The shard keeps its complete row groups (committed on flush or close: nothing
            # done is lost), unless its file could not be cut back to them.
            if self._shard is not None and self._shard[1].broken:
                self._drop_shard()
            raise

    def flush(self) -> None:
        """Commit the open shard now."""
        try:
            self._commit_shard()
        except BaseException:
            self._drop_shard()
            raise

    def abort(self) -> None:
        """Remove the open shard (never committed) and release the lock."""
        self._drop_shard()
        super().abort()

    def _open_shard(self) -> FrameShardFile:
        if self._shard is None:
            path = shard_path(self.directory, self.prefix, self._next_index)
            stack = ExitStack()
            tmp = stack.enter_context(shards._atomic_path(path))  # the fault tests' hook too
            try:
                shard = FrameShardFile(tmp, self.file_schema, FLOAT16_OF_BYTE)
            except BaseException:
                stack.__exit__(*sys.exc_info())
                raise
            self._shard = path, shard, stack
        return self._shard[1]

    def _commit_shard(self) -> None:
        if self._shard is None:
            return
        path, shard, stack = self._shard
        shard.finish()
        stats = {
            "shard": path.name,
            "rows": shard.rows,
            "bytes": shard.size,
            "schema_version": SCHEMA_VERSION,
            "by_status": {},
        }
        # The stats first, the shard's rename (leaving the stack) last, as ShardWriter commits.
        shards._write_stats(new_stats_path(path), stats)
        self._shard = None
        stack.close()
        logger.debug("committed %s (%d rows)", path, shard.rows)
        self._next_index += 1
        self._rows += shard.rows
        self._shards += 1

    def _drop_shard(self) -> None:
        if self._shard is None:
            return
        _, shard, stack = self._shard
        self._shard = None
        shard.close()
        dropped = RuntimeError("shard dropped")
        stack.__exit__(RuntimeError, dropped, None)  # removes the temp file


def _check_existing_layout(directory: Path, schema: pa.Schema, layout: Layout) -> None:
    shards = committed_shards(directory, SHARD_PREFIX)
    if not shards:
        return
    existing = read_schema(shards[0])
    if not existing.remove_metadata().equals(schema.remove_metadata()):
        raise InputError(
            f"{directory} holds features of another layout than these {layout.value}-level "
            "records; write each layout's features to its own dataset"
        )
