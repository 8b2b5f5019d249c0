"""Run a function over many items in worker processes with a bounded number in flight."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from svm_toolkit.errors import WorkerCrashError

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    preload: Sequence[str] = (),
    in_flight_per_worker: int = 4,
) -> Iterator[R]:
    """Yield ``fn(item)`` for every item as results finish (not in order).

    With ``workers <= 1`` everything runs in this process, in order. Otherwise a forkserver
    pool (``preload``: modules imported once in the server, e.g. ``torch``) runs at most
    ``in_flight_per_worker * workers`` items at a time, so memory stays bounded however many
    items there are. Stopping the iteration cancels what has not started.

    Raises:
        WorkerCrashError: a worker process died (the pool is then unusable).
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=initializer, initargs=initargs
    )
    queue = iter(items)
    pending: set[Future[R]] = set()
    try:
        while True:
            while len(pending) < in_flight_per_worker * workers:
                item = next(queue, None)
                if item is None:
                    break
                pending.add(pool.submit(fn, item))
            if not pending:
                return
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    raise WorkerCrashError(
                        f"a worker process died ({exc}); it may have run out of memory "
                        "(try fewer --workers) or crashed in native code. What finished is "
                        "saved: run the same command again to resume"
                    ) from exc
                yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
