"""``svm download``: every downloadable manifest row -> ``media/`` + ``ledger/download-*``.

A thread pool runs :func:`download_sample` under a global rate limit, per-host limits and a
circuit breaker. Each outcome is a ledger row; a timer thread commits the ledger every few
seconds, whatever the downloads do (every one may hang until its deadline). A killed run loses
those rows but not their files: the next run adopts each verified file in ``media/`` that has no
``ok`` row (:mod:`~svm_toolkit.download.adopt`), so a kill costs only the downloads in flight.
A re-run skips samples with a row unless ``retry`` names their status.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

import pyarrow as pa

from svm_toolkit.config import to_dict
from svm_toolkit.download.adopt import adopt
from svm_toolkit.download.cluster import RayDownloads, ray_results, start_pacer
from svm_toolkit.download.config import DownloadConfig
from svm_toolkit.download.pacing import CircuitBreaker, HostLimiter, RateLimiter
from svm_toolkit.download.sample import DownloadResult, Job, Pacing, download_sample, scratch_root
from svm_toolkit.download.ytdlp_pool import close_children
from svm_toolkit.engines.config import EngineConfig
from svm_toolkit.engines.ray_data import ray_session
from svm_toolkit.io.compact import compact_writers
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.reconcile import ledger_state
from svm_toolkit.io.shards import ShardLimits, ShardWriter
from svm_toolkit.manifest.build import read_manifest
from svm_toolkit.progress import Progress
from svm_toolkit.schema import COL, Status, ledger_schema, with_provenance

logger = logging.getLogger(__name__)

STAGE: Final = "download"
#: How often the local engine's result stream wakes up when nothing finished (Ctrl-C), seconds.
_TICK_S: Final = 1.0

DOWNLOAD_FIELDS: Final = (
    pa.field(COL.url, pa.string()),
    pa.field("media_path", pa.string()),
    pa.field("bytes", pa.int64()),
    pa.field("format", pa.string()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("fps", pa.float32()),
    pa.field("has_audio", pa.bool_()),
    pa.field("media_duration_s", pa.float64()),
    pa.field("container", pa.string()),
    pa.field("video_codec", pa.string()),
    pa.field("audio_codec", pa.string()),
)


@dataclass(frozen=True, slots=True)
class DownloadSummary:
    """What one ``svm download`` run did.

    Attributes:
        candidates: manifest rows that can be downloaded (status ok, with a URL).
        skipped: candidates already in the ledger and not retried.
        attempted: samples this run tried.
        by_status: outcomes of this run.
        bytes: media bytes written.
        seconds: wall time, seconds.
        breaker_pauses: times the circuit breaker paused the run.
        adopted: samples recorded ``ok`` from a verified file an interrupted run had placed in
            ``media/`` without its ledger row (not downloaded again; not in ``attempted``).
    """

    candidates: int
    skipped: int
    attempted: int
    by_status: Mapping[str, int] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0
    breaker_pauses: int = 0
    adopted: int = 0

    @property
    def failed(self) -> int:
        """Samples of this run that did not end ``ok``."""
        return self.attempted - self.by_status.get(Status.OK.value, 0)

    @property
    def failure_rate(self) -> float:
        """Share of this run's samples that failed (0 when nothing was attempted)."""
        return self.failed / self.attempted if self.attempted else 0.0

    def describe(self) -> str:
        """One line: attempted, skipped, statuses, volume and speed."""
        before = f"{self.skipped:,} done before"
        if self.adopted:
            before += f", {self.adopted:,} adopted from media/"
        head = f"{self.attempted:,} videos ({before}): "
        if not self.attempted:
            return head + "nothing to do"
        statuses = ", ".join(f"{n:,} {s}" for s, n in self.by_status.items())
        seconds = max(self.seconds, 1e-9)
        mb = self.bytes / 1e6
        speed = f"{self.attempted / seconds:.1f} videos/s, {mb / seconds:.1f} MB/s"
        return f"{head}{statuses}; {mb:,.1f} MB in {self.seconds:.1f} s ({speed})"


def plan_jobs(
    dataset: Path, config: DownloadConfig, done: Mapping[str, str]
) -> tuple[list[Job], int, int]:
    """Return the jobs to run, the number of candidates and how many were skipped.

    Sample ids are safe here: :func:`read_manifest` refuses an unsafe one (exit 2, naming the
    file and the row) before anything else happens.
    """
    rows = read_manifest(dataset).select(
        [COL.sample_id, COL.url, COL.source, COL.status, COL.start_s, COL.end_s]
    )
    jobs: list[Job] = []
    candidates = skipped = 0
    for row in rows.to_pylist():
        if row[COL.status] != Status.OK.value or not row[COL.url]:
            continue
        candidates += 1
        previous = done.get(row[COL.sample_id])
        if previous is not None and previous not in config.retry:
            skipped += 1
            continue
        start, end = row[COL.start_s], row[COL.end_s]
        section = (
            None
            if start is None and end is None
            else (start or 0.0, math.inf if end is None else end)
        )
        jobs.append(Job(row[COL.sample_id], row[COL.url], row[COL.source], section))
    return jobs, candidates, skipped


