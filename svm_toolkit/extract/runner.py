"""``svm extract``: preprocessed videos -> ``features/<extractor>/part-*`` + ``ledger/extract_*``.

Decode workers read each video once and prepare every extractor's units
(:mod:`svm_toolkit.extract.prepare`); the models embed units of many videos per batch
(:mod:`svm_toolkit.extract.batching`). On the local engine the decode workers are processes and
the models run in this process; on Ray, decoding is CPU tasks and the models live in an actor
pool (one load per actor, GPUs when the cluster has them). Either way this process writes a
video's rows once all its units are embedded. Feature shards are committed before the ledger rows
that point at them. A run stopped between the two (a full disk, a kill) leaves feature rows
without ledger rows: the next run writes those ledger rows from the committed features when it
opens, never a second feature row, and redoes the videos that have neither
(:mod:`svm_toolkit.io.reconcile`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from svm_toolkit.config import to_dict
from svm_toolkit.device import resolve_device
from svm_toolkit.engines.config import EngineConfig
from svm_toolkit.engines.ray_data import PerItem, Step, cluster_gpus, ray_session, stream
from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.extract.base import Extractor, sha256
from svm_toolkit.extract.batching import Embedded, Embedder, build_extractors, embed_stream
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.mel_units import attach_mel
from svm_toolkit.extract.precision import resolve_precision
from svm_toolkit.extract.prepare import DecoderSpec, ExtractJob, crashed, init_worker, prepare
from svm_toolkit.io.compact import compact_writers
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.reconcile import ledger_state, orphans
from svm_toolkit.io.shards import ShardLimits, ShardWriter, latest_statuses, read_shards
from svm_toolkit.parallel import bounded_map
from svm_toolkit.preprocess.crop import CropBox
from svm_toolkit.progress import Progress
from svm_toolkit.schema import (
    COL,
    Status,
    check_retry,
    feature_schema,
    ledger_schema,
    with_provenance,
)

logger = logging.getLogger(__name__)

STAGE: Final = "extract"
PREPROCESS_STAGE: Final = "preprocess"
DECODE_MEMORY: Final = 512 * 2**20
"""Memory a Ray decode task reserves, bytes. A 16:9 video's frames at 1 fps (uint8, short side
256 px) and their 224 px units take about 0.5 MB per second of video: 512 MiB holds 17 minutes."""
_CROP_COLUMNS: Final = (COL.crop_x, COL.crop_y, COL.crop_w, COL.crop_h)
RECOVERED: Final = "recovered: features committed by an interrupted run"
"""The detail of a ledger row written for a feature row that an interrupted run committed."""


def ledger_prefix(extractor: str) -> str:
    """Ledger shard prefix of one extractor: ``extract_<name>``."""
    return f"{STAGE}_{extractor}"


@dataclass(frozen=True, slots=True)
class ExtractSummary:
    """What one ``svm extract`` run did.

    Attributes:
        candidates: preprocessed samples (status ``ok``).
        skipped: candidates every requested extractor had done before.
        attempted: videos this run decoded.
        by_status: outcomes per (extractor, status) as ``"name status"``.
        steps: time steps embedded per extractor.
        seconds: wall time, seconds.
        device: where the models ran.
    """

    candidates: int
    skipped: int
    attempted: int
    by_status: Mapping[str, int] = field(default_factory=dict)
    steps: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = "cpu"

    def describe(self) -> str:
        """One line: videos, statuses per extractor, steps and speed."""
        statuses = ", ".join(f"{n:,} {s}" for s, n in self.by_status.items())
        steps = ", ".join(f"{name} {n:,} steps" for name, n in self.steps.items())
        speed = self.attempted / max(self.seconds, 1e-9)
        head = f"{self.attempted:,} videos ({self.skipped:,} done before): "
        if not self.attempted:
            return head + "nothing to do"
        return f"{head}{statuses}; {steps}; {speed:,.1f} videos/s on {self.device}"


def plan_jobs(
    layout: DatasetLayout,
    names: tuple[str, ...],
    retry: tuple[str, ...],
    held: Mapping[str, frozenset[str]] | None = None,
    done: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[list[ExtractJob], int, int]:
    """The videos to decode with the extractors each still needs; candidates; skipped.

    An extractor still needs a video without a ledger row, whose newest status is in ``retry``,
    or whose ``ok`` row has no feature row in ``held`` (a feature shard deleted since).

    Args:
        layout: the dataset.
        names: the run's extractors.
        retry: statuses to redo.
        held: each extractor's committed feature ids (``None``: trust ``ok`` ledger rows).
        done: each extractor's newest status per sample, when the caller has read its ledger
            already (``None``: read here).

    Raises:
        InputError: nothing has been preprocessed yet.
    """
    columns = [COL.status, COL.media_path, "width", "height", COL.rotation, *_CROP_COLUMNS]
    rows = read_shards(layout.ledger_dir, PREPROCESS_STAGE, columns=columns)
    if rows is None:
        raise InputError(
            f"{layout.root}: nothing preprocessed yet (ledger/{PREPROCESS_STAGE}-*.parquet); "
            f"run 'svm preprocess {layout.root}' first"
        )
    if done is None:
        done = {name: latest_statuses(layout.ledger_dir, ledger_prefix(name)) for name in names}
    jobs: list[ExtractJob] = []
    candidates = skipped = 0
    for row in rows.to_pylist():
        if row[COL.status] != Status.OK.value:
            continue
        candidates += 1
        sid = row[COL.sample_id]
        todo = tuple(
            n
            for n in names
            if done[n].get(sid) in (None, *retry)
            or (held is not None and done[n][sid] == Status.OK.value and sid not in held[n])
        )
        if not todo:
            skipped += 1
            continue
        jobs.append(ExtractJob(sid, row[COL.media_path], todo, *_shown_crop(row)))
    return jobs, candidates, skipped


def _shown_crop(row: Mapping[str, Any]) -> tuple[CropBox | None, tuple[int, int]]:
    width, height, rotation = row["width"] or 0, row["height"] or 0, row[COL.rotation] or 0
    if not width or not height:
        return None, (0, 0)
    size = (height, width) if rotation % 180 == 90 else (width, height)
    if row[COL.crop_w] is None:
        return None, size
    box = CropBox(*(int(row[c]) for c in _CROP_COLUMNS))
    return box.shown(rotation, width, height), size


def run_extract(
    dataset: Path,
    config: ExtractConfig = ExtractConfig(),
    *,
    engine: EngineConfig = EngineConfig(),
    on_video: Callable[[str], None] | None = None,
) -> ExtractSummary:
    """Extract every requested feature of every preprocessed video not done yet.

    Args:
        dataset: the dataset root (after ``svm preprocess``).
        config: extractors, device, batching, workers.
        engine: where decoding and models run: processes and this process, or Ray.
        on_video: called with each finished sample id (progress, tests).

    Raises:
        InputError: nothing preprocessed yet.
        ConfigError: an unknown extractor or ``--retry`` status; ``--device cuda`` on a Ray
            cluster without GPUs.
        MissingWeightsError: an extractor's weights are missing (before any work starts).
        BusyError: another process is extracting the same features.
    """
    started = time.perf_counter()
    check_retry(config.retry, "extract")  # ``ok``: the message says to delete the features
    layout = DatasetLayout(Path(dataset))
    names = config.extractors
    with ExitStack() as stack:
        source = stack.enter_context(_SOURCES[engine.name](config, engine))
        extractors = source.extractors
        settings = to_dict(config)
        features = {
            name: stack.enter_context(
                ShardWriter(
                    layout.features_dir(name),
                    "part",
                    _feature_schema(e, settings, source.device),
                    status_column=None,
                    limits=ShardLimits(
                        max_rows=20_000,
                        vector_columns=(COL.embeddings, COL.embedding),
                    ),
                )
            )
            for name, e in extractors.items()
        }
        ledgers = {
            name: stack.enter_context(
                ShardWriter(
                    layout.ledger_dir,
                    ledger_prefix(name),
                    with_provenance(ledger_schema(), STAGE, settings, extractor=name),
                    limits=ShardLimits(max_rows=5_000),
                )
            )
            for name in names
        }
        held = {name: writer.done_ids for name, writer in features.items()}
        done = {name: _record_orphans(name, held[name], ledgers[name]) for name in names}
        jobs, candidates, skipped = plan_jobs(layout, names, config.retry, held, done)
        logger.info(
            "extract: %d candidates, %d done before, %d to do", candidates, skipped, len(jobs)
        )
        outputs = _Outputs(features, ledgers, extractors)
        remaining = {job.sample_id: len(job.extractors) for job in jobs}
        last_commit = time.monotonic()
        broken: set[str] = set()  # videos an extractor failed on
        bar = Progress("extract", total=len(jobs), unit="video")
        try:
            for video in source.embedded(layout.root, jobs):
                outputs.add(video)
                if video.steps and on_video is not None:
                    on_video(video.sample_id)
                remaining[video.sample_id] -= len(video.steps) + len(video.failed)
                if video.failed:
                    broken.add(video.sample_id)
                if not remaining[video.sample_id]:
                    bar.update(failed=video.sample_id in broken)
                if time.monotonic() - last_commit >= config.commit_every_s:
                    outputs.commit()
                    last_commit = time.monotonic()
        finally:  # done, an error or Ctrl-C: what is finished is committed
            bar.close()
            outputs.commit()
    compact_writers(layout.root, [*features.values(), *ledgers.values()])
    summary = ExtractSummary(
        candidates=candidates,
        skipped=skipped,
        attempted=len(jobs),
        by_status=dict(sorted(outputs.counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        steps=dict(outputs.steps),
        seconds=time.perf_counter() - started,
        device=source.device,
    )
    logger.info("extract: %s", summary.describe())
    return summary


def _record_orphans(name: str, held: frozenset[str], ledger: ShardWriter) -> dict[str, str]:
    """Write the ledger rows of feature rows an interrupted run committed without them.

    Returns:
        Each sample's newest status in the extractor's ledger, the recovered ones included
        (what :func:`plan_jobs` needs; the ledger is read once).
    """
    state = ledger_state(ledger.directory, ledger.prefix)
    latest = dict(state.latest)
    found = orphans(held, state)
    if not found:
        return latest
    logger.warning(
        "extract: %d %s feature rows were committed without their ledger rows by an "
        "interrupted run (e.g. a full disk); recording them as done",
        len(found),
        name,
    )
    ledger.write([_ledger_row(sid, name, Status.OK.value, RECOVERED) for sid in found])
    ledger.flush()
    latest.update(dict.fromkeys(found, Status.OK.value))
    return latest


class _Outputs:
    """The run's writers: feature rows at once, their ledger rows at the next commit.

    A video whose feature row is already committed (redone by ``--retry``) gets only its ledger
    row: no feature row is written twice.
    """

    def __init__(
        self,
        features: Mapping[str, ShardWriter],
        ledgers: Mapping[str, ShardWriter],
        extractors: Mapping[str, Extractor],
    ) -> None:
        self.features, self.ledgers, self.extractors = features, ledgers, extractors
        self.pending: dict[str, list[dict[str, Any]]] = {name: [] for name in ledgers}
        self.counts: Counter[str] = Counter()
        self.steps: Counter[str] = Counter()

    def add(self, video: Embedded) -> None:
        for name, (status, detail) in video.failed.items():
            self.pending[name].append(_ledger_row(video.sample_id, name, status, detail))
            self.counts[f"{name} {status}"] += 1
        for name, vectors in video.steps.items():
            if video.sample_id not in self.features[name].done_ids:
                self.features[name].write(_feature_rows(video, name, self.extractors[name]))
            self.pending[name].append(_ledger_row(video.sample_id, name, Status.OK.value))
            self.counts[f"{name} ok"] += 1
            self.steps[name] += len(vectors)

    def commit(self) -> None:
        """Features first, then the ledger rows that point at them."""
        for writer in self.features.values():
            writer.flush()
        for name, rows in self.pending.items():
            if rows:
                self.ledgers[name].write(rows)
                rows.clear()
            self.ledgers[name].flush()


@dataclass(frozen=True, slots=True)
class _Source:
    """An engine's side of a run: the extractors (for the writers) and the embedded videos.

    Attributes:
        extractors: the run's extractors (loaded by the local engine, checked by Ray's).
        device: where the models run.
        embedded: (dataset root, jobs) -> outcomes as they finish.
    """

    extractors: Mapping[str, Extractor]
    device: str
    embedded: Callable[[Path, list[ExtractJob]], Iterator[Embedded]]


@contextmanager
def _local(config: ExtractConfig, engine: EngineConfig) -> Iterator[_Source]:
    """Decode processes feeding the models in this process."""
    device = resolve_device(config.device)
    extractors = build_extractors(config, load_on=device)

    def embedded(root: Path, jobs: list[ExtractJob]) -> Iterator[Embedded]:
        cores = config.workers or os.cpu_count() or 1
        workers = min(cores, max(1, len(jobs)))
        spec = DecoderSpec(root, config.extractors, config.fps, own_process=cores > 1)
        prepared = bounded_map(
            prepare,
            attach_mel(jobs, DatasetLayout(root), extractors),
            workers=workers,
            initializer=init_worker,
            initargs=(spec,),
            preload=("svm_toolkit.extract.prepare",),  # torch only where frames are scaled
            on_crash=crashed,  # a video that kills its decoder: decode_error, the run goes on
            inline=cores == 1,  # one video alone still decodes in a process of its own
        )
        return embed_stream(prepared, extractors, config.batch_size_on(device))

    yield _Source(extractors, device, embedded)


@contextmanager
def _ray(config: ExtractConfig, engine: EngineConfig) -> Iterator[_Source]:
    """Decode tasks on Ray's CPUs feeding a pool of model actors (GPUs when there are any)."""
    import torch

    extractors = build_extractors(config, load_on=None)  # weights checked before any work
    with ray_session(engine):
        gpus = _gpus_per_actor(config, engine)
        device = "cuda" if gpus else "cpu"
        # Resolved here, once, so every actor computes alike and the provenance says what ran.
        precision = resolve_precision(config.precision, torch.device(device))
        for extractor in extractors.values():
            extractor.set_precision(precision, torch.device(device))
        actor_config = dataclasses.replace(config, precision=precision)

        def embedded(root: Path, jobs: list[ExtractJob]) -> Iterator[Embedded]:
            decode = Step(
                "decode",
                PerItem(DecoderSpec(root.resolve(), config.extractors, config.fps)),
                concurrency=config.workers or None,
                memory=DECODE_MEMORY,
            )
            embed = Step(
                "embed",
                Embedder(actor_config, device),
                actors=engine.model_actors,
                num_cpus=engine.cpus_per_actor,
                num_gpus=gpus,
                batch_size=engine.videos_per_call,
            )
            return stream(jobs, [decode, embed])

        yield _Source(extractors, device, embedded)


