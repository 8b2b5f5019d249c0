"""``svm preprocess``: every downloaded video -> ``ledger/preprocess-*`` + ``preprocess/``.

Outputs, all sharded and resumable:

* ``ledger/preprocess-*.parquet``: one row per sample per run: status (``ok``,
  ``filtered:<name>``, ``decode_error``...), probe facts, every filter score, the failing filters
  and the crop box (:data:`~svm_toolkit.schema.PREPROCESS_FIELDS`);
* ``preprocess/fingerprints/part-*.parquet``: perceptual hashes and Chromaprint fingerprints;
* ``preprocess/mel_<recipe>/part-*.parquet``: the Mel units of each requested recipe.

Samples run in a pool of worker processes (each loads the speech model once). The fingerprint
and Mel shards are always committed before the ledger rows that point at them, so a killed run
redoes exactly the samples without a committed ledger row; a re-run also redoes ``ok`` samples
that lack their fingerprints or a requested Mel recipe. A sample redone never gets a second
fingerprint or Mel row: only its ledger row and what is missing are written
(:mod:`svm_toolkit.io.reconcile`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from svm_toolkit.config import to_dict
from svm_toolkit.engines.config import EngineConfig
from svm_toolkit.engines.ray_data import PerItem, Step, ray_session, stream
from svm_toolkit.errors import InputError
from svm_toolkit.io.checked import read_schema
from svm_toolkit.io.compact import compact_writers
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.reconcile import ledger_state
from svm_toolkit.io.shards import ShardLimits, ShardWriter, committed_shards, read_shards
from svm_toolkit.parallel import bounded_map
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.recipes import MelRecipe, MelUnits
from svm_toolkit.preprocess.sample import PreprocessJob, Preprocessor, PreprocessResult
from svm_toolkit.progress import Progress
from svm_toolkit.schema import (
    COL,
    FINGERPRINT_SCHEMA,
    PICTURE_TRACK_VERSION,
    PREPROCESS_FIELDS,
    Status,
    ledger_schema,
    mel_schema,
    with_provenance,
)

logger = logging.getLogger(__name__)

STAGE: Final = "preprocess"
DOWNLOAD_STAGE: Final = "download"


@dataclass(frozen=True, slots=True)
class PreprocessSummary:
    """What one ``svm preprocess`` run did.

    Attributes:
        candidates: downloaded samples (download status ``ok``).
        skipped: candidates done before and not redone.
        attempted: samples this run preprocessed.
        by_status: outcomes of this run.
        cropped: videos of this run with black borders (a crop smaller than the frame).
        media_seconds: duration of the videos this run read, seconds.
        seconds: wall time, seconds.
    """

    candidates: int
    skipped: int
    attempted: int
    by_status: Mapping[str, int] = field(default_factory=dict)
    cropped: int = 0
    media_seconds: float = 0.0
    seconds: float = 0.0

    def describe(self) -> str:
        """One line: attempted, skipped, statuses, crops and speed."""
        head = f"{self.attempted:,} videos ({self.skipped:,} done before): "
        if not self.attempted:
            return head + "nothing to do"
        statuses = ", ".join(f"{n:,} {s}" for s, n in self.by_status.items())
        speed = self.media_seconds / max(self.seconds, 1e-9)
        return (
            f"{head}{statuses}; {self.cropped:,} with black borders cropped; "
            f"{self.media_seconds / 60:,.1f} min of video in {self.seconds:.1f} s "
            f"({speed:,.0f}x real time)"
        )


def plan_jobs(
    layout: DatasetLayout,
    config: PreprocessConfig,
    missing: Callable[[str], bool],
) -> tuple[list[PreprocessJob], int, int]:
    """Return the jobs to run, the number of candidates and how many were skipped.

    A sample is redone when it has no ledger row (also when it has committed outputs: a run
    stopped between the data and the ledger commits, e.g. on a full disk), when its newest
    status is in ``retry``, and when it is ``ok`` but lacks an output. A sample with outputs
    whose newest row is a failure is not redone without ``retry``: its ledger row is the truth
    (:mod:`svm_toolkit.io.reconcile`, rule 2), so a re-run stays a no-op.

    Args:
        layout: the dataset.
        config: ``retry`` names statuses to redo.
        missing: whether an ``ok`` sample lacks its fingerprints or a requested Mel recipe.

    Raises:
        InputError: nothing has been downloaded yet.
    """
    downloads = read_shards(layout.ledger_dir, DOWNLOAD_STAGE, columns=[COL.status, COL.media_path])
    if downloads is None:
        raise InputError(
            f"{layout.root}: no downloads yet (ledger/{DOWNLOAD_STAGE}-*.parquet); "
            f"run 'svm download {layout.root}' first"
        )
    state = ledger_state(layout.ledger_dir, STAGE)
    jobs: list[PreprocessJob] = []
    candidates = skipped = 0
    for row in downloads.to_pylist():
        if row[COL.status] != Status.OK.value or not row[COL.media_path]:
            continue
        candidates += 1
        sample_id = row[COL.sample_id]
        previous = state.latest.get(sample_id)
        redo = previous is None or previous in config.retry
        redo = redo or (previous == Status.OK.value and missing(sample_id))
        if not redo:
            skipped += 1
            continue
        jobs.append(PreprocessJob(sample_id, row[COL.media_path]))
    return jobs, candidates, skipped


def run_preprocess(
    dataset: Path,
    config: PreprocessConfig = PreprocessConfig(),
    *,
    engine: EngineConfig = EngineConfig(),
    on_result: Callable[[PreprocessResult], None] | None = None,
) -> PreprocessSummary:
    """Preprocess every downloaded sample of the dataset that is not done yet.

    Args:
        dataset: the dataset root (after ``svm download``).
        config: filters, recipes, workers.
        engine: where the samples run: worker processes here, or actors on Ray.
        on_result: called after each sample (progress, tests).

    Raises:
        InputError: nothing downloaded yet.
        BusyError: another process is preprocessing this dataset.
    """
    started = time.perf_counter()
    layout = DatasetLayout(Path(dataset))
    preprocessor = Preprocessor(layout, config)
    settings = to_dict(config)
    with ExitStack() as stack:
        ledger = stack.enter_context(
            ShardWriter(
                layout.ledger_dir,
                STAGE,
                with_provenance(ledger_schema(*PREPROCESS_FIELDS), STAGE, settings),
                limits=ShardLimits(max_rows=5_000),
            )
        )
        prints = stack.enter_context(
            ShardWriter(
                layout.fingerprints_dir,
                "part",
                with_provenance(
                    FINGERPRINT_SCHEMA,
                    STAGE,
                    settings,
                    picture_track_version=PICTURE_TRACK_VERSION,
                ),
                limits=ShardLimits(max_rows=20_000),
            )
        )
        mels = {
            recipe.name: stack.enter_context(
                ShardWriter(
                    layout.mel_dir(recipe.name),
                    "part",
                    _mel_schema(recipe, settings, layout.mel_dir(recipe.name)),
                    limits=ShardLimits(max_rows=5_000, max_bytes=256 * 2**20),
                )
            )
            for recipe in preprocessor.recipes
        }
        data = [prints, *mels.values()]
        jobs, candidates, skipped = plan_jobs(
            layout, config, missing=lambda sid: any(sid not in w.done_ids for w in data)
        )
        logger.info(
            "preprocess: %d candidates, %d done before, %d to do", candidates, skipped, len(jobs)
        )
        outputs = _Outputs(ledger, prints, mels)
        counts: Counter[str] = Counter()
        cropped = 0
        media_seconds = 0.0
        last_commit = time.monotonic()
        bar = Progress("preprocess", total=len(jobs), unit="video")
        try:
            for result in _RESULTS[engine.name](jobs, preprocessor, engine):
                outputs.add(result)
                counts[result.status] += 1
                cropped += _has_borders(result)
                media_seconds += (result.facts.duration_s or 0.0) if result.facts else 0.0
                ok = result.status == Status.OK.value
                bar.update(failed=not ok and not result.status.startswith(Status.FILTERED.value))
                bar.set_postfix(
                    ok=counts[Status.OK.value],
                    dropped=sum(counts.values()) - counts[Status.OK.value],
                )
                if on_result is not None:
                    on_result(result)
                if time.monotonic() - last_commit >= config.commit_every_s:
                    outputs.commit()
                    last_commit = time.monotonic()
        finally:  # done, an error or Ctrl-C: what is finished is committed
            bar.close()
            outputs.commit()
    compact_writers(layout.root, [ledger, prints, *mels.values()])
    summary = PreprocessSummary(
        candidates=candidates,
        skipped=skipped,
        attempted=sum(counts.values()),
        by_status=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        cropped=cropped,
        media_seconds=media_seconds,
        seconds=time.perf_counter() - started,
    )
    logger.info("preprocess: %s", summary.describe())
    return summary


class _Outputs:
    """The stage's writers, committed data first and ledger last.

    A sample whose fingerprint or Mel rows are already committed (redone after an interrupted
    run, for a new recipe or by ``--retry``) gets only the rows it lacks: none is written twice.
    """

    def __init__(
        self, ledger: ShardWriter, prints: ShardWriter, mels: Mapping[str, ShardWriter]
    ) -> None:
        self.ledger, self.prints, self.mels = ledger, prints, mels
        self.pending: list[dict[str, Any]] = []

    def add(self, result: PreprocessResult) -> None:
        sample_id = result.sample_id
        if result.status == Status.OK.value:
            if sample_id not in self.prints.done_ids:
                self.prints.write([_fingerprint_row(result)])
            for name, writer in self.mels.items():
                if sample_id not in writer.done_ids:
                    writer.write(_mel_table(sample_id, result.mels.get(name), writer.schema))
        self.pending.append(_ledger_row(result))

    def commit(self) -> None:
        self.prints.flush()
        for writer in self.mels.values():
            writer.flush()
        if self.pending:
            self.ledger.write(self.pending)
            self.pending = []
        self.ledger.flush()


def _processes(
    jobs: list[PreprocessJob], preprocessor: Preprocessor, engine: EngineConfig
) -> Iterator[PreprocessResult]:
    """Run the jobs in this process (one worker) or in a process pool, yielding as they end.

    In the pool (even for one job), a video that kills its worker (a crash in native code, the
    out-of-memory killer) becomes that sample's ``decode_error`` and the run goes on.
    """
    config = preprocessor.config
    if config.workers == 1 or not jobs:
        yield from map(preprocessor, jobs)
        return
    yield from bounded_map(
        _work,
        jobs,
        workers=min(config.workers, len(jobs)),
        initializer=_init_worker,
        initargs=(preprocessor.layout, config),
        preload=("svm_toolkit.preprocess.sample", "torch"),
        on_crash=_crashed,
        inline=False,
    )


def _ray(
    jobs: list[PreprocessJob], preprocessor: Preprocessor, engine: EngineConfig
) -> Iterator[PreprocessResult]:
    """Run the jobs on a pool of up to ``workers`` Ray actors (each loads the speech model once)."""
    if not jobs:  # nothing to do: no Ray to start
        return
    size = min(preprocessor.config.workers, len(jobs))
    layout = DatasetLayout(preprocessor.layout.root.resolve())  # workers may start elsewhere
    build = PerItem(_RayWorker(layout, preprocessor.config))
    with ray_session(engine):
        step = Step("preprocess", build, actors=size, num_cpus=engine.cpus_per_actor)
        yield from stream(jobs, [step])


_RESULTS: Final = {"local": _processes, "ray": _ray}

_worker: Preprocessor | None = None


def _single_threaded(layout: DatasetLayout, config: PreprocessConfig) -> Preprocessor:
    """A worker's preprocessor, with one torch and one BLAS thread (workers are the parallelism).

    numpy's OpenBLAS otherwise starts a thread per core whatever the worker's core pinning, and
    on a busy machine they spin against each other: a (198 x 257) @ (257 x 128) product took
    7.6 ms pinned to one core against 0.13 ms with one BLAS thread.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    return Preprocessor(layout, config)