def run_download(
    dataset: Path,
    config: DownloadConfig = DownloadConfig(),
    *,
    engine: EngineConfig = EngineConfig(),
    sleep: Callable[[float], object] | None = None,
    on_result: Callable[[DownloadResult], None] | None = None,
) -> DownloadSummary:
    """Download every sample of the dataset that is not done yet.

    Args:
        dataset: the dataset root (with a manifest).
        config: format, pacing, retries, access options.
        engine: where the downloads run: threads here, or download actors on Ray.
        sleep: how the local engine's pauses wait (default: a wait that Ctrl-C ends; tests
            pass a recorder). Ray's pacer actor waits with ``time.sleep``.
        on_result: called after each sample (progress).

    Raises:
        BreakerOpen: the platform kept refusing; samples not reached stay to do.
        LowDiskSpace: the disk fell below ``min_free_gb``; finished rows are committed.
        InputError: no manifest, or an unsafe sample id in it (before any file operation).
    """
    started = time.perf_counter()
    layout = DatasetLayout(Path(dataset))
    schema = with_provenance(ledger_schema(*DOWNLOAD_FIELDS), STAGE, to_dict(config))
    limits = ShardLimits(max_rows=2000)
    with ShardWriter(layout.ledger_dir, STAGE, schema, limits=limits) as writer:
        shutil.rmtree(scratch_root(layout), ignore_errors=True)  # a killed run's; we hold the lock
        state = ledger_state(layout.ledger_dir, STAGE)
        jobs, candidates, skipped = plan_jobs(layout.root, config, state.latest)
        adoption = adopt(jobs, layout, config, state.ever_ok)  # what a killed run placed
        if adoption.results:
            writer.write([_row(result) for result in adoption.results])
            writer.flush()  # a second kill does not lose them
        jobs = adoption.jobs
        logger.info(
            "download: %d candidates, %d done before, %d adopted, %d to do",
            candidates,
            skipped,
            len(adoption.results),
            len(jobs),
        )
        try:
            with _SOURCES[engine.name](jobs, layout, config, engine, sleep) as source:
                counts, total_bytes = _record(source.results, len(jobs), writer, config, on_result)
                pauses = source.pauses()
        finally:
            close_children()  # idle yt-dlp children of this run
            shutil.rmtree(scratch_root(layout), ignore_errors=True)
    compact_writers(layout.root, [writer])
    summary = DownloadSummary(
        candidates=candidates,
        skipped=skipped,
        attempted=sum(counts.values()),
        by_status=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        bytes=total_bytes,
        seconds=time.perf_counter() - started,
        breaker_pauses=pauses,
        adopted=len(adoption.results),
    )
    logger.info("download: %s", summary.describe())
    return summary


@dataclass
class _Source:
    """Results as they finish, and how often the circuit breaker paused the run."""

    results: Iterator[DownloadResult]
    pauses: Callable[[], int]


