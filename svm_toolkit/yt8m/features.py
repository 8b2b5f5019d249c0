"""YouTube-8M's own features as feature shards: ``features/yt8m_rgb`` and ``features/yt8m_audio``.

Video-level records give one pooled vector per video (``embedding``); frame-level records give
one vector per second (``embeddings`` + ``timestamps_s``), dequantised as the official code does.
Vectors are stored as float16 (the schema's embedding type). One layout per dataset: the
first shard fixes it.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Final, Self

import numpy as np
import pyarrow as pa

from svm_toolkit.errors import InputError
from svm_toolkit.io.checked import read_schema
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter, committed_shards
from svm_toolkit.schema import COL, feature_schema, with_provenance
from svm_toolkit.yt8m.records import AUDIO_DIM, RGB_DIM, Layout, Yt8mVideo

#: Extractor name -> (embedding dim, which array of a record).
EXTRACTORS: Final = {"yt8m_rgb": (RGB_DIM, "rgb"), "yt8m_audio": (AUDIO_DIM, "audio")}
SHARD_PREFIX: Final = "part"
_BATCH: Final = 256


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
            self._writers[name] = ShardWriter(directory, SHARD_PREFIX, schema, status_column=None)

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
        if video.rgb is None or video.audio is None:
            raise ValueError(f"{video.yt8m_id}: features were not decoded")
        if video.layout is not self.layout:
            raise InputError(
                f"{video.yt8m_id}: a {video.layout.value}-level record among "
                f"{self.layout.value}-level ones; write each layout's features to its own dataset"
            )
        self._pending.append(video)
        if len(self._pending) >= _BATCH:
            self._flush()

    def close(self) -> dict[str, int]:
        """Commit what is queued and close; return rows committed per extractor (all runs)."""
        try:
            self._flush()
        finally:
            counts = {name: len(w.done_ids) + w.close().rows for name, w in self._writers.items()}
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
                writer.write(self._table([v.yt8m_id for v in keep], arrays, dim))
        self._pending.clear()

    def _table(self, ids: list[str], arrays: list[np.ndarray], dim: int) -> pa.Table:
        """Build a shard table: pooled vectors, or per-second sequences with timestamps (s)."""
        vectors = np.concatenate([a.reshape(-1, dim) for a in arrays]).astype(np.float16)
        flat = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float16()), dim)
        if self.layout is Layout.VIDEO:
            return pa.table({COL.sample_id: ids, COL.embedding: flat})
        lengths = np.array([len(a) for a in arrays], dtype=np.int32)
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        sequences = pa.ListArray.from_arrays(offsets, flat)
        seconds = np.concatenate([np.arange(n, dtype=np.float32) for n in lengths])
        stamps = pa.ListArray.from_arrays(offsets, pa.array(seconds))
        return pa.table({COL.sample_id: ids, COL.embeddings: sequences, COL.timestamps_s: stamps})


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
