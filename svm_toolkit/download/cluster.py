"""Downloads spread over a Ray cluster, paced as one run.

The platform sees the cluster's downloads together, so the rate limit, the per-host limits and
the circuit breaker must be global: one :class:`Pacer` actor holds the same
:class:`~svm_toolkit.download.pacing.RateLimiter`, ``HostLimiter`` and ``CircuitBreaker`` the
local engine uses, and every download actor goes through it by remote calls. A download actor
runs the same :func:`~svm_toolkit.download.sample.download_sample` as a local thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from svm_toolkit.download.config import DownloadConfig
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

    def record(self, status: str) -> None:
        """Count one outcome for the breaker."""
        self.breaker.record(status)

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

    def record(self, status: str) -> None:
        self.pacer.record.remote(status)


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

    def __call__(self) -> Callable[[Job], DownloadResult | BreakerOpen]:
        """The actor's download function: one job -> its result (or the breaker's stop)."""
        pacing = Pacing(
            _RemoteLimiter(self.pacer), _RemoteBreaker(self.pacer), time.sleep, threading.Event()
        )

        def download(job: Job) -> DownloadResult | BreakerOpen:
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

        return download
