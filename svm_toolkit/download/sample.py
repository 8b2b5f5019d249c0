"""Download one sample: fetch, verify, place atomically; retry what is worth retrying.

The result is always a :class:`DownloadResult`, whatever happened; a file is placed under
``media/`` only when it verified (readable, the streams the format promised), named by its real
container and remuxed to MP4 by stream copy where its codecs allow
(:mod:`~svm_toolkit.download.conform`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from svm_toolkit.classify import RETRYABLE
from svm_toolkit.download.config import DownloadConfig
from svm_toolkit.download.conform import conform, placed_media, read_layout
from svm_toolkit.download.details import short_detail, sniff_page
from svm_toolkit.download.fetch import Deadline, NotDirect, cut_section, fetch_direct, fetch_ytdlp
from svm_toolkit.download.limits import DiskGuard, LowDiskSpace
from svm_toolkit.download.pacing import Breaker, Limiter
from svm_toolkit.errors import SampleError
from svm_toolkit.io.paths import DatasetLayout, check_sample_id
from svm_toolkit.probe import MediaFacts, probe_media
from svm_toolkit.schema import Source, Status

SCRATCH: Final = ".tmp"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """What to download for one sample."""

    sample_id: str
    url: str
    source: str
    section: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """The outcome of one sample (one ledger row)."""

    sample_id: str
    url: str
    status: str
    detail: str | None
    attempts: int
    started_at: dt.datetime
    seconds: float
    media_path: str | None = None
    bytes: int = 0
    format: str | None = None
    facts: MediaFacts | None = None
    container: str | None = None


@dataclass(frozen=True, slots=True)
class Placed:
    """A verified file placed in ``media/``: where, how it was fetched, what it holds.

    Attributes:
        path: the placed file (its suffix names its real container).
        format: how it was fetched (``direct`` or the yt-dlp format).
        facts: the probe facts of the placed file.
        container: the placed file's container (``mp4``, ``webm``, ``mkv``, ``ogg``...).
        note: what was done to the served file (remuxed, transcoded), else ``None``.
    """

    path: Path
    format: str
    facts: MediaFacts
    container: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Pacing:
    """The run-wide pacing every worker goes through, and the run's stop signal."""

    limiter: Limiter
    breaker: Breaker
    sleep: Callable[[float], object]
    stop: threading.Event


def scratch_root(layout: DatasetLayout) -> Path:
    """Where downloads land before they verify (same file system as ``media/``)."""
    return layout.media_dir / SCRATCH


def scratch_path(layout: DatasetLayout, sample_id: str) -> Path:
    """A sample's scratch folder, checked to be inside the dataset root before anything uses it.

    Raises:
        InputError: the id is unsafe (``../x``, a path separator, too long...).
    """
    return layout._inside(scratch_root(layout) / check_sample_id(sample_id))


def disk_guard(layout: DatasetLayout, config: DownloadConfig) -> DiskGuard:
    """The run's free-space guard on the disk of ``media/``."""
    return DiskGuard(layout.media_dir, int(config.min_free_gb * 1e9))


def download_sample(
    job: Job, layout: DatasetLayout, config: DownloadConfig, pacing: Pacing
) -> DownloadResult:
    """Download, verify and place one sample, retrying retryable failures with backoff.

    ``config.timeout_s`` is the deadline of the whole sample, all attempts and the pauses
    between them together, counted from its first attempt: a retry starts only when time is
    left for it, so every sample ends by ``timeout_s`` (plus the seconds a killed yt-dlp child
    or a shut socket takes to let go) however a server behaves.

    Any failure of the sample (an unexpected exception included) is its result's status; only
    a stop of the whole run escapes.

    Raises:
        InputError: the sample id is unsafe (checked before any file operation).
        LowDiskSpace: the disk fell below ``--min-free-gb``: the run must stop.
        BreakerOpen: the circuit breaker gave up: the run must stop.
    """
    scratch_path(layout, job.sample_id)
    guard = disk_guard(layout, config)
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    attempt = 0
    deadline: Deadline | None = None
    while True:
        attempt += 1
        pacing.breaker.wait()
        pacing.limiter.acquire()
        guard.check()
        if deadline is None:  # the sample's clock starts with its first attempt
            deadline = Deadline.after(config.timeout_s, pacing.stop)
        try:
            placed = _attempt(job, layout, config, deadline, guard)
        except SampleError as exc:
            pacing.breaker.record(exc.status, exc.message)
            pause = min(config.backoff_max_s, config.backoff_s * 2 ** (attempt - 1))
            pause *= random.uniform(0.5, 1.5)
            retry = (
                exc.status in RETRYABLE
                and attempt < config.max_attempts
                and not pacing.stop.is_set()  # a stopping run tries nothing new
                and deadline.left() > pause  # time is left for another attempt
            )
            if retry:
                pacing.sleep(pause)
                continue
            return DownloadResult(
                job.sample_id,
                job.url,
                exc.status,
                exc.detail.encode("utf-8", "replace").decode("utf-8"),  # no lone surrogates
                attempt,
                started,
                time.perf_counter() - clock,
            )
        pacing.breaker.record(Status.OK.value)
        return DownloadResult(
            job.sample_id,
            job.url,
            Status.OK.value,
            placed.note,
            attempt,
            started,
            time.perf_counter() - clock,
            media_path=placed.path.relative_to(layout.root).as_posix(),
            bytes=placed.path.stat().st_size,
            format=placed.format,
            facts=placed.facts,
            container=placed.container,
        )


