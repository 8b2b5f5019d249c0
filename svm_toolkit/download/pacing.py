"""Pacing shared by all download workers: a global rate limit, per-host limits, a circuit breaker.

Clocks and sleeps are injectable so tests count instead of timing.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from svm_toolkit.errors import SvmError
from svm_toolkit.schema import Status


class Limiter(Protocol):
    """What a download goes through before it starts: :class:`RateLimiter` or a remote one."""

    def acquire(self) -> None:
        """Wait for this download's turn."""


class Breaker(Protocol):
    """What a download reports its outcome to: :class:`CircuitBreaker` or a remote one."""

    def wait(self) -> None:
        """Block while the run is paused; raise :class:`BreakerOpen` once it gave up."""

    def record(self, status: str) -> None:
        """Count one outcome."""


class RateLimiter:
    """Start at most ``rate`` downloads per second across all threads (a token bucket of size 1).

    Args:
        rate: downloads per second, or ``None`` for no limit.
        clock: monotonic seconds.
        sleep: waits that many seconds.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.interval = 0.0 if rate is None else 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait for this thread's turn."""
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


class HostLimiter:
    """At most ``limit`` downloads in flight per host."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._semaphores: dict[str, threading.BoundedSemaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(self._limit)
        )
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, host: str) -> Iterator[None]:
        """Hold one of ``host``'s slots for the duration of the block."""
        self.acquire(host)
        try:
            yield
        finally:
            self.release(host)

    def acquire(self, host: str) -> None:
        """Wait for one of ``host``'s slots and take it."""
        self._semaphore(host).acquire()

    def release(self, host: str) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        self._semaphore(host).release()

    def _semaphore(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            return self._semaphores[host]


class BreakerOpen(SvmError):
    """The platform keeps refusing (rate limits, bot checks): the run stopped to protect the IP."""


class CircuitBreaker:
    """Pause the whole run after ``threshold`` consecutive rate-limit / bot-check outcomes.

    Every worker checks :meth:`wait` before a download, so one pause holds them all. After
    ``max_pauses`` pauses the next trip raises :class:`BreakerOpen`.

    Args:
        threshold: consecutive refusals that trip the breaker.
        pause_s: how long a trip pauses the run, seconds.
        max_pauses: trips that pause; the one after stops the run.
        sleep: waits that many seconds.
    """

    TRIPS = frozenset({Status.RATE_LIMITED.value, Status.BOT_CHECK.value})

    def __init__(
        self,
        threshold: int,
        pause_s: float,
        max_pauses: int,
        *,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.threshold, self.pause_s, self.max_pauses = threshold, pause_s, max_pauses
        self.pauses = 0
        self._consecutive = 0
        self._sleep = sleep
        self._lock = threading.Lock()
        self._open: BreakerOpen | None = None
        self._resume_at = 0.0

    def record(self, status: str) -> None:
        """Count one outcome; a run of refusals trips the breaker."""
        with self._lock:
            if status not in self.TRIPS:
                self._consecutive = 0
                return
            self._consecutive += 1
            if self._consecutive < self.threshold:
                return
            self._consecutive = 0
            if self.pauses >= self.max_pauses:
                self._open = BreakerOpen(
                    f"{self.threshold} downloads in a row were refused ({status}) after "
                    f"{self.pauses} pauses of {self.pause_s:g} s; stopping to protect this IP. "
                    "Wait, lower --rate, or pass --cookies, then run the same command to resume"
                )
                return
            self.pauses += 1
            self._resume_at = time.monotonic() + self.pause_s

    def wait(self) -> None:
        """Block while the run is paused; raise :class:`BreakerOpen` once it gave up."""
        if self._open is not None:
            raise self._open
        with self._lock:
            resume_at = self._resume_at
        remaining = resume_at - time.monotonic()
        if remaining > 0:
            self._sleep(remaining)
            with self._lock:
                if self._resume_at == resume_at:  # this pause is served (also under a fake sleep)
                    self._resume_at = 0.0
        if self._open is not None:
            raise self._open