def _gpus_per_actor(config: ExtractConfig, engine: EngineConfig) -> float:
    """GPUs per model actor: as configured, else 1 when the cluster has GPUs and may use them."""
    available = cluster_gpus()
    if engine.gpus_per_actor is not None:
        gpus = engine.gpus_per_actor
    else:
        gpus = 1.0 if available and config.device != "cpu" else 0.0
    if config.device.startswith("cuda") and not gpus:
        raise ConfigError(
            f"--device {config.device}: the Ray cluster has no GPU; "
            "use --device cpu or join a cluster with GPUs (--ray-address)"
        )
    return gpus


_SOURCES: Final = {"local": _local, "ray": _ray}


def _feature_schema(extractor: Extractor, settings: Mapping[str, Any], device: str) -> pa.Schema:
    weights = extractor.weights
    return with_provenance(
        feature_schema(extractor.contract.dim, sequence=True, pooled=True),
        STAGE,
        settings,
        extractor=extractor.name,
        weights=str(weights) if weights else None,
        weights_sha256=sha256(weights) if weights else None,
        input_contract=dataclasses.asdict(extractor.contract),
        device=device,
        precision=extractor.precision,
    )


def _feature_rows(video: Embedded, name: str, extractor: Extractor) -> pa.Table:
    """One video's row: float16 steps, their start times and the pooled vector."""
    steps = video.steps[name]
    dim = extractor.contract.dim
    flat = pa.array(steps.astype(np.float16).reshape(-1), pa.float16())
    vectors = pa.FixedSizeListArray.from_arrays(flat, dim)
    sequence = pa.ListArray.from_arrays(pa.array([0, len(steps)], pa.int32()), vectors)
    times = video.times[name]
    stamps = pa.ListArray.from_arrays(
        pa.array([0, len(times)], pa.int32()), pa.array(times, pa.float32())
    )
    pooled = pa.FixedSizeListArray.from_arrays(
        pa.array(extractor.pool(steps).astype(np.float16), pa.float16()), dim
    )
    return pa.Table.from_arrays(
        [pa.array([video.sample_id]), sequence, stamps, pooled],
        names=[COL.sample_id, COL.embeddings, COL.timestamps_s, COL.embedding],
    )


def _ledger_row(sample_id: str, name: str, status: str, detail: str = "") -> dict[str, Any]:
    return {
        COL.sample_id: sample_id,
        COL.stage: ledger_prefix(name),
        COL.status: status,
        COL.detail: detail,
        COL.attempts: 1,
        COL.started_at: datetime.now(UTC),
        COL.seconds: 0.0,
    }
