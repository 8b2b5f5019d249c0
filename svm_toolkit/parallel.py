"""Run a function over many items in worker processes with a bounded number in flight.

Two guarantees besides the bound:

* **A crash is one item's, not the run's.** With ``on_crash``, a worker that dies (a segfault
  in native code, ``os._exit``, the out-of-memory killer) breaks the pool; the pool is started
  again and the items that were in flight are re-run one at a time, alone in the pool, so the
  item that kills a worker by itself gets ``on_crash(item, detail)`` and the others their
  normal result.
* **Workers die with the main process.** Each worker asks the kernel for ``SIGKILL`` when its
  parent (the forkserver, which exits with the main process) dies (``PR_SET_PDEATHSIG``), and a
  watchdog thread also checks the main process every :data:`WATCH_INTERVAL_S`, so a
  ``kill -9`` of the main process leaves no worker behind.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any, Final, TypeVar

from svm_toolkit.errors import WorkerCrashError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

WATCH_INTERVAL_S: Final = 0.5  # how often a worker checks that the main process lives, seconds
#: Items that each killed a worker alone, with no item finishing in between, before the run
#: stops: workers that die whatever they run (a broken install) must not mark every item as
#: crashed, while crashing items far apart in a long run each get their status.
MAX_CRASHES_IN_A_ROW: Final = 3
_PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>


def bounded_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    preload: Sequence[str] = (),
    in_flight_per_worker: int = 4,
    on_crash: Callable[[T, str], R] | None = None,
    inline: bool | None = None,
) -> Iterator[R]:
    """Yield ``fn(item)`` for every item as results finish (not in order).

    Inline (by default when ``workers <= 1``) everything runs in this process, in order.
    Otherwise a forkserver pool (``preload``: modules imported once in the server, e.g.
    ``torch``) runs at most
    ``in_flight_per_worker * workers`` items at a time, so memory stays bounded however many
    items there are. Stopping the iteration cancels what has not started.

    Args:
        fn: the work, a picklable module-level function.
        items: the inputs (``None`` items are not allowed).
        workers: worker processes (<= 1: this process).
        initializer: run once in each worker before any item, with ``initargs``.
        initargs: the initializer's arguments.
        preload: modules the forkserver imports once.
        in_flight_per_worker: items queued per worker.
        on_crash: the result of an item whose worker died running it alone, from the item and
            a detail such as ``"worker crashed (signal 11: SIGSEGV)"``. ``None``: a crash raises.
        inline: run in this process (``None``: when ``workers <= 1``); ``False`` runs even one
            worker in a process of its own, where a crash cannot end the run.

    Raises:
        WorkerCrashError: a worker process died and there is no ``on_crash``; or the workers
            die while starting (their set-up fails), with no item in flight, or on
            :data:`MAX_CRASHES_IN_A_ROW` items in a row run alone: no item is to blame.
    """
    if workers <= 1 if inline is None else inline:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    workers = max(workers, 1)
    pool = _Pool(context, workers, initializer, initargs)
    queue = iter(items)
    unsent: deque[T] = deque()  # taken from ``items``, not yet in the pool
    pending: dict[Future[R], T] = {}
    suspects: deque[T] = deque()  # in flight when a worker died: each re-run alone
    crashes_in_a_row = 0
    try:
        while True:
            if suspects:
                item = suspects.popleft()
                try:
                    result = pool.submit(fn, item).result()
                except BrokenProcessPool:
                    detail = pool.crash_detail()
                    pool = pool.restart()
                    crashes_in_a_row += 1
                    if crashes_in_a_row >= MAX_CRASHES_IN_A_ROW:
                        raise _crash_error(
                            f"{detail}, on {crashes_in_a_row} items in a row: the workers, not "
                            "the items, look broken"
                        ) from None
                    assert on_crash is not None
                    logger.warning("a worker died running %r alone: %s", item, detail)
                    yield on_crash(item, detail)
                    continue
                crashes_in_a_row = 0
                yield result
                continue
            while len(pending) < in_flight_per_worker * workers:
                nxt = unsent.popleft() if unsent else next(queue, None)
                if nxt is None:
                    break
                try:
                    pending[pool.submit(fn, nxt)] = nxt
                except BrokenProcessPool:  # a worker died since the last wait
                    unsent.appendleft(nxt)
                    if not pending:  # and no item was in flight: none is to blame
                        raise _crash_error(pool.crash_detail()) from None
                    break
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            if any(_broken(f) for f in finished):
                if on_crash is None:
                    raise _crash_error(pool.crash_detail())
                wait(pending, return_when=ALL_COMPLETED)  # the pool fails all the others now
                finished = set(pending)
            for future in finished:
                item = pending.pop(future)
                if _broken(future):
                    suspects.append(item)
                    continue
                result = future.result()
                crashes_in_a_row = 0  # a worker ran an item: crashes since were the items'
                yield result
            if suspects:
                detail = pool.crash_detail()
                logger.warning(
                    "a worker died (%s): re-running the %d items in flight one at a time",
                    detail,
                    len(suspects),
                )
                pool = pool.restart()
    finally:
        pool.shutdown()


def _broken(future: Future[Any]) -> bool:
    return isinstance(future.exception(), BrokenProcessPool)


def _crash_error(detail: str) -> WorkerCrashError:
    return WorkerCrashError(
        f"a worker process died ({detail}); it may have run out of memory (try fewer "
        "--workers) or crashed in native code. What finished is saved: run the same command "
        "again to resume"
    )


class _Pool:
    """A forkserver process pool whose workers die with this process, and why one died."""

    def __init__(
        self,
        context: ForkServerContext,
        workers: int,
        initializer: Callable[..., None] | None,
        initargs: tuple[Any, ...],
    ) -> None:
        self.context, self.workers = context, workers
        self.initializer, self.initargs = initializer, initargs
        main = os.getpid()
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(main, _start_time(main), initializer, initargs),
        )

    def submit(self, fn: Callable[[T], R], item: T) -> Future[R]:
        return self.executor.submit(fn, item)

    def crash_detail(self) -> str:
        """Why the pool broke, e.g. ``worker crashed (signal 11: SIGSEGV)``.

        Raises:
            WorkerCrashError: a worker ended with Python's own exit codes, 0 (its initializer
                raised) or 1 (its start failed), both logged: no item is to blame (an item's
                exceptions come back as results, they do not end the worker).
        """
        processes = list((self.executor._processes or {}).values())
        # The pool's own thread terminates and joins the other workers: only once it is done
        # may this thread read exit codes (two threads reading one forkserver sentinel race,
        # and the loser reads 255).
        self.shutdown()
        codes = [p.exitcode for p in processes if p.exitcode is not None]
        # The first worker to die is the one that crashed; the pool then sends SIGTERM to the
        # rest, so a SIGTERM counts only when nothing else explains the break.
        own = [c for c in codes if c != -signal.SIGTERM] or codes
        if not own or own[0] in (0, 1):  # Python's own exits: an item's errors come back
            raise WorkerCrashError(
                f"the worker processes could not start or failed outside any item (exit code "
                f"{own[0] if own else '?'}; the error is logged above), so no item is to blame"
            )
        code = own[0]
        if code < 0:
            name = signal.Signals(-code).name
            why = ", e.g. the out-of-memory killer" if -code == signal.SIGKILL else ""
            return f"worker crashed (signal {-code}: {name}{why})"
        return f"worker crashed (exit code {code})"

    def restart(self) -> _Pool:
        """A fresh pool like this one (this one is shut down)."""
        self.shutdown()
        return _Pool(self.context, self.workers, self.initializer, self.initargs)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _start_worker(
    main_pid: int,
    main_started: int | None,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
) -> None:
    """Worker set-up: die with the main process, then the caller's initializer."""
    die_with_parent()
    watch_main_process(main_pid, main_started)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``PR_SET_PDEATHSIG``).

    Returns:
        Whether the kernel took the request (``False`` off Linux).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        taken = libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if taken and os.getppid() == 1:  # the parent died before the request: too late for it
        os.kill(os.getpid(), sig)
    return bool(taken)


def watch_main_process(main_pid: int, main_started: int | None) -> threading.Thread:
    """Start a daemon thread that ends this process once ``main_pid`` is gone.

    Args:
        main_pid: the process whose death ends this one.
        main_started: its start time (``/proc/<pid>/stat`` field 22, clock ticks), so a new
            process that reuses the pid is not taken for it; ``None`` where unknown.
    """

    def watch() -> None:
        while _alive(main_pid, main_started):
            time.sleep(WATCH_INTERVAL_S)
        os._exit(70)  # no clean-up: the results have nowhere to go

    thread = threading.Thread(target=watch, name="svm-watch-main", daemon=True)
    thread.start()
    return thread


def _alive(pid: int, started: int | None) -> bool:
    """Whether the process lives (a zombie, waiting for its parent to reap it, does not)."""
    stat = _stat(pid)
    if stat is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no /proc: ask the kernel
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state, start = stat
    return state not in ("Z", "X") and (started is None or start == started)


def _start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[1]


def _stat(pid: int) -> tuple[str, int] | None:
    """A process's state letter and start time (clock ticks after boot) from ``/proc``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return fields[0], int(fields[19])