@dataclass(frozen=True, slots=True)
class _RayWorker:
    """A Ray actor's set-up: its own single-threaded preprocessor."""

    layout: DatasetLayout
    config: PreprocessConfig

    def __call__(self) -> Preprocessor:
        return _single_threaded(self.layout, self.config)


def _init_worker(layout: DatasetLayout, config: PreprocessConfig) -> None:
    """Worker process set-up: its own single-threaded preprocessor."""
    global _worker
    _worker = _single_threaded(layout, config)


def _work(job: PreprocessJob) -> PreprocessResult:
    assert _worker is not None, "worker used before _init_worker"
    return _worker(job)


def _crashed(job: PreprocessJob, detail: str) -> PreprocessResult:
    """The status of a job whose worker died running it alone (``detail``: how it died)."""
    return PreprocessResult(
        job.sample_id,
        job.media_path,
        Status.DECODE_ERROR.value,
        f"{job.media_path}: {detail}; delete or re-encode the file and re-run with "
        "--retry decode_error",
    )


def _mel_schema(recipe: MelRecipe, settings: Mapping[str, Any], folder: Path) -> Any:
    """The schema of the recipe's shards: nested units, or flat where the folder is already flat.

    A folder holds one layout, so every outside reader (pandas, pyarrow.dataset, polars,
    DuckDB) opens it as one table: samples added to a folder written before the nested layout
    (each unit flat, ``list<fixed_size_list<float32>[N]>``) are written flat too.
    """
    shape: tuple[int, ...] | int = tuple(recipe.unit_shape)
    if len(recipe.unit_shape) > 1 and _is_flat(folder):
        shape = int(np.prod(recipe.unit_shape))
        logger.info(
            "%s holds Mel units of the older flat layout: new samples are written flat too, "
            "until the folder is rebuilt (delete %s and run `svm preprocess` again to get each "
            "unit in its shape %s)",
            folder,
            folder,
            list(recipe.unit_shape),
        )
    return with_provenance(
        mel_schema(shape),
        STAGE,
        settings,
        recipe=recipe.name,
        unit_shape=list(recipe.unit_shape),
        recipe_config=dict(recipe.config),
    )


