"""The model side of ``svm extract``: units of many videos stacked into model batches.

A :class:`Batcher` queues each video's units per extractor, embeds full batches of
``batch_size`` units (mixing videos; autocast per ``--precision``, pinned memory on CUDA) and
fills each video's ``(T, D)`` steps as batches finish. :func:`embed_stream` (local engine) and
:class:`Embedder` (a Ray actor) turn :class:`~svm_toolkit.extract.prepare.Prepared` videos into
:class:`Embedded` outcomes with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import ConfigError
from svm_toolkit.extract.backends.vggish import VGGish
from svm_toolkit.extract.base import Extractor, Units
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.precision import autocast
from svm_toolkit.extract.prepare import Prepared
from svm_toolkit.extract.registry import get_extractor


@dataclass(frozen=True, slots=True)
class Embedded:
    """A video's outcome for some extractors: time steps of those that served it, failures else.

    Attributes:
        sample_id: the sample.
        steps: extractor -> float32 embeddings, shape (T, D).
        times: extractor -> start time of each step, seconds, shape (T,).
        failed: extractor -> (status, detail).
    """

    sample_id: str
    steps: Mapping[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    times: Mapping[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    failed: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def build_extractors(config: ExtractConfig, *, load_on: str | None) -> dict[str, Extractor]:
    """The run's extractors, their weights loaded onto ``load_on`` (``None``: checked only).

    Raises:
        ConfigError: an unknown extractor, or ``--vggish-pca`` without ``vggish``.
        MissingWeightsError: a weights file (or the PCA file) is missing.
    """
    weights = dict(config.weights)
    extractors: dict[str, Extractor] = {}
    for name in config.extractors:
        path = weights.get(name)
        extractor = get_extractor(name)(weights=Path(path) if path else None)
        if load_on is None:
            extractor.check_weights()
        else:
            extractor.load(load_on, config.precision)
        extractors[name] = extractor
    if config.vggish_pca:
        vggish = extractors.get("vggish")
        if not isinstance(vggish, VGGish):
            raise ConfigError("--vggish-pca needs the vggish extractor: add -e vggish")
        vggish.use_pca(Path(config.vggish_pca))
    return extractors


@dataclass
class _Video:
    """A video whose units are being embedded."""

    sample_id: str
    steps: dict[str, npt.NDArray[np.float32]]  # name -> (T, D), filled as batches finish
    times: dict[str, npt.NDArray[np.float32]]
    missing: dict[str, int]  # name -> units not embedded yet


class Batcher:
    """Per extractor: stack units across videos, embed full batches, hand back finished videos."""

    def __init__(self, extractors: Mapping[str, Extractor], batch_size: int) -> None:
        self.extractors = extractors
        self.batch_size = batch_size
        self.queued: dict[str, list[tuple[_Video, int, npt.NDArray[Any]]]] = {
            name: [] for name in extractors
        }
        self.rows: dict[str, int] = dict.fromkeys(extractors, 0)

    def add(self, video: _Video, name: str, units: Units) -> None:
        """Queue one extractor's units of a video."""
        self.queued[name].append((video, 0, units.data))
        self.rows[name] += len(units.data)

    def run(self, *, final: bool = False) -> None:
        """Embed every full batch (and, when ``final``, what is left)."""
        for name in self.extractors:
            while self.rows[name] >= self.batch_size or (final and self.rows[name]):
                self._embed(name)

    def _embed(self, name: str) -> None:
        take, parts, owners = self.batch_size, [], []
        queue = self.queued[name]
        while take and queue:
            video, offset, data = queue[0]
            n = min(take, len(data) - offset)
            parts.append(data[offset : offset + n])
            owners.append((video, offset, n))
            take -= n
            if offset + n == len(data):
                queue.pop(0)
            else:
                queue[0] = (video, offset + n, data)
        batch = np.concatenate(parts)
        self.rows[name] -= len(batch)
        out = embed_batch(self.extractors[name], batch)
        start = 0
        for video, offset, n in owners:
            video.steps[name][offset : offset + n] = out[start : start + n]
            video.missing[name] -= n
            start += n


def embed_batch(extractor: Extractor, batch: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """One model call: (N, *unit) on CPU -> (N, D) float32 on CPU."""
    import torch

    device = extractor.device or torch.device("cpu")
    tensor = torch.from_numpy(np.ascontiguousarray(batch))
    cuda = device.type == "cuda"
    if cuda:
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    with torch.inference_mode(), autocast(device, extractor.precision):
        out = extractor.embed(tensor)
    return out.float().cpu().numpy()


def _started(prepared: Prepared, extractors: Mapping[str, Extractor], batcher: Batcher) -> _Video:
    """Queue a prepared video's units; its steps fill in as batches finish."""
    video = _Video(
        prepared.sample_id,
        steps={
            n: np.zeros((len(u.data), extractors[n].contract.dim), np.float32)
            for n, u in prepared.units.items()
        },
        times={n: u.times_s for n, u in prepared.units.items()},
        missing={n: len(u.data) for n, u in prepared.units.items()},
    )
    for name, units in prepared.units.items():
        batcher.add(video, name, units)
    return video


def _done(video: _Video) -> Embedded:
    return Embedded(video.sample_id, video.steps, video.times)


def embed_stream(
    prepared: Iterable[Prepared], extractors: Mapping[str, Extractor], batch_size: int
) -> Iterator[Embedded]:
    """Embed videos as they come, batches mixing videos; yield each outcome once it is whole.

    A video's failures are yielded at once, its embeddings once their last batch ran.
    """
    batcher = Batcher(extractors, batch_size)
    active: list[_Video] = []
    for video in prepared:
        if video.failed:
            yield Embedded(video.sample_id, failed=video.failed)
        if video.units:
            active.append(_started(video, extractors, batcher))
        batcher.run()
        yield from (_done(v) for v in active if not any(v.missing.values()))
        active = [v for v in active if any(v.missing.values())]
    batcher.run(final=True)
    yield from (_done(v) for v in active)


@dataclass(frozen=True, slots=True)
class Embedder:
    """A Ray actor's set-up: loads every model once, then embeds lists of prepared videos.

    Attributes:
        config: the run's settings (extractors, weights, batch size).
        device: where the actor's models run (``cuda`` in a GPU actor).
    """

    config: ExtractConfig
    device: str

    def __call__(self) -> Callable[[list[Prepared]], list[Embedded]]:
        """The actor's function: prepared videos -> one :class:`Embedded` each."""
        extractors = build_extractors(self.config, load_on=self.device)

        def embed(videos: list[Prepared]) -> list[Embedded]:
            batcher = Batcher(extractors, self.config.batch_size_on(self.device))
            started = [_started(v, extractors, batcher) for v in videos]
            batcher.run(final=True)
            return [
                Embedded(v.sample_id, s.steps, s.times, v.failed)
                for v, s in zip(videos, started, strict=True)
            ]

        return embed
