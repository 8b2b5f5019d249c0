"""``kill -9`` of the main process leaves no worker behind (issue 17.10).

The pools use forkserver, so the workers' parent is the forkserver, which exits with the main
process; before the fix the workers then blocked for ever on their task queue (the queue's
write end is theirs too), about 390 MB each. Each test starts a real main process, waits for its
workers, kills the main process with ``SIGKILL`` and checks that every process that descended
from it is gone within a few seconds (read from ``/proc``; a zombie counts as gone).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from svm_toolkit.preprocess import PreprocessConfig, run_preprocess
from svm_toolkit.preprocess.filters import FilterConfig
from tests.faults.test_worker_crash import make_dataset

GONE_WITHIN_S = 5.0  # the watchdog polls every 0.5 s; PR_SET_PDEATHSIG is immediate


def _table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        table[int(entry.name)] = (int(ppid), state)
    return table


def descendants(pid: int) -> set[int]:
    table = _table()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    table = _table()
    return {p for p in pids if p in table and table[p][1] not in ("Z", "X")}


def kill_main_when_workers_run(main: subprocess.Popen[bytes], workers: int) -> set[int]:
    """SIGKILL the main process once it has ``workers`` grandchildren; return its descendants."""
    deadline = time.monotonic() + 60
    grandchildren: set[int] = set()
    while time.monotonic() < deadline and main.poll() is None:
        children = descendants(main.pid)
        table = _table()
        grandchildren = {p for p in children if table.get(p, (0, ""))[0] != main.pid}
        if len(grandchildren) >= workers:
            break
        time.sleep(0.05)
    assert main.poll() is None, "the main process ended before its workers ran"
    assert len(grandchildren) >= workers, "the workers never started"
    family = descendants(main.pid)
    os.kill(main.pid, signal.SIGKILL)
    main.wait()
    return family


def assert_all_gone(family: set[int]) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while alive(family) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(family)
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left {GONE_WITHIN_S} s after kill -9 of the main process: {left}"


def test_bounded_map_workers_die_with_the_main_process() -> None:
    script = textwrap.dedent(
        """
        import time
        from svm_toolkit.parallel import bounded_map
        list(bounded_map(time.sleep, [60.0] * 8, workers=2))
        """
    )
    main = subprocess.Popen([sys.executable, "-c", script])
    assert_all_gone(kill_main_when_workers_run(main, workers=2))


@pytest.mark.parametrize("stage", ["preprocess", "extract"])
def test_svm_stage_workers_die_with_the_main_process(tmp_path: Path, stage: str) -> None:
    root = make_dataset(tmp_path / "ds")
    if stage == "extract":
        run_preprocess(root, PreprocessConfig(filters=FilterConfig(min_motion=None), workers=1))
    main = subprocess.Popen(
        [sys.executable, "-m", "svm_toolkit", stage, str(root), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert_all_gone(kill_main_when_workers_run(main, workers=2))
