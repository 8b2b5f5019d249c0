from __future__ import annotations

import threading
import time

import pytest

from svm_toolkit.download.pacing import BreakerOpen, CircuitBreaker, HostLimiter, RateLimiter


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
