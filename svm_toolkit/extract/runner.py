"""``svm extract``: preprocessed videos -> ``features/<extractor>/part-*`` + ``ledger/extract_*``.

Decode workers (processes) read each video once: frames through one ffmpeg filter graph
(crop + fps + scale) for all visual extractors, the audio at 16 kHz for all audio extractors, and
each extractor's :meth:`~svm_toolkit.extract.base.Extractor.prepare` turns them into units. This
process stacks the units of many videos into batches of ``batch_size`` per extractor, embeds them
(bf16 autocast and pinned memory on CUDA) and writes a video's rows once all its units are
embedded. Feature shards are committed before the ledger rows that point at them, so a killed run
redoes exactly the videos without a ledger row.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from tqdm import tqdm

from svm_toolkit.config import to_dict
from svm_toolkit.device import resolve_device
from svm_toolkit.errors import ConfigError, InputError, SampleError
from svm_toolkit.extract.backends.vggish import VGGish
from svm_toolkit.extract.base import Extractor, Media, Units, sha256
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.decode import FramePlan, read_video_frames
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardLimits, ShardWriter, latest_statuses, read_shards
from svm_toolkit.parallel import bounded_map
from svm_toolkit.preprocess.audio import load_audio
from svm_toolkit.preprocess.crop import CropBox
from svm_toolkit.schema import COL, Status, feature_schema, ledger_schema, with_provenance

logger = logging.getLogger(__name__)

STAGE: Final = "extract"
PREPROCESS_STAGE: Final = "preprocess"
SAMPLE_RATE: Final = 16_000
_CROP_COLUMNS: Final = (COL.crop_x, COL.crop_y, COL.crop_w, COL.crop_h)


def ledger_prefix(extractor: str) -> str:
    """Ledger shard prefix of one extractor: ``extract_<name>``."""
    return f"{STAGE}_{extractor}"


@dataclass(frozen=True, slots=True)
class ExtractJob:
    """One video and the extractors it still needs.

    Attributes:
        sample_id: the sample.
        media_path: media file relative to the dataset root.
        extractors: names of the extractors to run on it.
        crop: crop box on the picture as shown (``None``: no picture or no crop).
        size: shown width and height, pixels (0, 0 without a picture).
    """

    sample_id: str
    media_path: str
    extractors: tuple[str, ...]
    crop: CropBox | None = None
    size: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A decode worker's answer: units per extractor, or a status for those it could not serve."""

    sample_id: str
    units: Mapping[str, Units] = field(default_factory=dict)
    failed: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (status, detail)
    seconds: float = 0.0


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
    layout: DatasetLayout, names: tuple[str, ...], retry: tuple[str, ...]
) -> tuple[list[ExtractJob], int, int]:
    """The videos to decode with the extractors each still needs; candidates; skipped.

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
    done = {name: latest_statuses(layout.ledger_dir, ledger_prefix(name)) for name in names}
    jobs: list[ExtractJob] = []
    candidates = skipped = 0
    for row in rows.to_pylist():
        if row[COL.status] != Status.OK.value:
            continue
        candidates += 1
        sid = row[COL.sample_id]
        todo = tuple(n for n in names if done[n].get(sid) in (None, *retry))
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


# -- decode workers -------------------------------------------------------------------------------

_worker: dict[str, Extractor] = {}
_root: Path = Path()
_fps: float = 1.0


def _init_worker(root: Path, names: tuple[str, ...], fps: float) -> None:
    """Worker set-up: extractor objects (no models), one torch thread."""
    global _root, _fps
    import torch

    torch.set_num_threads(1)
    _root, _fps = root, fps
    _worker.clear()
    _worker.update({name: get_extractor(name)(weights=None) for name in names})


def _prepare(job: ExtractJob) -> Prepared:
    """Decode one video once and prepare every extractor's units; failures become statuses."""
    started = time.perf_counter()
    wanted = {name: _worker[name] for name in job.extractors}
    visual = [e for e in wanted.values() if e.contract.modality == "visual"]
    audible = [e for e in wanted.values() if e.contract.modality == "audio"]
    path = _root / job.media_path
    frames = times = audio = None
    failed: dict[str, tuple[str, str]] = {}
    try:
        if visual:
            if job.size == (0, 0):
                raise SampleError(Status.DECODE_ERROR.value, f"{job.media_path}: no picture")
            short = max(e.contract.resize or e.contract.image_size or 224 for e in visual)
            frames, times = read_video_frames(path, FramePlan(_fps, short, job.crop, job.size))
            if not len(frames):
                raise SampleError(Status.DECODE_ERROR.value, f"{job.media_path}: no frames")
        if audible:
            try:
                audio = load_audio(path, sample_rate=SAMPLE_RATE)
            except SampleError as exc:
                failed.update({e.name: (exc.status, exc.detail) for e in audible})
    except SampleError as exc:
        failed.update({name: (exc.status, exc.detail) for name in wanted})
    except OSError as exc:
        detail = f"{exc.strerror or exc} ({exc.filename or job.media_path})"
        failed.update({name: (Status.IO_ERROR.value, detail) for name in wanted})
    media = Media(frames, times, audio, SAMPLE_RATE)
    units = {}
    for name, extractor in wanted.items():
        if name in failed:
            continue
        try:
            units[name] = extractor.prepare(media)
        except SampleError as exc:  # e.g. no_audio, or too short for the model
            failed[name] = (exc.status, exc.detail)
    return Prepared(job.sample_id, units, failed, time.perf_counter() - started)


