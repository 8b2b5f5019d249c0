"""The ``--engine`` options shared by ``svm download``, ``svm preprocess`` and ``svm extract``."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, Final, TypeVar

import click

from svm_toolkit.engines import ENGINES, EngineConfig

F = TypeVar("F", bound=Callable[..., Any])

_KEYS: Final = ("engine", "ray_address", "model_actors", "gpus_per_actor", "videos_per_call")


def engine_options(*, models: bool = False) -> Callable[[F], F]:
    """Add ``--engine`` and ``--ray-address``; with ``models``, the model-actor pool options."""

    def decorate(command: F) -> F:
        options = [
            click.option(
                "--engine",
                type=click.Choice(ENGINES),
                default="local",
                show_default=True,
                help="Where the work runs: this machine (local), or Ray Data (ray: a Ray "
                "instance started here, or the cluster of --ray-address). Outputs are the same.",
            ),
            click.option(
                "--ray-address",
                metavar="ADDRESS",
                help="Join this Ray cluster (auto, ray://head:10001) instead of starting Ray here; "
                "DATASET must be a path every node mounts.",
            ),
        ]
        if models:
            options += [
                click.option(
                    "--model-actors",
                    type=click.IntRange(min=1),
                    default=1,
                    show_default=True,
                    help="Ray: model actors (one model load each; one per GPU is typical).",
                ),
                click.option(
                    "--gpus-per-actor",
                    type=click.FloatRange(min=0),
                    help="Ray: GPUs per model actor [default: 1 when the cluster has GPUs].",
                ),
                click.option(
                    "--videos-per-call",
                    type=click.IntRange(min=1),
                    default=8,
                    show_default=True,
                    help="Ray: videos a model actor embeds per call (units mixed into batches).",
                ),
            ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def engine_config(flags: MutableMapping[str, Any]) -> EngineConfig:
    """Take the engine options out of a command's flags and return their config."""
    values = {key: flags.pop(key) for key in _KEYS if key in flags}
    engine = EngineConfig(
        name=values["engine"],
        address=values.get("ray_address"),
        model_actors=values.get("model_actors", 1),
        gpus_per_actor=values.get("gpus_per_actor"),
        videos_per_call=values.get("videos_per_call", 8),
    )
    if engine.address and engine.name != "ray":
        raise click.UsageError("--ray-address needs --engine ray")
    return engine
