from __future__ import annotations

import threading
import time

import pytest

from svm_toolkit.download.fetch import fail
from svm_toolkit.download.pacing import (
    BreakerOpen,
    CircuitBreaker,
    ConnectFailures,
    HostLimiter,
    RateLimiter,
    ServiceDown,
    is_connect_failure,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_rate_limiter_spaces_starts() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)  # one start every 0.25 s
    for _ in range(5):
        limiter.acquire()
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]


def test_rate_limiter_off() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        limiter.acquire()
    assert clock.sleeps == []


def test_host_limiter_counts_concurrency() -> None:
    hosts = HostLimiter(2)
    lock = threading.Lock()
    active = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}

    def work(host: str) -> None:
        with hosts.hold(host):
            with lock:
                active[host] += 1
                peak[host] = max(peak[host], active[host])
            time.sleep(0.02)
            with lock:
                active[host] -= 1

    threads = [threading.Thread(target=work, args=(h,)) for h in "aaaaaabbb"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == {"a": 2, "b": 2}


def test_breaker_pauses_then_stops() -> None:
    pauses: list[float] = []
    breaker = CircuitBreaker(threshold=3, pause_s=60, max_pauses=2, sleep=pauses.append)
    for status in ["rate_limited", "bot_check", "ok", "rate_limited", "rate_limited"]:
        breaker.record(status)  # an ok in between resets the run of refusals
    breaker.wait()
    assert pauses == [] and breaker.pauses == 0
    breaker.record("bot_check")  # third in a row: first pause
    breaker.wait()
    assert breaker.pauses == 1 and len(pauses) == 1 and 59 < pauses[0] <= 60
    for _ in range(3):
        breaker.record("rate_limited")
    breaker.wait()
    assert breaker.pauses == 2
    for _ in range(3):
        breaker.record("rate_limited")
    with pytest.raises(BreakerOpen, match=r"3 downloads in a row were refused .* after 2 pauses"):
        breaker.wait()


def test_repeated_media_403s_and_ip_blocks_trip_the_breaker() -> None:
    pauses: list[float] = []
    breaker = CircuitBreaker(threshold=3, pause_s=60, max_pauses=2, sleep=pauses.append)
    for status in ["media_forbidden", "ip_blocked", "media_forbidden"]:
        breaker.record(status)
    breaker.wait()
    assert breaker.pauses == 1 and len(pauses) == 1
    for status in ["media_forbidden", "unavailable", "media_forbidden", "media_forbidden"]:
        breaker.record(status)  # a video that is gone resets the run: it is not a refusal
    breaker.wait()
    assert breaker.pauses == 1


#: Messages of requests that never reached a server, as the download paths and the resolver
#: word them: the direct path and the resolver quote Python's OSError (Linux errno texts; macOS
#: and Windows word them as in the last rows), yt-dlp quotes urllib3's wrappers
#: ("Failed to establish a new connection: ..." and "Failed to resolve '<host>' (...)" in
#: urllib3/connection.py and urllib3/exceptions.py, captured from yt-dlp on a closed port).
CONNECT_FAILURES = [
    "URLError: [Errno 111] Connection refused",
    "ConnectionRefusedError: [Errno 111] Connection refused",
    "URLError: [Errno -2] Name or service not known",
    "gaierror: [Errno -3] Temporary failure in name resolution",
    "URLError: [Errno -5] No address associated with hostname",
    "URLError: [Errno 101] Network is unreachable",
    "URLError: [Errno 113] No route to host",
    "ERROR: [generic] watch?v=x: Unable to download webpage: HTTPConnection(host='127.0.0.1', "
    "port=49639): Failed to establish a new connection: [Errno 111] Connection refused (caused "
    "by TransportError(...))",
    "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTPSConnection("
    "host='www.youtube.com', port=443): Failed to resolve 'www.youtube.com' ([Errno -2] Name or "
    "service not known) (caused by TransportError(...))",
    "ERROR: Unable to download webpage: Unable to connect to proxy (caused by ProxyError(...))",
    "URLError: [Errno 61] Connection refused",  # macOS
    "URLError: [Errno 8] nodename nor servname provided, or not known",  # macOS
    "URLError: [WinError 10061] No connection could be made because the target machine "
    "actively refused it",
    "URLError: [Errno 11001] getaddrinfo failed",  # Windows
]
#: The server answered, or the connection broke after it was made: the service is up.
ANSWERED = [
    ("network_error", "HTTP Error 502: Bad Gateway. upstream connect error: connection refused"),
    ("network_error", "ConnectionResetError: [Errno 104] Connection reset by peer"),
    ("network_error", "RemoteDisconnected: Remote end closed connection without response"),
    ("network_error", "got 100 of 2000 bytes (connection closed early)"),
    ("timeout", "timed out after 30 s"),
    ("unavailable", "HTTP Error 404: Not Found"),
    ("ok", None),
    ("network_error", None),
]


@pytest.mark.parametrize("detail", CONNECT_FAILURES)
def test_connect_failures_are_told_apart(detail: str) -> None:
    assert is_connect_failure("network_error", detail)


@pytest.mark.parametrize(("status", "detail"), ANSWERED)
def test_answers_and_broken_connections_are_not_connect_failures(
    status: str, detail: str | None
) -> None:
    assert not is_connect_failure(status, detail)


def test_connect_failures_in_a_row_stop_and_any_answer_resets() -> None:
    refused = "URLError: [Errno 111] Connection refused"
    counter = ConnectFailures(3, what="lookups", resume="run it again")
    for status, detail in [("network_error", refused)] * 2 + [("unavailable", "HTTP Error 404")]:
        assert counter.record(status, detail) is None
    counter.check()
    assert counter.record("network_error", refused) is None
    assert counter.record("network_error", refused) is None
    down = counter.record("network_error", refused)
    assert isinstance(down, ServiceDown) and isinstance(down, BreakerOpen)  # the breaker's stop
    assert str(down).startswith("3 lookups in a row could not connect (last: URLError: [Errno 111]")
    assert "run it again (--max-connect-failures sets this bound; 0: never stop)" in str(down)
    assert counter.record("ok", None) is down  # once down, it stays down
    with pytest.raises(ServiceDown):
        counter.check()


def test_zero_never_stops() -> None:
    counter = ConnectFailures(0, what="lookups", resume="-")
    for _ in range(1000):
        assert counter.record("network_error", "[Errno 111] Connection refused") is None


def test_breaker_stops_at_once_on_connect_failures_without_pausing() -> None:
    pauses: list[float] = []
    breaker = CircuitBreaker(3, 60, 3, sleep=pauses.append, max_connect_failures=4)
    refused = "URLError: [Errno 111] Connection refused"
    for _ in range(3):
        breaker.record("network_error", refused)
    breaker.record("rate_limited")  # an answer: the count starts again
    for _ in range(3):
        breaker.record("network_error", refused)
    breaker.wait()
    breaker.record("network_error", refused)
    with pytest.raises(ServiceDown, match=r"^4 download attempts in a row could not connect"):
        breaker.wait()
    assert pauses == [] and breaker.pauses == 0
    with pytest.raises(ServiceDown, match="--retry network_error to resume"):
        breaker.wait()  # every later download stops too


def test_a_long_connect_failure_is_told_from_the_raw_message_not_the_short_detail() -> None:
    message = (  # yt-dlp's requests handler: a long generic id, then urllib3's wording
        f"ERROR: [generic] {'x' * 120}: Unable to download webpage: HTTPSConnection("
        "host='cdn.example.com', port=443): Failed to establish a new connection: "
        "[Errno 111] Connection refused"
    )
    error = fail(message)
    assert len(error.detail) <= 200 and error.message == message
    assert is_connect_failure(error.status, error.message)
    breaker = CircuitBreaker(5, 60, 3, sleep=lambda _: None, max_connect_failures=2)
    for _ in range(2):
        breaker.record(error.status, error.message)
    with pytest.raises(BreakerOpen, match="could not connect"):
        breaker.wait()