def _is_flat(folder: Path) -> bool:
    """Whether the first committed shard of ``folder`` stores each unit flat (the older layout)."""
    shards = committed_shards(folder, "part")
    if not shards:
        return False
    mel = read_schema(shards[0]).field(COL.mel).type
    unit = mel.value_type if pa.types.is_list(mel) else None
    return (
        unit is not None
        and pa.types.is_fixed_size_list(unit)
        and not pa.types.is_fixed_size_list(unit.value_type)
    )


def _mel_table(sample_id: str, units: MelUnits | None, schema: pa.Schema) -> pa.Table:
    """One sample's units as a one-row table (no units when the video has no audio).

    Each unit is nested fixed-size lists in the schema's unit shape (built over the one flat
    float32 buffer, no copy per level).
    """
    dims = []
    kind = schema.field(COL.mel).type.value_type
    while pa.types.is_fixed_size_list(kind):
        dims.append(kind.list_size)
        kind = kind.value_type
    flat = np.zeros(0, np.float32) if units is None else units.units.reshape(-1)
    times = np.zeros(0, np.float32) if units is None else units.times_s
    vectors: pa.Array = pa.array(flat, pa.float32())
    for size in reversed(dims):
        vectors = pa.FixedSizeListArray.from_arrays(vectors, size)
    mel = pa.ListArray.from_arrays(pa.array([0, len(vectors)], pa.int32()), vectors)
    stamps = pa.ListArray.from_arrays(
        pa.array([0, len(times)], pa.int32()), pa.array(times, pa.float32())
    )
    return pa.Table.from_arrays([pa.array([sample_id]), mel, stamps], schema=schema)


