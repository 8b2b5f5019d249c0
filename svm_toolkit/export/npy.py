"""The ``npy`` format: one ``.npy`` file per sample and feature, plus an index.

Layout of ``OUT``:

* ``<feature>/<id[:2]>/<sample_id>.npy``: float16, shape (T, D), the vectors as stored (the
  first two characters of the id fan the files out, as ``media/`` does);
* ``index.parquet``: one row per sample, sorted by id: ``sample_id``, ``split``, ``music_id``,
  and per feature ``<feature>_path`` (relative to ``OUT``), ``<feature>_shape`` (``[T, D]``)
  and ``<feature>_timestamps_s`` (each step's start, seconds).

Each file is written to a hidden ``.<name>.tmp`` beside it and renamed into place, so a file
present is complete: a re-run keeps it. The index is written last (atomically); a run killed
before it gets it on the re-run. The files are not fsynced one by one (a kill loses nothing; a
power cut may leave a file empty: export to a new folder then).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from svm_toolkit.export.source import FeatureSource, Sample
from svm_toolkit.io.atomic import atomic_path
from svm_toolkit.io.shards import write_table_atomic
from svm_toolkit.progress import Progress

logger = logging.getLogger(__name__)

INDEX_NAME = "index.parquet"


def npy_path(feature: str, sample_id: str) -> str:
    """Where a sample's vectors go, relative to ``OUT``: ``<feature>/<id[:2]>/<id>.npy``.

    Example:
        >>> npy_path("vggish", "dQw4w9WgXcQ")
        'vggish/dQ/dQw4w9WgXcQ.npy'
    """
    return f"{feature}/{sample_id[:2].ljust(2, '_')}/{sample_id}.npy"


def write_npy(
    out: Path,
    sources: Mapping[str, FeatureSource],
    samples: Sequence[Sample],
    *,
    read_bytes: int,
    bar: Progress,
) -> tuple[int, int, int]:
    """Write the ``.npy`` files not in ``out`` yet, feature by feature, then the index.

    Each feature is read in its storage order, ``read_bytes`` of vectors at a time (memory: that
    and one row group).

    Returns:
        ``(written, kept, bytes_written)``: files written now, files kept from an earlier run,
        bytes written (index included).
    """
    _remove_temps(out)
    written = kept = nbytes = 0
    for name, source in sources.items():
        todo = []
        for sample in sorted(samples, key=lambda s: source.position(s.sample_id)):
            if (out / npy_path(name, sample.sample_id)).exists():
                kept += 1
                bar.update(1)
            else:
                todo.append(sample.sample_id)
        batch: list[str] = []
        size = 0
        for sample_id in todo:
            batch.append(sample_id)
            size += source.nbytes(sample_id)
            if size >= read_bytes or sample_id == todo[-1]:
                for sid, steps in source.read(batch).items():
                    nbytes += _save(out / npy_path(name, sid), steps.values)
                    written += 1
                    bar.update(1)
                batch, size = [], 0
    index = _index(sources, samples)
    write_table_atomic(index, out / INDEX_NAME)
    nbytes += (out / INDEX_NAME).stat().st_size
    return written, kept, nbytes


def _save(path: Path, values: np.ndarray) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, values, allow_pickle=False)
    return path.stat().st_size


def _index(sources: Mapping[str, FeatureSource], samples: Sequence[Sample]) -> pa.Table:
    ordered = sorted(samples, key=lambda s: s.sample_id)
    columns: dict[str, pa.Array] = {
        "sample_id": pa.array([s.sample_id for s in ordered], pa.string()),
        "split": pa.array([s.split for s in ordered], pa.string()),
        "music_id": pa.array([s.music_id for s in ordered], pa.string()),
    }
    for name, source in sources.items():
        times = [source.times_s(s.sample_id) for s in ordered]
        columns[f"{name}_path"] = pa.array([npy_path(name, s.sample_id) for s in ordered])
        columns[f"{name}_shape"] = pa.array(
            [[len(t), source.dim] for t in times], pa.list_(pa.int64())
        )
        columns[f"{name}_timestamps_s"] = pa.array(
            [t.tolist() for t in times], pa.list_(pa.float32())
        )
    return pa.table(columns)


def _remove_temps(out: Path) -> None:
    """Remove the hidden temp files a killed run left (``.<name>.npy.tmp``)."""
    for folder, _, files in os.walk(out):
        for name in files:
            if name.startswith(".") and name.endswith(".npy.tmp"):
                (Path(folder) / name).unlink()
