"""What an extractor takes and gives: its input contract, declared without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Modality = Literal["audio", "visual"]


@dataclass(frozen=True, slots=True)
class InputContract:
    """An extractor's inputs and output, as stored in every feature shard's provenance.

    Attributes:
        modality: ``visual`` (decoded, cropped frames) or ``audio`` (a mono waveform).
        dim: embedding dimension ``D`` of each time step.
        step_s: seconds between time steps (1.0 for per-second features, 0.96 for VGGish).
        fps: frames decoded per second of video (visual), frames/s.
        image_size: side of the square image the model sees (visual), pixels.
        resize: short side the frame is scaled to before the centre crop (visual), pixels.
        mean: per-channel RGB mean subtracted after scaling to [0, 1] (visual).
        std: per-channel RGB standard deviation divided by (visual).
        sample_rate: waveform rate the extractor reads (audio), Hz.
        recipe: the ``svm preprocess`` Mel recipe it computes its input with, if any (audio).
        weights: where the weights come from, for messages and ``svm extractors``.
    """

    modality: Modality
    dim: int
    step_s: float = 1.0
    fps: float | None = None
    image_size: int | None = None
    resize: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    sample_rate: int | None = None
    recipe: str | None = None
    weights: str = "none"