def _attempt(
    job: Job,
    layout: DatasetLayout,
    config: DownloadConfig,
    deadline: Deadline,
    guard: DiskGuard,
) -> Placed:
    scratch = scratch_path(layout, job.sample_id)
    try:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        fetched, path = None, None
        if job.source == Source.URL.value:
            try:
                fetched = fetch_direct(job.url, scratch, config, deadline, guard)
            except NotDirect:
                fetched = None
            else:  # a direct file is whole: cut the clip out of it
                path = fetched.path
                if job.section is not None:  # into its real container, whatever the URL said
                    suffix = read_layout(path).suffix
                    path = cut_section(path, scratch / f"clip{suffix}", job.section)
        if fetched is None or path is None:  # yt-dlp fetches only the section itself
            fetched = fetch_ytdlp(job.url, scratch, config, deadline, job.section, guard)
            path = fetched.path
        facts = probe(path)
        check_streams(facts, config)
        stored = conform(path, config, deadline)  # its true name; MP4 by stream copy if it can
        if stored.action != "kept":  # the facts of the file kept
            facts = probe(stored.path)
            check_streams(facts, config)
        final = layout.media_path(job.sample_id, stored.path.suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stored.path, final)
        for old in placed_media(layout, job.sample_id):  # an earlier download's other suffix
            if old != final:
                old.unlink(missing_ok=True)
        return Placed(final, fetched.format, facts, stored.container, stored.note)
    except LowDiskSpace:
        raise
    except SampleError as exc:  # one short line, no path into the scratch folder (it goes)
        raise SampleError(exc.status, short_detail(exc.detail, scratch), exc.message) from None
    except OSError as exc:  # the disk said no (full, read-only): the run goes on
        raise SampleError(
            Status.IO_ERROR.value, short_detail(f"{type(exc).__name__}: {exc}", scratch)
        ) from None
    except Exception as exc:  # a failure of one sample is never the run's
        logger.warning("download: %s failed unexpectedly: %r", job.sample_id, exc)
        logger.debug("download: %s", job.sample_id, exc_info=True)  # the traceback, with -vv
        raise SampleError(
            Status.INTERNAL_ERROR.value, short_detail(f"{type(exc).__name__}: {exc}", scratch)
        ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def probe(path: Path) -> MediaFacts:
    """:func:`probe_media`, except that a web page or text served as media is ``not_media``.

    A server that answers a video URL with an HTML page (a soft 404, a login or consent page, a
    captive portal), even as ``video/mp4``, sent no media: the verdict is the page's, not a
    decoder's.

    Raises:
        SampleError: ``not_media`` for a page or text, else as :func:`probe_media`.
    """
    try:
        return probe_media(path)
    except SampleError as exc:
        if exc.status == Status.DECODE_ERROR.value and (what := sniff_page(path)):
            raise SampleError(Status.NOT_MEDIA.value, what) from None
        raise


def check_streams(facts: MediaFacts, config: DownloadConfig) -> None:
    """Refuse a file without the streams its format promises (downloads and adopted files).

    Raises:
        SampleError: ``no_audio``, or ``not_media`` for a video format without a video stream.
    """
    if not facts.has_audio:
        raise SampleError(Status.NO_AUDIO.value, "the file has no audio stream")
    if not config.audio_only and not facts.has_video:
        raise SampleError(
            Status.NOT_MEDIA.value, "the file has no video stream (pass --audio-only for audio)"
        )
