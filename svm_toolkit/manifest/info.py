"""Summarise a dataset root: samples by source, status and split; durations; stage ledgers."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from svm_toolkit.io import checked
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import read_shards
from svm_toolkit.manifest.build import read_manifest
from svm_toolkit.schema import COL

UNASSIGNED: Final = "(none)"


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Durations of the samples whose length is known, in seconds."""

    known: int
    total_s: float
    median_s: float
    min_s: float
    max_s: float


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """Counts describing one dataset root (see :func:`dataset_info`)."""

    root: Path
    samples: int
    by_source: dict[str, int]
    by_status: dict[str, int]
    by_split: dict[str, int]
    durations: DurationStats | None
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    features: dict[str, int] = field(default_factory=dict)


def dataset_info(dataset: Path) -> DatasetInfo:
    """Count a dataset's samples by source, manifest status and split, and each stage's statuses.

    Durations come from the manifest's ``duration_s`` or, for clips, ``end_s - start_s``.
    """
    layout = DatasetLayout(Path(dataset))
    table = read_manifest(layout.root)
    rows = table.select(
        [COL.sample_id, COL.source, COL.status, COL.split, COL.start_s, COL.end_s, COL.duration_s]
    )
    records = rows.to_pylist()
    splits = {r[COL.sample_id]: r[COL.split] for r in records}
    if layout.splits.exists():
        splits.update(_read_splits(layout))
    lengths = [_length(r) for r in records]
    known = [x for x in lengths if x is not None]
    durations = (
        DurationStats(len(known), sum(known), statistics.median(known), min(known), max(known))
        if known
        else None
    )
    return DatasetInfo(
        root=layout.root,
        samples=len(records),
        by_source=_count(r[COL.source] for r in records),
        by_status=_count(r[COL.status] for r in records),
        by_split=_count(splits.get(r[COL.sample_id]) or UNASSIGNED for r in records),
        durations=durations,
        stages=_stage_counts(layout),
        features=_feature_counts(layout),
    )


def _read_splits(layout: DatasetLayout) -> dict[str, str]:
    """``sample_id -> split`` from ``splits.parquet`` (read checked: ids, a damaged file).

    Raises:
        InputError: the file is truncated or damaged, or holds an unsafe id.
    """
    table = checked.read_table(layout.splits, columns=[COL.sample_id, COL.split])
    ids, values = (table.column(c).to_pylist() for c in (COL.sample_id, COL.split))
    return dict(zip(ids, values, strict=True))


def _length(record: dict[str, object]) -> float | None:
    start, end, duration = record[COL.start_s], record[COL.end_s], record[COL.duration_s]
    if isinstance(end, float):
        return end - (start if isinstance(start, float) else 0.0)
    if isinstance(duration, float):
        return duration - (start if isinstance(start, float) else 0.0)
    return None


def _count(values: object) -> dict[str, int]:
    return dict(Counter(values).most_common())  # type: ignore[call-overload]


def _stage_counts(layout: DatasetLayout) -> dict[str, dict[str, int]]:
    if not layout.ledger_dir.is_dir():
        return {}
    stages = sorted(
        {
            m.group("stage")
            for p in layout.ledger_dir.glob("*.parquet")
            if (m := checked.LEDGER_SHARD.fullmatch(p.name))
        }
    )
    out: dict[str, dict[str, int]] = {}
    for stage in stages:
        table = read_shards(layout.ledger_dir, stage, columns=[COL.status])
        if table is not None:
            out[stage] = _count(table.column(COL.status).to_pylist())
    return out


def _feature_counts(layout: DatasetLayout) -> dict[str, int]:
    root = layout.root / "features"
    if not root.is_dir():
        return {}
    out: dict[str, int] = {}
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        table = read_shards(directory, "part", columns=[])
        out[directory.name] = 0 if table is None else table.num_rows
    return out
