"""Numba's on-disk cache, made safe for worker processes that start together.

librosa compiles its numba kernels on first use and caches them on disk (``cache=True``).
Each ``guvectorize`` kernel is written as two files with separate renames. When several
processes compile the same kernel at once, the cache can end up holding one file from each
process, and every later process that loads it crashes with a segmentation fault
(numba/numba#10128, librosa/librosa#1998). Decode workers start together, so they would hit
this on a fresh install.

:func:`first_call` makes the first call in each process hold an exclusive lock shared by all
processes of this user. The first process compiles and writes the cache alone. The others
wait, then load the finished cache (about 5 s for the VM-NET descriptors, against about 40 s
to compile them). Later calls take no lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

_warm: set[str] = set()
_held = threading.local()


def lock_path() -> Path:
    """The lock file, shared by every process of this user: ``$TMPDIR/svm_toolkit-jit-UID.lock``."""
    return Path(tempfile.gettempdir()) / f"svm_toolkit-jit-{os.getuid()}.lock"


@contextmanager
def compile_lock() -> Iterator[None]:
    """Hold the inter-process compile lock (``flock``) for the body.

    Re-entrant within a thread: a nested ``compile_lock`` in the same thread does not lock again.
    """
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    with lock_path().open("a") as handle:
        waited = time.perf_counter()
        fcntl.flock(handle, fcntl.LOCK_EX)
        logger.debug("compile lock after %.2f s", time.perf_counter() - waited)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def first_call(key: str) -> Iterator[None]:
    """Run the body under :func:`compile_lock` the first time ``key`` is seen in this process.

    Wrap the code that makes numba compile (or load) its kernels, e.g. the first librosa call
    of a worker. Once the body has finished without an error, ``key`` is marked warm, and
    later bodies with that key run without the lock.
    """
    if key in _warm:
        yield
        return
    with compile_lock():
        yield
    _warm.add(key)
