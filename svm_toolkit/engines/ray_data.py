"""Run stage work on Ray Data: CPU tasks and actor pools streaming results back to the runner.

A pipeline is a list of :class:`Step` s applied to picklable items (a stage's jobs). Each step
is one ``map_batches`` operator: CPU **tasks** (stateless work such as decoding) or an **actor
pool** (work that holds something costly: a model, a voice-activity detector, a download pacer
handle), with its CPUs, GPUs and items per call. Ray's streaming executor runs the steps
concurrently with back-pressure between them, so a decode step keeps a GPU step fed without
holding the whole dataset in memory. Results come back to the driver as they finish (unordered),
where the stage's runner writes them with the same writers the local engine uses.

Items and results travel as pickled lists in one ``payload`` column (a row holds one job, or
one call's results): stage objects are dataclasses of numpy arrays of any shape, which Arrow
blocks would otherwise have to flatten.

Ray is an optional dependency (the ``ray`` extra: ``pip install -e '.[ray]'`` in a checkout);
importing this module does not import it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from svm_toolkit.engines.config import EngineConfig
from svm_toolkit.errors import ConfigError

logger = logging.getLogger(__name__)

PAYLOAD: Final = "payload"
CONNECT_TIMEOUT_S: Final = 10.0
"""How long :func:`check_reachable` waits for the Ray head to accept a connection, seconds."""
BatchFn = Callable[[list[Any]], list[Any]]


@dataclass(frozen=True, slots=True)
class Step:
    """One operator of a Ray Data pipeline.

    Attributes:
        name: shown in Ray's logs and dashboard.
        build: a picklable, hashable callable returning the step's function on a list of items;
            called once per actor, or once per worker process for tasks.
        actors: actor pool size; ``None`` runs the step as CPU tasks.
        concurrency: tasks at once (``None``: as many as the cluster's CPUs allow).
        num_cpus: CPUs per task or actor.
        num_gpus: GPUs per actor.
        batch_size: items per call.
        memory: bytes of memory each task reserves (``None``: none). Ray fuses a step into the
            next when their resources match; tasks that reserve memory keep their own pool
            instead of running inside the next step's actors.
    """

    name: str
    build: Callable[[], BatchFn]
    actors: int | None = None
    concurrency: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    batch_size: int = 1
    memory: int | None = None


@dataclass(frozen=True, slots=True)
class PerItem:
    """A step function from a per-item factory: ``build()`` once, then map it over each batch."""

    factory: Callable[[], Callable[[Any], Any]]

    def __call__(self) -> BatchFn:
        """Build the per-item function and return its map over a batch."""
        fn = self.factory()
        return lambda items: [fn(item) for item in items]


def import_ray() -> Any:
    """Import Ray, or explain how to install it.

    Raises:
        ConfigError: Ray is not installed.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(
            "--engine ray needs Ray Data, which is not installed: run "
            "'.venv/bin/python -m pip install -e .[ray]' in the svm_toolkit checkout "
            "(or pip install 'ray[data]>=2.60'), or use --engine local"
        ) from None
    return ray


@contextlib.contextmanager
def ray_session(config: EngineConfig) -> Iterator[Any]:
    """Join ``config.address`` or start a Ray instance on this machine; yield the ``ray`` module.

    An instance this context started is stopped when it ends; one that was already running
    (a notebook's, a test module's) is left running.
    """
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        logger.info("ray: %s", f"joining {config.address}" if config.address else "starting")
        if config.address is not None:
            check_reachable(config.address)
        else:  # a private instance: no tokens (Ray 2.60 asks for them)
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(
            address=config.address,
            num_cpus=config.num_cpus if config.address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=False,
        )
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # not its progress-bar notices
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the runner draws one bar for the whole stage
    context.print_on_execution_start = False
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing listens at ``address`` (``host:port`` or ``ray://host:port``).

    Ray itself retries an unreachable head for minutes. ``auto`` and addresses without a port
    are left to Ray.

    Raises:
        ConfigError: no TCP connection within ``timeout_s`` seconds.
    """
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"--ray-address {address}: no Ray head answers at {host}:{port} ({reason}); start "
            f"one there with 'ray start --head --port {port}', or pass the address that "
            "'ray start' printed"
        ) from None


def cluster_gpus() -> float:
    """GPUs in the Ray cluster this process is connected to."""
    return float(import_ray().cluster_resources().get("GPU", 0.0))


def stream(items: Sequence[Any], steps: Sequence[Step]) -> Iterator[Any]:
    """Run ``items`` through ``steps`` on Ray Data; yield the last step's results as they finish.

    Needs a connected Ray (:func:`ray_session`). Stopping the iteration stops the pipeline.
    """
    if not items:
        return
    ray = import_ray()
    rows = [{PAYLOAD: pickle.dumps([item])} for item in items]
    data = ray.data.from_items(rows, override_num_blocks=min(len(rows), 1_000))
    for step in steps:
        data = _apply(ray, data, step)
    for row in data.iter_rows():
        yield from pickle.loads(row[PAYLOAD])


def _apply(ray: Any, data: Any, step: Step) -> Any:
    """Add ``step`` as one ``map_batches`` operator; each output row holds one pickled list."""
    common: dict[str, Any] = {
        "batch_size": step.batch_size,
        "batch_format": "numpy",
        "num_cpus": step.num_cpus,
    }
    if step.actors is None:
        return data.map_batches(
            _run_task,
            fn_kwargs={"build": step.build},
            compute=ray.data.TaskPoolStrategy(size=step.concurrency),
            memory=step.memory,
            **common,
        )
    return data.map_batches(
        _Actor,
        fn_constructor_args=(step.build,),
        compute=ray.data.ActorPoolStrategy(size=step.actors),
        num_gpus=step.num_gpus,
        **common,
    )


def _unpack(batch: dict[str, np.ndarray]) -> list[Any]:
    """A batch's items: every row holds a pickled list (one job, or one call's results)."""
    return [item for blob in batch[PAYLOAD] for item in pickle.loads(blob)]


def _pack(results: list[Any]) -> dict[str, list[bytes]]:
    """One call's results as one row (so a step's output rows need no schema)."""
    return {PAYLOAD: [pickle.dumps(results)]}


_BUILT: dict[Hashable, BatchFn] = {}


def _run_task(batch: dict[str, np.ndarray], build: Callable[[], BatchFn]) -> dict[str, Any]:
    """A CPU task: the step's function, built once per worker process, on one batch."""
    fn = _BUILT.get(build)
    if fn is None:
        fn = _BUILT[build] = build()
    return _pack(fn(_unpack(batch)))


class _Actor:
    """An actor of a pool: builds the step's function once, then runs it on each batch."""

    def __init__(self, build: Callable[[], BatchFn]) -> None:
        self.fn = build()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return _pack(self.fn(_unpack(batch)))
