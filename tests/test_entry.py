"""The ``svm`` executable sets its process-wide defaults before the CLI imports torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from svm_toolkit import entry


@pytest.mark.parametrize(("given", "seen"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_omp_threads_sleep_unless_the_user_said_otherwise(
    monkeypatch: pytest.MonkeyPatch, given: str | None, seen: str
) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    if given is not None:
        monkeypatch.setenv("OMP_WAIT_POLICY", given)
    recorded: list[str | None] = []
    monkeypatch.setattr("svm_toolkit.cli.main", lambda argv: recorded.append(argv))
    entry.main(["--version"])
    assert recorded == [["--version"]] and os.environ["OMP_WAIT_POLICY"] == seen  # restored after


def test_python_m_runs_the_same_entry() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "svm_toolkit", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("svm")