def _has_borders(result: PreprocessResult) -> bool:
    facts, crop = result.facts, result.crop
    if facts is None or crop is None or not facts.width or not facts.height:
        return False
    return crop.width < facts.width - 1 or crop.height < facts.height - 1


def _fingerprint_row(result: PreprocessResult) -> dict[str, Any]:
    return {
        COL.sample_id: result.sample_id,
        COL.phash: list(result.phash),
        COL.phash_times_s: list(result.phash_times_s),
        COL.phash_step_s: result.phash_step_s,
        COL.chromaprint: result.chromaprint
        if result.chromaprint is not None
        else np.zeros(0, np.uint32),
    }


def _ledger_row(result: PreprocessResult) -> dict[str, Any]:
    facts, signals, crop = result.facts, result.signals, result.crop
    row: dict[str, Any] = {
        COL.sample_id: result.sample_id,
        COL.stage: STAGE,
        COL.status: result.status,
        COL.detail: result.detail,
        COL.attempts: 1,
        COL.started_at: result.started_at,
        COL.seconds: result.seconds,
        COL.media_path: result.media_path,
        COL.failed_filters: list(result.failed_filters),
        "cropped_path": result.cropped_path,
    }
    if facts is not None:
        row.update(
            media_duration_s=facts.duration_s,
            width=facts.width,
            height=facts.height,
            rotation=facts.rotation,
            fps=facts.fps,
            video_codec=facts.video_codec,
            audio_codec=facts.audio_codec,
            audio_rate=facts.audio_rate,
            audio_channels=facts.audio_channels,
        )
    if signals is not None:
        row.update(
            loudness_dbfs=signals.loudness_dbfs,
            silence_ratio=signals.silence_ratio,
            motion=signals.motion,
            black_ratio=signals.black_ratio,
            speech_ratio=signals.speech_ratio,
        )
    if crop is not None:
        row.update(crop_x=crop.x, crop_y=crop.y, crop_w=crop.width, crop_h=crop.height)
    return row
