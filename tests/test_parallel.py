"""svm_toolkit.parallel.bounded_map: every item once, inline or in worker processes."""

from __future__ import annotations

import os
import signal

import pytest

from svm_toolkit.errors import WorkerCrashError
from svm_toolkit.parallel import bounded_map


def square(x: int) -> int:
    return x * x


def crash_on_three(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGSEGV)
    return x


def test_inline_runs_in_order() -> None:
    assert list(bounded_map(square, range(5), workers=1)) == [0, 1, 4, 9, 16]


def test_workers_return_every_item_once() -> None:
    out = list(bounded_map(square, range(40), workers=2, in_flight_per_worker=2))
    assert sorted(out) == [x * x for x in range(40)]


def test_a_dead_worker_is_a_clear_error() -> None:
    with pytest.raises(WorkerCrashError, match="run the same command again"):
        list(bounded_map(crash_on_three, range(8), workers=2))
