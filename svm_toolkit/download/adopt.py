"""Adopt media files a killed run placed but never recorded: a kill costs only what was in flight.

A verified file is renamed into ``media/`` at once, but its ledger row is committed with the
next timed commit (``commit_every_s``); a run killed in between leaves finished files that no
ledger row accounts for. Before downloading anything, a run looks for the file of each sample it
is about to download (``<id>.<suffix>``, any suffix: files are named by their real container),
verifies it exactly as a fresh download is verified (the size cap,
:func:`~svm_toolkit.probe.probe_media`, the streams the format promises, a name that tells its
real container) and records it ``ok`` without a request; a file that fails is deleted and its
sample downloaded again.

Only a sample that was **never ok** in the ledger is adopted: one without a row, or whose rows
are all failures (a ``--retry`` run killed after placing its file). Download failures never
touch ``media/``, so such a file can only come from an interrupted run. A sample with an ``ok``
row in its history is downloaded again: ``--retry ok`` asks for a new file, and a file beside a
later failure (an ``ok`` sample retried and then failing) is the old download, not this run's.

Probing reads headers only (about 0.6 ms a file for a small clip), so 1,000 files take well under
a second on a thread pool, before any download starts, on either engine.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from svm_toolkit.download.config import DownloadConfig
from svm_toolkit.download.conform import (
    is_placed_name,
    placed_media,
    read_layout,
    stored_container,
    stored_problem,
)
from svm_toolkit.download.sample import DownloadResult, Job, check_streams
from svm_toolkit.errors import SampleError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.probe import MediaFacts, probe_media
from svm_toolkit.schema import Status

logger = logging.getLogger(__name__)

#: The ledger detail and format of an adopted file.
ADOPTED: Final = "adopted"
ADOPTED_DETAIL: Final = "adopted: found in media/ after an interrupted run"


@dataclass(frozen=True, slots=True)
class Adoption:
    """What :func:`adopt` found.

    Attributes:
        results: ``ok`` results of the adopted files (one ledger row each).
        jobs: the jobs still to download, in their order.
        rejected: files that failed verification and were deleted (their samples are in
            ``jobs``).
    """

    results: list[DownloadResult]
    jobs: list[Job]
    rejected: int = 0


def adopt(
    jobs: list[Job],
    layout: DatasetLayout,
    config: DownloadConfig,
    ever_ok: Collection[str],
) -> Adoption:
    """Adopt the verified media files of ``jobs`` whose samples were never ``ok``.

    Args:
        jobs: the planned downloads.
        layout: the dataset.
        config: the run's settings (the file suffix, size cap and expected streams).
        ever_ok: sample ids with an ``ok`` row anywhere in their ledger history (never adopted).

    Returns:
        The adopted results and the jobs left to download.
    """
    listings: dict[Path, frozenset[str]] = {}  # one listing per media/ sub-folder

    def listing(folder: Path) -> frozenset[str]:
        if folder not in listings:
            try:
                listings[folder] = frozenset(os.listdir(folder))
            except FileNotFoundError:
                listings[folder] = frozenset()
        return listings[folder]

    candidates = [
        job
        for job in jobs
        if job.sample_id not in ever_ok
        and any(
            is_placed_name(job.sample_id, name)
            for name in listing(layout.media_path(job.sample_id, ".mp4").parent)
        )
    ]
    if not candidates:
        return Adoption([], jobs)
    with ThreadPoolExecutor(config.concurrency, thread_name_prefix="svm-adopt") as pool:
        found = list(pool.map(lambda job: _adopt_one(job, layout, config), candidates))
    results = [r for r in found if r is not None]
    adopted = {r.sample_id for r in results}
    rejected = len(found) - len(results)
    logger.info(
        "download: adopted %d files an interrupted run placed in media/ (%d failed verification "
        "and are downloaded again)",
        len(results),
        rejected,
    )
    return Adoption(results, [j for j in jobs if j.sample_id not in adopted], rejected)


def _adopt_one(job: Job, layout: DatasetLayout, config: DownloadConfig) -> DownloadResult | None:
    """Verify one placed file: its ``ok`` result, or ``None`` (the file is deleted).

    Of several files of one sample (only a crash between placing a file and deleting an
    earlier one of another suffix leaves two), the newest is verified and the others deleted.
    """
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    files = placed_media(layout, job.sample_id)
    if not files:
        return None
    files.sort(key=_mtime)
    path = files.pop()
    for older in files:
        older.unlink(missing_ok=True)
    try:
        facts, container = verify_media(path, config)
        size = path.stat().st_size
    except (SampleError, OSError) as exc:
        detail = exc.detail if isinstance(exc, SampleError) else str(exc)
        logger.info("download: %s: deleting %s, it failed verification: %s", job.sample_id,
                    path.name, detail)  # fmt: skip
        path.unlink(missing_ok=True)
        return None
    except Exception as exc:  # a bug meeting one file: leave it to a fresh download
        logger.warning("download: %s: verifying %s failed unexpectedly: %r", job.sample_id,
                       path.name, exc)  # fmt: skip
        return None
    return DownloadResult(
        job.sample_id,
        job.url,
        Status.OK.value,
        ADOPTED_DETAIL,
        0,  # no download attempt
        started,
        time.perf_counter() - clock,
        media_path=path.relative_to(layout.root).as_posix(),
        bytes=size,
        format=ADOPTED,
        facts=facts,
        container=container,
    )


def verify_media(path: Path, config: DownloadConfig) -> tuple[MediaFacts, str]:
    """Check a placed file as a fresh download is checked: the size cap, readable, its streams.

    Its name must also tell its real container (``.mp4`` for an MP4...) and its container and
    codecs be what this run stores (:func:`~svm_toolkit.download.conform.conform` would keep
    it as it is): a file an older version placed under a false name is downloaded again.

    Returns:
        The file's facts and its container's short name (``mp4``, ``webm``...).

    Raises:
        SampleError: ``too_large``, ``decode_error``, ``not_media`` or ``no_audio``.
        OSError: the file cannot be read.
    """
    size, cap = path.stat().st_size, config.file_cap_bytes
    if size > cap:
        raise SampleError(
            Status.TOO_LARGE.value, f"the file is larger than the size cap ({size:,} > {cap:,})"
        )
    facts = probe_media(path)
    check_streams(facts, config)  # the same stream rule as a download
    if why := stored_problem(read_layout(path), path.suffix, config):
        raise SampleError(Status.DECODE_ERROR.value, f"{path.name}: {why}")
    return facts, stored_container(path.suffix)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
