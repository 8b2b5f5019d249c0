"""A dataset's funnel: how many samples each stage kept, in pipeline order (``svm manifest info``).

manifest -> (resolve) -> download -> preprocess -> each extractor -> splits -> runs. Each stage
counts its samples by status (a retried sample counts once, by its newest ledger row, read
through :func:`svm_toolkit.io.shards.read_shards`) and says how many samples it could have taken:
``of`` is the number of ``ok`` samples of the stage before it. Download adds the bytes of its
``ok`` files, preprocess the media durations it measured, an extractor the samples holding a
feature row, splits their sizes and groups, runs their preset and best metrics.

Only the columns counted are read (ids, status, ``bytes``, ``media_duration_s``; feature shards
not at all beyond their ids), so the funnel of a 200,000-sample dataset takes about a second.
Nothing here prints; :meth:`Funnel.to_dict` is the ``--json`` form.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svm_toolkit.io import checked
from svm_toolkit.io.paths import DatasetLayout, id_problem
from svm_toolkit.io.shards import committed_shards, read_shards
from svm_toolkit.manifest.build import read_manifest
from svm_toolkit.schema import COL, Split, Status

logger = logging.getLogger(__name__)

#: The ledger stages before feature extraction, in pipeline order.
LEDGER_STAGES: Final = ("resolve", "download", "preprocess")
#: Feature extraction's ledger prefix: ``ledger/extract_<extractor>-*.parquet``.
EXTRACT_PREFIX: Final = "extract_"
#: The Recall@K reported for a run's ``metrics.json`` (the first K when 10 is not there).
RUN_K: Final = 10
_DURATION: Final = "media_duration_s"
_BYTES: Final = "bytes"


@dataclass(frozen=True, slots=True)
class Durations:
    """Lengths of the samples whose duration is known, in seconds.

    Attributes:
        measured: samples with a known duration.
        total_s: their sum, seconds.
        median_s: their median, seconds.
        min_s: the shortest, seconds.
        max_s: the longest, seconds.
    """

    measured: int
    total_s: float
    median_s: float
    min_s: float
    max_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``measured``, ``total_h`` (hours), ``median_s``, ``min_s``, ``max_s``."""
        return {
            "measured": self.measured,
            "total_h": round(self.total_s / 3600, 4),
            "median_s": round(self.median_s, 3),
            "min_s": round(self.min_s, 3),
            "max_s": round(self.max_s, 3),
        }


@dataclass(frozen=True, slots=True)
class StageCounts:
    """One stage of the funnel.

    Attributes:
        stage: ``manifest``, ``resolve``, ``download``, ``preprocess`` or ``extract``.
        name: what the CLI shows: the stage, or for ``extract`` the extractor's name.
        samples: samples with a row in this stage (each sample once, by its newest row).
        of: samples that could enter it: the ``ok`` samples of the stage before (``None`` for
            the manifest, and for features imported without an extract ledger, e.g. YT8M's).
        by_status: samples per status, ``ok`` first, then the most common.
        bytes: ``download``: bytes of the ``ok`` files (``None`` for other stages).
        durations: ``manifest``: the durations the input gave (``duration_s`` or clip bounds);
            ``preprocess``: the media durations it measured, of the ``ok`` samples.
        feature_rows: ``extract``: samples holding a committed feature row.
    """

    stage: str
    name: str
    samples: int
    of: int | None
    by_status: Mapping[str, int]
    bytes: int | None = None
    durations: Durations | None = None
    feature_rows: int | None = None

    @property
    def ok(self) -> int:
        """Samples whose status is ``ok``."""
        return int(self.by_status.get(Status.OK.value, 0))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see :meth:`Funnel.to_dict`)."""
        return {
            "stage": self.stage,
            "name": self.name,
            "samples": self.samples,
            "of": self.of,
            "ok": self.ok,
            "statuses": dict(self.by_status),
            "bytes": self.bytes,
            "durations": None if self.durations is None else self.durations.to_dict(),
            "feature_rows": self.feature_rows,
        }


@dataclass(frozen=True, slots=True)
class SplitCounts:
    """The splits of a dataset.

    Attributes:
        samples: samples with a split.
        of: the ``ok`` samples of the last stage before extraction (what ``svm splits make``
            splits), ``None`` when no stage ran.
        sizes: samples per split (train, val and test, 0 when empty; then others).
        groups: groups of more than one sample kept inside one split (0 without a group column).
        source: ``splits.parquet`` or ``manifest`` (the input's split column).
    """

    samples: int
    of: int | None
    sizes: Mapping[str, int]
    groups: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see :meth:`Funnel.to_dict`)."""
        return {
            "samples": self.samples,
            "of": self.of,
            "sizes": dict(self.sizes),
            "groups": self.groups,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class RunFacts:
    """One folder under ``DATASET/runs``: a training run or a zero-shot evaluation.

    Attributes:
        name: the folder's name.
        path: the folder.
        preset: the ``svm train --preset`` whose extractors and model the run uses, ``None``
            when none matches (or for a zero-shot evaluation).
        model: ``<model>-<encoder>-<loss>``, or ``zero-shot``.
        video: the visual extractor.
        audio: the audio extractor.
        epochs: epochs finished (``epochs.json``), ``None`` when unknown.
        best_val_r10: the best validation Recall@10 (%) over those epochs.
        split: the split ``metrics.json`` was scored on (``None``: not evaluated yet).
        recall: Recall@:data:`RUN_K` (%) per direction (``video_to_music``, ``music_to_video``)
            from ``metrics.json``.
        k: the K of ``recall``.
    """

    name: str
    path: Path
    preset: str | None
    model: str
    video: str | None
    audio: str | None
    epochs: int | None = None
    best_val_r10: float | None = None
    split: str | None = None
    recall: Mapping[str, float] = field(default_factory=dict)
    k: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see :meth:`Funnel.to_dict`)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "preset": self.preset,
            "model": self.model,
            "video": self.video,
            "audio": self.audio,
            "epochs": self.epochs,
            "best_val_r10": self.best_val_r10,
            "split": self.split,
            "k": self.k,
            "recall": dict(self.recall),
        }