# -- the model process ----------------------------------------------------------------------------


@dataclass
class _Video:
    """A video whose units are being embedded."""

    sample_id: str
    steps: dict[str, npt.NDArray[np.float32]]  # name -> (T, D), filled as batches finish
    times: dict[str, npt.NDArray[np.float32]]
    missing: dict[str, int]  # name -> units not embedded yet


class _Batcher:
    """Per extractor: stack units across videos, embed full batches, hand back finished videos."""

    def __init__(self, extractors: Mapping[str, Extractor], batch_size: int) -> None:
        self.extractors = extractors
        self.batch_size = batch_size
        self.queued: dict[str, list[tuple[_Video, int, npt.NDArray[Any]]]] = {
            name: [] for name in extractors
        }
        self.rows: dict[str, int] = dict.fromkeys(extractors, 0)

    def add(self, video: _Video, name: str, units: Units) -> None:
        self.queued[name].append((video, 0, units.data))
        self.rows[name] += len(units.data)

    def run(self, *, final: bool = False) -> None:
        """Embed every full batch (and, when ``final``, what is left)."""
        for name in self.extractors:
            while self.rows[name] >= self.batch_size or (final and self.rows[name]):
                self._embed(name)

    def _embed(self, name: str) -> None:
        take, parts, owners = self.batch_size, [], []
        queue = self.queued[name]
        while take and queue:
            video, offset, data = queue[0]
            n = min(take, len(data) - offset)
            parts.append(data[offset : offset + n])
            owners.append((video, offset, n))
            take -= n
            if offset + n == len(data):
                queue.pop(0)
            else:
                queue[0] = (video, offset + n, data)
        batch = np.concatenate(parts)
        self.rows[name] -= len(batch)
        out = _embed(self.extractors[name], batch)
        start = 0
        for video, offset, n in owners:
            video.steps[name][offset : offset + n] = out[start : start + n]
            video.missing[name] -= n
            start += n


