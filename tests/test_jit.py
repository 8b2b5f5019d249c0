"""svm_toolkit.jit: numba kernels compiled by one process at a time, so the cache stays whole."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from svm_toolkit import jit

HOLD = textwrap.dedent(
    """
    import sys, time
    from svm_toolkit.jit import first_call
    with first_call("test"):
        start = time.time()
        time.sleep(0.5)
        end = time.time()
    with first_call("test"):  # warm now: no lock
        pass
    print(start, end)
    """
)

DESCRIBE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from svm_toolkit.extract.music_descriptors import DEFAULT_CONFIG, clip_descriptors
    noise = np.random.default_rng(0).standard_normal(DEFAULT_CONFIG.clip_samples)
    np.save(sys.argv[1], clip_descriptors((0.1 * noise).astype(np.float32)))
    """
)


def start(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_first_calls_of_concurrent_processes_do_not_overlap() -> None:
    processes = [start(HOLD) for _ in range(3)]
    spans = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        spans.append(tuple(float(x) for x in out.split()))
    spans.sort()
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start >= end


def test_compile_lock_is_reentrant_in_a_thread() -> None:
    with jit.compile_lock(), jit.compile_lock():
        assert jit.lock_path().exists()
    with jit.compile_lock():  # released: can be taken again
        pass


def test_a_failed_first_call_stays_cold() -> None:
    with pytest.raises(RuntimeError), jit.first_call("test-failing"):
        raise RuntimeError("compile failed")
    assert "test-failing" not in jit._warm
    with jit.first_call("test-failing"):
        pass
    assert "test-failing" in jit._warm


def test_processes_compiling_librosa_kernels_together_leave_a_loadable_cache(
    tmp_path: Path,
) -> None:
    """The regression: before the lock, ~half of such runs crashed (SIGSEGV) in librosa's
    parabolic interpolation, then every later process did too (numba/numba#10128)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    together = [start(DESCRIBE, str(tmp_path / f"{i}.npy"), env=env) for i in range(3)]
    for process in together:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
    later = start(DESCRIBE, str(tmp_path / "later.npy"), env=env)
    _, err = later.communicate(timeout=600)
    assert later.returncode == 0, err[-2000:]
    assert any((tmp_path / "numba").rglob("*.nbc"))
    vectors = [np.load(tmp_path / f"{name}.npy") for name in ("0", "1", "2", "later")]
    for vector in vectors[1:]:
        np.testing.assert_array_equal(vector, vectors[0])
