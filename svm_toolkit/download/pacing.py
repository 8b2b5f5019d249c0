"""Pacing shared by all download workers: a global rate limit, per-host limits, a circuit breaker.

The breaker also stops a run whose server cannot be reached at all (:class:`ConnectFailures`):
connection refused, a name that does not resolve, an unreachable network.

Clocks and sleeps are injectable so tests count instead of timing.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, Protocol

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

    def record(self, status: str, detail: str | None = None) -> None:
        """Count one outcome (``detail``: its message, which tells a connect failure)."""


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


class ServiceDown(BreakerOpen):
    """Every request failed to connect (refused, DNS, unreachable): the run stopped.

    A :class:`BreakerOpen`, so every path that stops a run on the breaker (finished rows
    committed first, the samples not reached left to do) stops it on this too; same exit code.
    """


#: What a request that never reached a server says: the errno texts of Linux, macOS and Windows
#: as Python words them, and urllib3's wrappers as yt-dlp quotes them ("Failed to resolve
#: 'host' (...)" in urllib3/exceptions.py, "Unable to connect to proxy" in urllib3/connection.py).
CONNECT_FAILURE: Final = re.compile(
    r"connection refused|actively refused it|failed to resolve '|name or service not known"
    r"|temporary failure in name resolution|no address associated with hostname"
    r"|nodename nor servname provided|getaddrinfo failed|network is unreachable"
    r"|no route to host|host is unreachable|unable to connect to proxy",
    re.IGNORECASE,
)
#: A server answered: whatever its page says ("connection refused" in a 502 page), it is up.
_ANSWERED: Final = re.compile(r"HTTP Error \d{3}", re.IGNORECASE)
#: Consecutive connect failures that stop a run (``max_connect_failures``): more than the
#: retries of a few samples, so one dead host among many does not stop it.
DEFAULT_MAX_CONNECT_FAILURES: Final = 20


def is_connect_failure(status: str, detail: str | None) -> bool:
    """Whether an outcome is a request that never reached a server.

    Example:
        >>> is_connect_failure("network_error", "URLError: [Errno 111] Connection refused")
        True
        >>> is_connect_failure("network_error", "HTTP Error 502: connection refused upstream")
        False
    """
    if status != Status.NETWORK_ERROR.value or not detail:
        return False
    return bool(CONNECT_FAILURE.search(detail)) and not _ANSWERED.search(detail)


class ConnectFailures:
    """Counts requests in a row that failed to connect; at ``limit`` the service is down.

    Any other outcome (an answer, even an error page; a timeout) starts the count again. Used
    by the download breaker and the YT8M resolver. Thread-safe.

    Args:
        limit: consecutive connect failures that stop the run (0: never stop).
        what: what the run asks, for the message (``downloads``, ``lookups``).
        resume: how to go on once the service is back, for the message.
    """

    def __init__(self, limit: int, *, what: str, resume: str) -> None:
        self.limit, self.what, self.resume = limit, what, resume
        self._count = 0
        self._lock = threading.Lock()
        self.down: ServiceDown | None = None

    def record(self, status: str, detail: str | None) -> ServiceDown | None:
        """Count one attempt's outcome; return the stop once ``limit`` failures came in a row."""
        with self._lock:
            if self.down is not None:
                return self.down
            if not is_connect_failure(status, detail):
                self._count = 0
                return None
            self._count += 1
            if not self.limit or self._count < self.limit:
                return None
            self.down = ServiceDown(
                f"{self._count} {self.what} in a row could not connect (last: "
                f"{str(detail)[:200]}): the service, the network, DNS or the proxy is down; "
                f"stopped instead of spending every sample's retries. Check the connection, "
                f"then {self.resume} (--max-connect-failures sets this bound; 0: never stop)"
            )
            return self.down

    def check(self) -> None:
        """Raise :class:`ServiceDown` once the limit was reached."""
        if self.down is not None:
            raise self.down


class CircuitBreaker:
    """Pause the whole run after ``threshold`` consecutive refusals (:attr:`TRIPS`).

    Every worker checks :meth:`wait` before a download, so one pause holds them all. After
    ``max_pauses`` pauses the next trip raises :class:`BreakerOpen`. Apart from that,
    ``max_connect_failures`` attempts in a row that could not connect stop the run at once
    (:class:`ServiceDown`, no pause: waiting a minute does not bring a service back).

    Args:
        threshold: consecutive refusals that trip the breaker.
        pause_s: how long a trip pauses the run, seconds.
        max_pauses: trips that pause; the one after stops the run.
        sleep: waits that many seconds.
        max_connect_failures: consecutive connect failures that stop the run (0: never).
    """

    #: The platform refusing us, not one video failing: a 403 on media bytes repeated across
    #: samples (missing proof-of-origin tokens, throttling) and an IP block count too.
    TRIPS = frozenset(
        {
            Status.RATE_LIMITED.value,
            Status.BOT_CHECK.value,
            Status.MEDIA_FORBIDDEN.value,
            Status.IP_BLOCKED.value,
        }
    )

    def __init__(
        self,
        threshold: int,
        pause_s: float,
        max_pauses: int,
        *,
        sleep: Callable[[float], object] = time.sleep,
        max_connect_failures: int = DEFAULT_MAX_CONNECT_FAILURES,
    ) -> None:
        self.threshold, self.pause_s, self.max_pauses = threshold, pause_s, max_pauses
        self.connects = ConnectFailures(
            max_connect_failures,
            what="download attempts",
            resume="run the same command with --retry network_error to resume",
        )
        self.pauses = 0
        self._consecutive = 0
        self._sleep = sleep
        self._lock = threading.Lock()
        self._open: BreakerOpen | None = None
        self._resume_at = 0.0

    def record(self, status: str, detail: str | None = None) -> None:
        """Count one outcome; a run of refusals trips the breaker, one of connect failures stops.

        Args:
            status: the attempt's status.
            detail: its message (tells a connect failure from other network errors).
        """
        if (down := self.connects.record(status, detail)) is not None:
            with self._lock:
                self._open = self._open or down
            return
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
