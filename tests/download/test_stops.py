"""A run that stops (low disk, the circuit breaker) first writes every result that finished.

The local engine waits for several downloads at once; when one of them raises the run's stop,
the others already placed their media, so their rows must come out before the stop.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future

import pytest

from svm_toolkit.download.limits import LowDiskSpace
from svm_toolkit.download.pacing import BreakerOpen
from svm_toolkit.download.runner import finished_results
from svm_toolkit.download.sample import DownloadResult


def done(sample_id: str) -> Future[DownloadResult]:
    future: Future[DownloadResult] = Future()
    now = dt.datetime.now(dt.UTC)
    future.set_result(DownloadResult(sample_id, "http://x/y.mp4", "ok", None, 1, now, 0.1))
    return future


def failed(exc: BaseException) -> Future[DownloadResult]:
    future: Future[DownloadResult] = Future()
    future.set_exception(exc)
    return future


@pytest.mark.parametrize("stop", [LowDiskSpace("disk low"), BreakerOpen("refused")])
def test_every_finished_result_comes_out_before_the_stop(stop: Exception) -> None:
    finished = [done("a"), failed(stop), done("b"), failed(LowDiskSpace("second")), done("c")]
    seen: list[str] = []
    with pytest.raises(type(stop)) as raised:
        for result in finished_results(finished):
            seen.append(result.sample_id)
    assert seen == ["a", "b", "c"]
    assert raised.value is stop  # the first stop, as it was raised


def test_without_a_stop_every_result_comes_out() -> None:
    assert [r.sample_id for r in finished_results([done("a"), done("b")])] == ["a", "b"]
