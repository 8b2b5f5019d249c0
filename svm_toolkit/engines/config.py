"""``--engine`` settings: which engine runs the per-sample work and how Ray sizes its pools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from svm_toolkit.errors import ConfigError

ENGINES: Final = ("local", "ray")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Which engine runs a stage's work, and Ray's pool sizes (ignored by ``local``).

    Stage settings (``--workers``, ``--batch-size``, ``--concurrency``) keep their meaning on
    both engines: on Ray, ``--workers`` bounds the CPU tasks or actors of a stage and
    ``--concurrency`` the download actors.

    Attributes:
        name: ``local`` (this machine: threads and processes) or ``ray`` (Ray Data).
        address: the Ray cluster to join (``auto``, ``ray://head:10001``); ``None`` starts a
            Ray instance on this machine for the run.
        num_cpus: CPUs of that local instance (``None``: all of this machine's).
        model_actors: extraction actors, each loading every requested model once.
        gpus_per_actor: GPUs each extraction actor holds (``None``: 1 when the cluster has a
            GPU and ``--device`` is not ``cpu``, else 0).
        cpus_per_actor: CPUs each actor (download, preprocess, extraction) reserves; a
            fraction lets small test instances run a pool beside CPU tasks.
        videos_per_call: videos each extraction actor embeds per call; their units are mixed
            into model batches of ``--batch-size``.
    """

    name: str = "local"
    address: str | None = None
    num_cpus: int | None = None
    model_actors: int = 1
    gpus_per_actor: float | None = None
    cpus_per_actor: float = 1.0
    videos_per_call: int = 8

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ConfigError(f"--engine {self.name}: known engines are {', '.join(ENGINES)}")
        bad = [
            f"{name}={value}"
            for name, value in (
                ("num_cpus", self.num_cpus),
                ("model_actors", self.model_actors),
                ("videos_per_call", self.videos_per_call),
            )
            if value is not None and value < 1
        ]
        if self.cpus_per_actor <= 0:
            bad.append(f"cpus_per_actor={self.cpus_per_actor}")
        if self.gpus_per_actor is not None and self.gpus_per_actor < 0:
            bad.append(f"gpus_per_actor={self.gpus_per_actor}")
        if bad:
            raise ConfigError(f"engine settings out of range: {', '.join(bad)}")