@dataclass(frozen=True, slots=True)
class Funnel:
    """What a dataset holds, stage by stage (see the module docstring).

    Attributes:
        root: the dataset root.
        by_source: manifest samples per source.
        stages: manifest, then each ledger stage present, then each extractor, in that order.
        splits: the splits, ``None`` when there are none.
        runs: the run folders, by name.
    """

    root: Path
    by_source: Mapping[str, int]
    stages: tuple[StageCounts, ...]
    splits: SplitCounts | None = None
    runs: tuple[RunFacts, ...] = ()

    @property
    def samples(self) -> int:
        """Samples in the manifest."""
        return self.stages[0].samples

    def stage(self, name: str) -> StageCounts | None:
        """The stage (or extractor) called ``name``, ``None`` when it has not run."""
        return next((s for s in self.stages if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The funnel as one JSON object (``svm manifest info --json``).

        Keys: ``dataset`` (path), ``samples``, ``by_source``, ``stages`` (a list in pipeline
        order, each with ``stage``, ``name``, ``samples``, ``of``, ``ok``, ``statuses``,
        ``bytes``, ``durations`` {``measured``, ``total_h``, ``median_s``, ``min_s``,
        ``max_s``}, ``feature_rows``; ``null`` where a stage has no such figure), ``splits``
        (``samples``, ``of``, ``sizes``, ``groups``, ``source``; ``null`` without splits) and
        ``runs`` (each ``name``, ``path``, ``preset``, ``model``, ``video``, ``audio``,
        ``epochs``, ``best_val_r10``, ``split``, ``k``, ``recall``).
        """
        return {
            "dataset": str(self.root),
            "samples": self.samples,
            "by_source": dict(self.by_source),
            "stages": [s.to_dict() for s in self.stages],
            "splits": None if self.splits is None else self.splits.to_dict(),
            "runs": [r.to_dict() for r in self.runs],
        }


def render_funnel(funnel: Funnel) -> list[str]:
    """The funnel as text lines, one per stage (what ``svm manifest info`` prints).

    Example:
        ``download    4 of 4: ok 3 · unavailable 1; 1.2 MB``: 4 samples tried of the 4 the
        manifest let through, 3 files (1.2 MB in all) downloaded.
    """
    lines = [f"{funnel.root}: {funnel.samples:,} samples", f"  source  {_line(funnel.by_source)}"]
    width = max([10, *(len(s.name) + 2 for s in funnel.stages if s.stage == "extract")])
    extract_header = False
    for stage in funnel.stages:
        if stage.stage == "extract":
            if not extract_header:
                lines.append("extract")
                extract_header = True
            label = f"  {stage.name}"
        else:
            label = stage.name
        lines.append(f"{label:<{width}}  {_stage_text(stage)}")
    if funnel.splits is not None:
        s = funnel.splits
        lines.append(
            f"{'splits':<{width}}  {_of(s.samples, s.of)}: {_line(s.sizes)}; "
            f"{s.groups:,} groups of 2+ ({s.source})"
        )
    if funnel.runs:
        lines.append("runs")
        lines += [f"  {_run_text(run)}" for run in funnel.runs]
    step = next_step(funnel)
    if step is not None:
        lines.append(f"next: {step}")
    return lines


def next_step(funnel: Funnel) -> str | None:
    """The command of the stage after the last one that ran (``None`` after a run)."""
    done = [
        any(s.stage == "download" for s in funnel.stages),
        any(s.stage == "preprocess" for s in funnel.stages),
        any(s.stage == "extract" for s in funnel.stages),
        funnel.splits is not None,
        bool(funnel.runs),
    ]
    after = max((i + 1 for i, ran in enumerate(done) if ran), default=0)
    commands = ("download", "preprocess", "extract", "splits make", "train")
    if after >= len(commands) or not funnel.stages[0].ok:
        return None
    return f"svm {commands[after]} {funnel.root}"


def _stage_text(stage: StageCounts) -> str:
    text = f"{_of(stage.samples, stage.of)}: {_line(stage.by_status)}"
    if stage.bytes is not None:
        text += f"; {_size(stage.bytes)}"
    d = stage.durations
    if stage.stage == "manifest":
        text += "; input durations " + (
            "unknown (preprocess measures them)"
            if d is None
            else f"{d.measured:,} known, {_hours(d.total_s)}, median {d.median_s:.1f} s"
        )
    elif d is not None:
        text += (
            f"; ok media {_hours(d.total_s)} measured, median {d.median_s:.1f} s "
            f"(min {d.min_s:.1f} s, max {d.max_s:.1f} s)"
        )
    if stage.feature_rows is not None:
        text += f"; {stage.feature_rows:,} feature rows"
        if stage.of is None:
            text += " (imported: no extract ledger)"
    return text


def _run_text(run: RunFacts) -> str:
    bits = [f"preset {run.preset}" if run.preset else "no preset", run.model]
    if run.video or run.audio:
        bits.append(f"{run.video or '?'} + {run.audio or '?'}")
    if run.epochs is not None:
        bits.append(f"{run.epochs} epochs")
    if run.best_val_r10 is not None:
        bits.append(f"best val R@10 {run.best_val_r10:.1f}")
    text = f"{run.name}: {', '.join(bits)}"
    if run.recall:
        scores = ", ".join(f"{k.replace('_to_', '→')} {v:.1f}" for k, v in run.recall.items())
        text += f"; {run.split} R@{run.k} {scores}"
    else:
        text += f"; not evaluated (svm evaluate {run.path})"
    return text


def _of(samples: int, of: int | None) -> str:
    return f"{samples:,} samples" if of is None else f"{samples:,} of {of:,}"


def _line(values: Mapping[str, int]) -> str:
    return " · ".join(f"{k} {v:,}" for k, v in values.items()) or "none"


def _hours(seconds: float) -> str:
    """``5400.0`` -> ``"1.50 h"``; under an hour in minutes (``"2.5 min"``)."""
    return f"{seconds / 3600:,.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def dataset_funnel(dataset: Path) -> Funnel:
    """Count a dataset's samples stage by stage (see the module docstring).

    Raises:
        InputError: no manifest, or a manifest, ledger, feature shard or ``splits.parquet``
            that is damaged or holds an unsafe id (the message names the file and the fix).
        SchemaMismatchError: the manifest was written by an incompatible version.
    """
    layout = DatasetLayout(Path(dataset))
    manifest = read_manifest(layout.root)  # checks every row: a manifest is untrusted input
    stages = [_manifest_stage(manifest)]
    for name in LEDGER_STAGES:
        table = _ledger(layout, name, _extra_columns(name))
        if table is not None:
            previous = stages[-1].ok if name != "resolve" else stages[0].samples
            stages.append(_ledger_stage(name, name, table, previous))
    before_extract = stages[-1].ok if len(stages) > 1 else None
    for extractor in _extractors(layout):
        table = _ledger(layout, EXTRACT_PREFIX + extractor, [])
        rows = _feature_rows(layout, extractor)
        if table is None:  # features without a ledger (YT8M's, imported as published)
            by_status = {Status.OK.value: rows} if rows else {}
            stage = StageCounts("extract", extractor, rows, None, by_status)
        else:
            stage = _ledger_stage("extract", extractor, table, before_extract)
        stages.append(_with(stage, feature_rows=rows))
    return Funnel(
        root=layout.root,
        by_source=_counts(manifest.column(COL.source)),
        stages=tuple(stages),
        splits=_splits(layout, manifest, before_extract),
        runs=_runs(layout),
    )


# -- stages -----------------------------------------------------------------------------------


def count_statuses(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Samples per status: ``ok`` first, then the most common (ties by name).

    Args:
        column: one status per sample (newest row each).
    """
    counts = _counts(column)
    ok = Status.OK.value
    return ({ok: counts[ok]} if ok in counts else {}) | {k: v for k, v in counts.items() if k != ok}


def _counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Value -> count, the most common first (ties by value); nulls count as ``(none)``."""
    found: dict[str, int] = {}
    for item in pc.value_counts(column).to_pylist():
        value = item["values"]
        key = "(none)" if value is None else str(value)
        found[key] = found.get(key, 0) + int(item["counts"])
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def _manifest_stage(manifest: pa.Table) -> StageCounts:
    return StageCounts(
        stage="manifest",
        name="manifest",
        samples=manifest.num_rows,
        of=None,
        by_status=count_statuses(manifest.column(COL.status)),
        durations=_durations(_input_lengths(manifest)),
    )


def _input_lengths(manifest: pa.Table) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Each sample's length from the input, seconds (NaN when unknown).

    ``end_s - start_s`` for clips, else ``duration_s`` less ``start_s``.
    """

    def floats(name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        column = manifest.column(name).cast(pa.float64())
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)

    start = np.nan_to_num(floats(COL.start_s), nan=0.0)
    end, duration = floats(COL.end_s), floats(COL.duration_s)
    lengths: np.ndarray[Any, np.dtype[np.float64]] = np.where(np.isnan(end), duration, end) - start
    return lengths


def _extra_columns(stage: str) -> list[str]:
    return {"download": [_BYTES], "preprocess": [_DURATION]}.get(stage, [])


def _ledger(layout: DatasetLayout, prefix: str, extra: list[str]) -> pa.Table | None:
    """A ledger's newest row per sample: ``status`` and those of ``extra`` it has."""
    if not layout.ledger_dir.is_dir():
        return None
    shards = committed_shards(layout.ledger_dir, prefix)
    if not shards:
        return None
    # Stage columns may be missing from ledgers other tools (or older versions) wrote.
    names = set(checked.read_schema(shards[-1]).names)
    columns = [COL.status, *(c for c in extra if c in names)]
    return read_shards(layout.ledger_dir, prefix, columns=columns)


def _ledger_stage(stage: str, name: str, table: pa.Table, of: int | None) -> StageCounts:
    status = table.column(COL.status)
    ok = pc.equal(status, Status.OK.value)
    size = durations = None
    if _BYTES in table.column_names:
        size = int(pc.sum(pc.filter(table.column(_BYTES), ok)).as_py() or 0)
    if _DURATION in table.column_names:
        kept = pc.filter(table.column(_DURATION), ok).cast(pa.float64())
        durations = _durations(np.asarray(kept.to_numpy(zero_copy_only=False), dtype=np.float64))
    return StageCounts(
        stage=stage,
        name=name,
        samples=table.num_rows,
        of=of,
        by_status=count_statuses(status),
        bytes=size,
        durations=durations,
    )


def _durations(lengths: np.ndarray[Any, np.dtype[np.float64]]) -> Durations | None:
    known = lengths[np.isfinite(lengths)]
    if not known.size:
        return None
    return Durations(
        measured=int(known.size),
        total_s=float(known.sum()),
        median_s=float(np.median(known)),
        min_s=float(known.min()),
        max_s=float(known.max()),
    )


def _with(stage: StageCounts, *, feature_rows: int) -> StageCounts:
    return StageCounts(
        stage=stage.stage,
        name=stage.name,
        samples=stage.samples,
        of=stage.of,
        by_status=stage.by_status,
        bytes=stage.bytes,
        durations=stage.durations,
        feature_rows=feature_rows,
    )


def _extractors(layout: DatasetLayout) -> list[str]:
    """Extractors with a ledger or a feature folder, sorted by name."""
    names: set[str] = set()
    if layout.ledger_dir.is_dir():
        for path in layout.ledger_dir.glob(f"{EXTRACT_PREFIX}*.parquet"):
            match = checked.LEDGER_SHARD.fullmatch(path.name)
            if match:
                names.add(match.group("stage")[len(EXTRACT_PREFIX) :])
    features = layout.root / "features"
    if features.is_dir():
        names |= {p.name for p in features.iterdir() if p.is_dir()}
    return sorted(n for n in names if id_problem(n) is None)


def _feature_rows(layout: DatasetLayout, extractor: str) -> int:
    table = read_shards(layout.features_dir(extractor), "part", columns=[])
    return 0 if table is None else table.num_rows


# -- splits and runs --------------------------------------------------------------------------


def _splits(layout: DatasetLayout, manifest: pa.Table, of: int | None) -> SplitCounts | None:
    if layout.splits.is_file():
        names = set(checked.read_schema(layout.splits).names)
        columns = [c for c in (COL.split, COL.group) if c in names]
        table = checked.read_table(layout.splits, columns=[COL.sample_id, *columns])
        source = "splits.parquet"
    else:
        table = manifest.filter(pc.is_valid(manifest.column(COL.split)))
        source = "manifest"
        if not table.num_rows:
            return None
    sizes = _counts(table.column(COL.split)) if COL.split in table.column_names else {}
    order = [s.value for s in Split]
    sizes = {k: sizes.get(k, 0) for k in order} | {k: v for k, v in sizes.items() if k not in order}
    groups = 0
    if COL.group in table.column_names:
        groups = sum(1 for n in _counts(table.column(COL.group)).values() if n > 1)
    return SplitCounts(table.num_rows, of, sizes, groups, source)


def _runs(layout: DatasetLayout) -> tuple[RunFacts, ...]:
    root = layout.root / "runs"
    if not root.is_dir():
        return ()
    runs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        config, metrics = _json(folder / "config.json"), _json(folder / "metrics.json")
        if config is None and metrics is None:
            continue
        runs.append(_run(folder, config, metrics, _json(folder / "epochs.json")))
    return tuple(runs)


def _run(folder: Path, config: Any, metrics: Any, epochs: Any) -> RunFacts:
    train = config.get("train") if isinstance(config, dict) else None
    video = audio = preset = None
    model = "zero-shot"
    if isinstance(train, dict):
        video, audio = _text(train.get("video")), _text(train.get("audio"))
        parts = [_get(train, "model", "name"), _get(train, "model", "encoder")]
        model = "-".join(str(p) for p in [*parts, _get(train, "loss", "name")] if p is not None)
        preset = _preset(train)
    elif isinstance(metrics, dict):
        source = _get(metrics, "protocol", "source")
        if isinstance(source, dict):
            video, audio = _text(source.get("video")), _text(source.get("audio"))
    history = [row for row in epochs if isinstance(row, dict)] if isinstance(epochs, list) else []
    val = [float(r["val_r10"]) for r in history if isinstance(r.get("val_r10"), int | float)]
    split, k, recall = _recall(metrics)
    return RunFacts(
        name=folder.name,
        path=folder,
        preset=preset,
        model=model,
        video=video,
        audio=audio,
        epochs=len(history) if isinstance(epochs, list) else None,
        best_val_r10=max(val) if val else None,
        split=split,
        recall=recall,
        k=k,
    )


def _preset(train: Mapping[str, Any]) -> str | None:
    """The preset whose extractors and model name a run's config has (torch-free import)."""
    from svm_toolkit.train.config import TRAIN_PRESETS

    for name, preset in TRAIN_PRESETS.items():
        same = (train.get("video"), train.get("audio"), _get(train, "model", "name")) == (
            preset.video,
            preset.audio,
            preset.model.name,
        )
        if same:
            return name
    return None


def _recall(metrics: Any) -> tuple[str | None, int | None, dict[str, float]]:
    """``(split, K, {direction: Recall@K %})`` of a ``metrics.json`` (empty when absent)."""
    directions = metrics.get("directions") if isinstance(metrics, dict) else None
    if not isinstance(directions, dict):
        return None, None, {}
    recall: dict[str, float] = {}
    k: int | None = None
    for direction, result in directions.items():
        values = _get(result, "full", "recall")
        if not isinstance(values, dict) or not values:
            continue
        if k is None:
            ks = sorted(int(x) for x in values if str(x).isdigit())
            k = RUN_K if RUN_K in ks else (ks[0] if ks else None)
        value = values.get(str(k))
        if isinstance(value, int | float):
            recall[str(direction)] = float(value)
    split = _get(metrics, "protocol", "split")
    return (str(split) if split is not None else None), k, recall


def _get(values: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(values, dict):
            return None
        values = values.get(key)
    return values


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _json(path: Path) -> Any:
    """A JSON file's content; ``None`` when missing or unreadable (a warning says which)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("%s: not readable JSON (%s); left out of the funnel", path, exc)
        return None


__all__ = [
    "Durations",
    "Funnel",
    "RunFacts",
    "SplitCounts",
    "StageCounts",
    "count_statuses",
    "dataset_funnel",
    "next_step",
    "render_funnel",
]
