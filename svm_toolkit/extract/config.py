"""``svm extract`` settings."""

from __future__ import annotations

from dataclasses import dataclass

from svm_toolkit.extract.registry import OFFLINE_DEFAULTS


@dataclass(frozen=True, slots=True)
class ExtractConfig:
    """What ``svm extract`` runs and how.

    Attributes:
        extractors: registered extractor names (``svm extractors`` lists them).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present).
        batch_size: units per model call, mixed across videos.
        workers: decode worker processes (0: one per CPU core; 1: decode in this process).
        weights: ``(extractor, path)`` pairs overriding each extractor's default weights.
        fps: frames per second decoded for the visual extractors, frames/s.
        retry: statuses to redo (e.g. ``decode_error``).
        commit_every_s: commit finished videos at least this often, seconds.
        vggish_pca: VGGish's PCA parameters file: ``vggish`` features in the AudioSet/YT8M form
            (PCA with whitening, clipped to [-2, 2], 8-bit), stored dequantised; ``None``: raw.
    """

    extractors: tuple[str, ...] = OFFLINE_DEFAULTS
    device: str = "auto"
    batch_size: int = 64
    workers: int = 0
    weights: tuple[tuple[str, str], ...] = ()
    fps: float = 1.0
    retry: tuple[str, ...] = ()
    commit_every_s: float = 30.0
    vggish_pca: str | None = None
