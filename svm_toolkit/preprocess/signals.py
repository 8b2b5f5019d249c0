"""Cheap per-video signals the filters judge: loudness, silence, stillness, darkness.

Computed from what preprocessing decodes anyway (16 kHz audio, a few luma frames), so filters
can be re-run with other thresholds without decoding again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_SILENCE_DBFS = -50.0  # a 100 ms window quieter than this counts as silent
_BLACK_LUMA = 24  # 8-bit luma at or below this is black (ffmpeg cropdetect's default)


@dataclass(frozen=True, slots=True)
class Signals:
    """Scores of one video; ``None`` where the stream is missing.

    Attributes:
        loudness_dbfs: RMS level of the whole soundtrack, dB relative to full scale.
        silence_ratio: share of 100 ms windows quieter than -50 dBFS, in [0, 1].
        motion: mean absolute luma change between consecutive sampled frames, 8-bit levels.
        black_ratio: share of sampled pixels at or below luma 24, in [0, 1].
        speech_ratio: share of 32 ms chunks Silero VAD calls speech, in [0, 1].
    """

    loudness_dbfs: float | None
    silence_ratio: float | None
    motion: float | None
    black_ratio: float | None
    speech_ratio: float | None = None


def audio_signals(
    audio: npt.NDArray[np.float32], *, sample_rate: int = 16_000
) -> tuple[float, float]:
    """Return (loudness in dBFS, silence ratio) of mono audio in [-1, 1]."""
    if not len(audio):
        return -120.0, 1.0
    squares = np.square(audio, dtype=np.float64)  # one float64 copy, shared by both signals
    loudness = 10 * np.log10(max(float(np.mean(squares)), 1e-12))
    window = sample_rate // 10
    count = len(squares) // window
    if count == 0:
        return loudness, float(loudness < _SILENCE_DBFS)
    power = squares[: count * window].reshape(count, window).mean(axis=1)
    silent = 10 * np.log10(np.maximum(power, 1e-12)) < _SILENCE_DBFS
    return loudness, float(silent.mean())


def video_signals(frames: npt.NDArray[np.uint8]) -> tuple[float, float]:
    """Return (motion, black ratio) of luma frames, shape (frames, height, width)."""
    luma = frames.astype(np.int16)
    motion = float(np.abs(np.diff(luma, axis=0)).mean()) if len(luma) > 1 else 0.0
    return motion, float((frames <= _BLACK_LUMA).mean())