@contextmanager
def _threads(
    jobs: list[Job],
    layout: DatasetLayout,
    config: DownloadConfig,
    engine: EngineConfig,
    sleep: Callable[[float], object] | None,
) -> Iterator[_Source]:
    """The local engine: a thread pool, at most 2 x concurrency queued."""
    stop = threading.Event()
    pause = sleep or stop.wait  # a pause ends early when the run stops
    breaker = CircuitBreaker(
        config.breaker_threshold,
        config.breaker_pause_s,
        config.breaker_max_pauses,
        sleep=pause,
        max_connect_failures=config.max_connect_failures,
    )
    pacing = Pacing(RateLimiter(config.rate, sleep=pause), breaker, pause, stop)
    hosts = HostLimiter(config.per_host)

    def work(job: Job) -> DownloadResult:
        with hosts.hold(urlsplit(job.url).hostname or ""):
            return download_sample(job, layout, config, pacing)

    pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="svm-download")

    def results() -> Iterator[DownloadResult]:
        queue = iter(jobs)
        pending: set[Future[DownloadResult]] = set()
        while True:
            while len(pending) < 2 * config.concurrency and (job := next(queue, None)) is not None:
                pending.add(pool.submit(work, job))
            if not pending:
                return
            finished, pending = wait(pending, timeout=_TICK_S, return_when=FIRST_COMPLETED)
            yield from finished_results(finished)  # BreakerOpen, LowDiskSpace: the run stops

    try:
        yield _Source(results(), lambda: breaker.pauses)
    finally:  # done, Ctrl-C or a stop: abort in-flight downloads, drop queued ones
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _ray(
    jobs: list[Job],
    layout: DatasetLayout,
    config: DownloadConfig,
    engine: EngineConfig,
    sleep: Callable[[float], object] | None,
) -> Iterator[_Source]:
    """The Ray engine: ``concurrency`` download actors paced by one shared pacer actor."""
    if not jobs:  # nothing to do: no Ray to start
        yield _Source(iter([]), lambda: 0)
        return
    with ray_session(engine) as ray:
        pacer = start_pacer(ray, config)
        downloads = RayDownloads(DatasetLayout(layout.root.resolve()), config, pacer)
        results = ray_results(
            ray,
            jobs,
            downloads,
            actors=config.concurrency,
            cpus_per_actor=engine.cpus_per_actor,
            tick_s=_TICK_S,
        )  # BreakerOpen, LowDiskSpace (an actor's stop, handed back as a result): the run stops
        try:
            yield _Source(results, lambda: int(ray.get(pacer.pauses.remote())))
        finally:
            results.close()  # kills the download actors
            ray.kill(pacer)


_SOURCES: Final = {"local": _threads, "ray": _ray}


def finished_results(finished: Iterable[Future[DownloadResult]]) -> Iterator[DownloadResult]:
    """The results of ``finished``; a stop one of them raised comes after every other result.

    Each finished download placed its media, so its row must be written before a
    ``BreakerOpen`` or ``LowDiskSpace`` of another one stops the run.

    Raises:
        BaseException: the first exception a future raised, once the others' results are out.
    """
    error: BaseException | None = None
    for future in finished:
        if (exc := future.exception()) is not None:
            error = error or exc
            continue
        yield future.result()
    if error is not None:
        raise error


class _TimedCommits:
    """The ledger writer, shared with a thread that commits it every ``every_s`` seconds.

    The commit timer does not depend on results arriving: while every download hangs (until its
    deadline, or a Ray actor that does not answer), finished rows are still committed.
    """

    def __init__(self, writer: ShardWriter, every_s: float) -> None:
        self.writer = writer
        self.every_s = every_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="svm-ledger-commit", daemon=True)

    def write(self, row: dict[str, Any]) -> None:
        """Buffer one ledger row (committed by the timer, or when the writer closes)."""
        with self._lock:
            self.writer.write([row])

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            with self._lock:
                try:
                    self.writer.flush()
                except OSError as exc:  # disk full...: the rows stay buffered, the close retries
                    logger.warning("download: committing the ledger failed: %s", exc)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


def _record(
    results: Iterator[DownloadResult],
    total: int,
    writer: ShardWriter,
    config: DownloadConfig,
    on_result: Callable[[DownloadResult], None] | None,
) -> tuple[Counter[str], int]:
    """Write each result as a ledger row; a timer commits them every ``commit_every_s``."""
    counts: Counter[str] = Counter()
    total_bytes = 0
    bar = Progress("download", total=total, unit="video")
    try:
        with _TimedCommits(writer, config.commit_every_s) as ledger:
            for result in results:
                ledger.write(_row(result))
                counts[result.status] += 1
                total_bytes += result.bytes
                bar.update(failed=result.status != Status.OK.value)
                bar.set_postfix(MB=f"{total_bytes / 1e6:.0f}")
                if on_result is not None:
                    on_result(result)
    finally:
        bar.close()
    return counts, total_bytes


def _row(result: DownloadResult) -> dict[str, Any]:
    facts = result.facts
    return {
        COL.sample_id: result.sample_id,
        COL.stage: STAGE,
        COL.status: result.status,
        COL.detail: result.detail,
        COL.attempts: result.attempts,
        COL.started_at: result.started_at,
        COL.seconds: result.seconds,
        COL.url: result.url,
        "media_path": result.media_path,
        "bytes": result.bytes,
        "format": result.format,
        "width": facts.width if facts else None,
        "height": facts.height if facts else None,
        "fps": facts.fps if facts else None,
        "has_audio": facts.has_audio if facts else None,
        "media_duration_s": facts.duration_s if facts else None,
        "container": result.container,
        "video_codec": facts.video_codec if facts else None,
        "audio_codec": facts.audio_codec if facts else None,
    }
