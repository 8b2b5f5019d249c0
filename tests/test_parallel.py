"""svm_toolkit.parallel.bounded_map: every item once, inline or in worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from svm_toolkit.errors import WorkerCrashError
from svm_toolkit.parallel import bounded_map


def square(x: int) -> int:
    return x * x


def crash_on_three(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGSEGV)
    return x


def crash_on_odd_multiples_of_five(x: int) -> int:
    """A real segfault (signal 11) on 5 and 15, a plain ``os._exit(3)`` on 25."""
    if x in (5, 15):
        os.kill(os.getpid(), signal.SIGSEGV)
    if x == 25:
        os._exit(3)
    return x * x


def crashed(x: int, detail: str) -> int:
    return -x if "signal 11: SIGSEGV" in detail else -1000 - x if "exit code 3" in detail else 0


def always_crash(x: int) -> int:
    os.kill(os.getpid(), signal.SIGSEGV)
    return x


def broken_setup() -> None:
    raise RuntimeError("no model here")


def test_inline_runs_in_order() -> None:
    assert list(bounded_map(square, range(5), workers=1)) == [0, 1, 4, 9, 16]


def test_workers_return_every_item_once() -> None:
    out = list(bounded_map(square, range(40), workers=2, in_flight_per_worker=2))
    assert sorted(out) == [x * x for x in range(40)]


def test_a_dead_worker_is_a_clear_error() -> None:
    with pytest.raises(WorkerCrashError, match="run the same command again"):
        list(bounded_map(crash_on_three, range(8), workers=2))


def test_a_crash_is_the_item_s_and_the_run_goes_on() -> None:
    """Only the items that kill a worker alone get on_crash; the innocent in flight re-run."""
    out = list(
        bounded_map(
            crash_on_odd_multiples_of_five,
            range(30),
            workers=2,
            in_flight_per_worker=3,
            on_crash=crashed,
        )
    )
    expected = {x: x * x for x in range(30)} | {5: -5, 15: -15, 25: -1025}
    assert sorted(out) == sorted(expected.values())


def test_a_crash_in_the_initializer_is_the_run_s() -> None:
    """Workers that cannot start would fail every item: that is an error, not a status."""
    with pytest.raises(WorkerCrashError, match="could not start"):
        list(bounded_map(square, range(4), workers=2, initializer=broken_setup, on_crash=crashed))


def test_workers_that_die_on_everything_stop_the_run() -> None:
    """A broken install must not mark every item: a few in a row, then the run's error."""
    out: list[int] = []
    with pytest.raises(WorkerCrashError, match="3 items in a row"):
        for result in bounded_map(always_crash, range(10), workers=2, on_crash=crashed):
            out.append(result)
    assert len(out) == 2  # two marked, the third stops the run


def test_crashes_far_apart_do_not_stop_the_run() -> None:
    """Three crashing items, each alone in flight, with good items between: each is marked."""
    out = list(
        bounded_map(
            crash_on_odd_multiples_of_five,
            range(28),
            workers=1,
            in_flight_per_worker=1,
            on_crash=crashed,
            inline=False,
        )
    )
    expected = {x: x * x for x in range(28)} | {5: -5, 15: -15, 25: -1025}
    assert sorted(out) == sorted(expected.values())


def test_workers_that_cannot_start_blame_no_item() -> None:
    """A main module read from stdin cannot be re-imported by forkserver workers (exit 1)."""
    script = textwrap.dedent(
        """
        from svm_toolkit.parallel import bounded_map
        for r in bounded_map(abs, range(8), workers=2, on_crash=lambda x, d: print("blamed", x)):
            print("result", r)
        """
    )
    out = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True)
    assert out.returncode != 0
    assert "blamed" not in out.stdout
    assert "could not start or failed outside any item (exit code 1" in out.stderr