def _embed(extractor: Extractor, batch: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """One model call: (N, *unit) on CPU -> (N, D) float32 on CPU."""
    import torch

    device = extractor.device or torch.device("cpu")
    tensor = torch.from_numpy(np.ascontiguousarray(batch))
    cuda = device.type == "cuda"
    if cuda:
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    with torch.inference_mode(), autocast:
        out = extractor.embed(tensor)
    return out.float().cpu().numpy()


def run_extract(
    dataset: Path,
    config: ExtractConfig = ExtractConfig(),
    *,
    on_video: Callable[[str], None] | None = None,
) -> ExtractSummary:
    """Extract every requested feature of every preprocessed video not done yet.

    Args:
        dataset: the dataset root (after ``svm preprocess``).
        config: extractors, device, batching, workers.
        on_video: called with each finished sample id (progress, tests).

    Raises:
        InputError: nothing preprocessed yet.
        ConfigError: an unknown extractor.
        MissingWeightsError: an extractor's weights are missing (before any work starts).
        BusyError: another process is extracting the same features.
    """
    started = time.perf_counter()
    layout = DatasetLayout(Path(dataset))
    names = config.extractors
    weights = dict(config.weights)
    device = resolve_device(config.device)
    extractors: dict[str, Extractor] = {}
    for name in names:
        path = weights.get(name)
        extractor = get_extractor(name)(weights=Path(path) if path else None)
        extractor.load(device)
        extractors[name] = extractor
    if config.vggish_pca:
        vggish = extractors.get("vggish")
        if not isinstance(vggish, VGGish):
            raise ConfigError("--vggish-pca needs the vggish extractor: add -e vggish")
        vggish.use_pca(Path(config.vggish_pca))
    settings = to_dict(config)
    counts: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    with ExitStack() as stack:
        features = {
            name: stack.enter_context(
                ShardWriter(
                    layout.features_dir(name),
                    "part",
                    _feature_schema(e, settings, device),
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
        jobs, candidates, skipped = plan_jobs(layout, names, config.retry)
        logger.info(
            "extract: %d candidates, %d done before, %d to do", candidates, skipped, len(jobs)
        )
        batcher = _Batcher(extractors, config.batch_size)
        active: list[_Video] = []
        pending_ledger: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        last_commit = time.monotonic()

        def finish(video: _Video) -> None:
            for name, vectors in video.steps.items():
                features[name].write(_feature_rows(video, name, extractors[name]))
                pending_ledger[name].append(_ledger_row(video.sample_id, name, Status.OK.value))
                counts[f"{name} ok"] += 1
                steps[name] += len(vectors)
            if on_video is not None:
                on_video(video.sample_id)

        def commit() -> None:
            for writer in features.values():
                writer.flush()
            for name, rows in pending_ledger.items():
                if rows:
                    ledgers[name].write(rows)
                    rows.clear()
                ledgers[name].flush()

        workers = config.workers or os.cpu_count() or 1
        bar = tqdm(total=len(jobs), desc="extract", unit="video", disable=None, leave=False)
        try:
            for prepared in _prepared(layout.root, jobs, names, config.fps, workers):
                for name, (status, detail) in prepared.failed.items():
                    pending_ledger[name].append(
                        _ledger_row(prepared.sample_id, name, status, detail)
                    )
                    counts[f"{name} {status}"] += 1
                if prepared.units:
                    video = _Video(
                        prepared.sample_id,
                        steps={
                            n: np.zeros((len(u.data), extractors[n].contract.dim), np.float32)
                            for n, u in prepared.units.items()
                        },
                        times={n: u.times_s for n, u in prepared.units.items()},
                        missing={n: len(u.data) for n, u in prepared.units.items()},
                    )
                    for name, units in prepared.units.items():
                        batcher.add(video, name, units)
                    active.append(video)
                batcher.run()
                active = _finish_ready(active, finish)
                bar.update()
                if time.monotonic() - last_commit >= config.commit_every_s:
                    commit()
                    last_commit = time.monotonic()
            batcher.run(final=True)
            active = _finish_ready(active, finish)
        finally:  # done, an error or Ctrl-C: what is finished is committed
            bar.close()
            commit()
    summary = ExtractSummary(
        candidates=candidates,
        skipped=skipped,
        attempted=len(jobs),
        by_status=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        steps=dict(steps),
        seconds=time.perf_counter() - started,
        device=device,
    )
    logger.info("extract: %s", summary.describe())
    return summary


def _finish_ready(active: list[_Video], finish: Callable[[_Video], None]) -> list[_Video]:
    still = []
    for video in active:
        if any(video.missing.values()):
            still.append(video)
        else:
            finish(video)
    return still


def _prepared(
    root: Path, jobs: list[ExtractJob], names: tuple[str, ...], fps: float, workers: int
) -> Iterator[Prepared]:
    yield from bounded_map(
        _prepare,
        jobs,
        workers=min(workers, max(1, len(jobs))),
        initializer=_init_worker,
        initargs=(root, names, fps),
        preload=("svm_toolkit.extract.runner", "torch"),
    )


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
    )


def _feature_rows(video: _Video, name: str, extractor: Extractor) -> pa.Table:
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
