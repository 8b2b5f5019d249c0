"""``svm extract`` settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from svm_toolkit.errors import ConfigError
from svm_toolkit.extract.precision import PRECISIONS, Precision
from svm_toolkit.extract.registry import OFFLINE_DEFAULTS

DEFAULT_BATCH_SIZE: Final = {"cuda": 64, "cpu": 8}
"""Units per model call by device when ``--batch-size`` is not given. On the CPU, small
batches stay in the caches: on a 2-core EPYC, EfficientNet-Lite0 ran 306 frames/s in bf16 at
batch 8 and 84 at batch 64 (fp32: 109 and 49), ResNet-50 65 and 47 (fp32: 38 and 29)."""


@dataclass(frozen=True, slots=True)
class ExtractConfig:
    """What ``svm extract`` runs and how.

    Attributes:
        extractors: registered extractor names (``svm extractors`` lists them).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present).
        batch_size: units per model call, mixed across videos; ``None``: per device
            (:data:`DEFAULT_BATCH_SIZE`).
        workers: decode worker processes (0: one per CPU core; 1: decode in this process).
        weights: ``(extractor, path)`` pairs overriding each extractor's default weights.
        fps: frames per second decoded for the visual extractors, frames/s.
        retry: statuses to redo (e.g. ``decode_error``).
        commit_every_s: commit finished videos at least this often, seconds.
        precision: what the models compute in: ``auto`` (bf16 on CUDA and on CPUs with native
            bf16, else fp32), ``bf16`` or ``fp32`` (:mod:`svm_toolkit.extract.precision`).
        vggish_pca: VGGish's PCA parameters file: ``vggish`` features in the AudioSet/YT8M form
            (PCA with whitening, clipped to [-2, 2], 8-bit), stored dequantised; ``None``: raw.
    """

    extractors: tuple[str, ...] = OFFLINE_DEFAULTS
    device: str = "auto"
    batch_size: int | None = None
    workers: int = 0
    weights: tuple[tuple[str, str], ...] = ()
    fps: float = 1.0
    retry: tuple[str, ...] = ()
    commit_every_s: float = 30.0
    vggish_pca: str | None = None
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")

    def batch_size_on(self, device: str) -> int:
        """Units per model call on ``device`` (``cpu``, ``cuda``, ``cuda:N``)."""
        if self.batch_size is not None:
            return self.batch_size
        return DEFAULT_BATCH_SIZE["cpu" if device == "cpu" else "cuda"]
