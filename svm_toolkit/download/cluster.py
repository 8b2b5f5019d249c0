"""Downloads spread over a Ray cluster, paced as one run.

The platform sees the cluster's downloads together, so the rate limit, the per-host limits and
the circuit breaker must be global: one :class:`Pacer` actor holds the same
:class:`~svm_toolkit.download.pacing.RateLimiter`, ``HostLimiter`` and ``CircuitBreaker`` the
local engine uses, and every download actor goes through it by remote calls. A download actor
runs the same :func:`~svm_toolkit.download.sample.download_sample` as a local thread.

The download actors are plain Ray actors fed one job at a time by :func:`ray_results`, not a
Ray Data pipeline: Ray Data handed a finished sample to the driver only when a hanging one
beside it ended (measured: 13.7 s instead of about 1 s), and a finished sample's row must reach
the ledger while others hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from svm_toolkit.download.config import DownloadConfig
from svm_toolkit.download.limits import LowDiskSpace
from svm_toolkit.download.pacing import BreakerOpen, CircuitBreaker, HostLimiter, RateLimiter
from svm_toolkit.download.sample import DownloadResult, Job, Pacing, download_sample
from svm_toolkit.io.paths import DatasetLayout


class Pacer:
    """The run's pacing in one (threaded) Ray actor: every call may block its caller only."""

    def __init__(self, config: DownloadConfig) -> None:
        self.limiter = RateLimiter(config.rate)
        self.hosts = HostLimiter(config.per_host)
        self.breaker = CircuitBreaker(
            config.breaker_threshold,
            config.breaker_pause_s,
            config.breaker_max_pauses,
            max_connect_failures=config.max_connect_failures,
        )

    def acquire(self) -> None:
        """Wait for the next start the rate limit allows."""
        self.limiter.acquire()

    def enter(self, host: str) -> None:
        """Wait for a free slot of ``host`` and take it."""
        self.hosts.acquire(host)

    def leave(self, host: str) -> None:
        """Give back a slot of ``host``."""
        self.hosts.release(host)

    def wait(self) -> None:
        """Block while the run is paused; raise ``BreakerOpen`` once it gave up."""
        self.breaker.wait()

    def record(self, status: str, detail: str | None = None) -> None:
        """Count one outcome for the breaker (``detail`` tells a connect failure)."""
        self.breaker.record(status, detail)

    def pauses(self) -> int:
        """Times the breaker paused the run."""
        return self.breaker.pauses


def start_pacer(ray: Any, config: DownloadConfig) -> Any:
    """Start the run's :class:`Pacer` actor (threads enough for every download to wait in it)."""
    actor = ray.remote(num_cpus=0, max_concurrency=4 * config.concurrency + 8)(Pacer)
    return actor.remote(config)


@dataclass(frozen=True, slots=True)
class _RemoteLimiter:
    pacer: Any

    def acquire(self) -> None:
        import ray

        ray.get(self.pacer.acquire.remote())


@dataclass(frozen=True, slots=True)
class _RemoteBreaker:
    pacer: Any

    def wait(self) -> None:
        import ray

        ray.get(self.pacer.wait.remote())  # re-raises BreakerOpen

    def record(self, status: str, detail: str | None = None) -> None:
        self.pacer.record.remote(status, detail)


@dataclass(frozen=True, slots=True)
class RayDownloads:
    """A download actor's set-up: builds the per-job function (one download at a time).

    Attributes:
        layout: the dataset (a path every node mounts).
        config: the run's download settings.
        pacer: the run's :class:`Pacer` actor handle.
    """

    layout: DatasetLayout
    config: DownloadConfig
    pacer: Any

    def __call__(self) -> Callable[[Job], DownloadResult | BreakerOpen | LowDiskSpace]:
        """The actor's download function: one job -> its result, or the run's stop.

        A stop (the breaker gave up, the disk fell below ``--min-free-gb``) is returned, not
        raised, so the driver re-raises it as itself (``LowDiskSpace``: exit code 4), not as a
        Ray error.
        """
        pacing = Pacing(
            _RemoteLimiter(self.pacer), _RemoteBreaker(self.pacer), time.sleep, threading.Event()
        )

        def download(job: Job) -> DownloadResult | BreakerOpen | LowDiskSpace:
            import ray

            host = urlsplit(job.url).hostname or ""
            try:
                ray.get(self.pacer.enter.remote(host))
                try:
                    return download_sample(job, self.layout, self.config, pacing)
                finally:
                    self.pacer.leave.remote(host)
            except BreakerOpen as exc:  # handed to the driver, which stops the run
                return BreakerOpen(str(getattr(exc, "cause", exc)))  # without Ray's traceback
            except LowDiskSpace as exc:
                return LowDiskSpace(str(exc))

        return download


class DownloadActor:
    """One download actor: builds :class:`RayDownloads`' function once, runs one job a call."""

    def __init__(self, downloads: RayDownloads) -> None:
        self.download = downloads()

    def ready(self) -> None:
        """Answer once the actor runs (a job is handed only to a started actor)."""

    def run(self, job: Job) -> DownloadResult | BreakerOpen | LowDiskSpace:
        """Download one job (see :meth:`RayDownloads.__call__`)."""
        return self.download(job)


def ray_results(
    ray: Any,
    jobs: Sequence[Job],
    downloads: RayDownloads,
    *,
    actors: int,
    cpus_per_actor: float,
    tick_s: float = 1.0,
) -> Generator[DownloadResult, None, None]:
    """Run ``jobs`` on ``actors`` download actors; yield each result as soon as it finishes.

    Each started actor holds one job at a time (an actor the cluster has no room for never gets
    one). Results that finished together all come out before a stop one of them returned is
    raised; the actors are killed when the iteration ends.

    Raises:
        BreakerOpen: the circuit breaker gave up (returned by an actor).
        LowDiskSpace: the disk fell below ``--min-free-gb`` in an actor.
    """
    remote = ray.remote(num_cpus=cpus_per_actor)(DownloadActor)
    started = [remote.remote(downloads) for _ in range(max(1, min(actors, len(jobs))))]
    starting = {actor.ready.remote(): actor for actor in started}  # ref -> an actor not up yet
    pool: list[Any] = []  # started actors without a job
    pending: dict[Any, Any] = {}  # object ref -> the actor running its job
    queue = iter(jobs)
    job = next(queue, None)
    try:
        while True:
            while pool and job is not None:
                actor = pool.pop()
                pending[actor.run.remote(job)] = actor
                job = next(queue, None)
            if not pending and job is None:
                return
            waiting = [*pending, *starting]
            if not waiting:  # every actor failed to start (Ray reports why in its logs)
                raise RuntimeError("no download actor could start on the Ray cluster")
            ready, _ = ray.wait(waiting, num_returns=1, timeout=tick_s)
            if ready:  # and every other one that finished by now
                rest = [ref for ref in waiting if ref not in ready]
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0) if rest else ([], [])
                ready = [*ready, *more]
            stop: BreakerOpen | LowDiskSpace | None = None
            for ref in ready:
                if ref in starting:
                    pool.append(starting.pop(ref))
                    continue
                pool.append(pending.pop(ref))
                result = ray.get(ref)
                if isinstance(result, BreakerOpen | LowDiskSpace):
                    stop = stop or result
                else:
                    yield result
            if stop is not None:
                raise stop
    finally:
        for actor in started:
            ray.kill(actor)
