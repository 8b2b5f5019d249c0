"""Cheap per-video signals the filters judge: loudness, silence, stillness, darkness.

Computed from what preprocessing decodes anyway (16 kHz audio, a few luma frames), so filters
can be re-run with other thresholds without decoding again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from svm_toolkit.preprocess.audio import load_audio
from svm_toolkit.preprocess.crop import sample_frames
from svm_toolkit.probe import MediaFacts, probe_media

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
    """

    loudness_dbfs: float | None
    silence_ratio: float | None
    motion: float | None
    black_ratio: float | None


def audio_signals(
    audio: npt.NDArray[np.float32], *, sample_rate: int = 16_000
) -> tuple[float, float]:
    """Return (loudness in dBFS, silence ratio) of mono audio in [-1, 1]."""
    if not len(audio):
        return -120.0, 1.0
    x = audio.astype(np.float64)
    loudness = 10 * np.log10(max(float(np.mean(x**2)), 1e-12))
    window = sample_rate // 10
    count = len(x) // window
    if count == 0:
        return loudness, float(loudness < _SILENCE_DBFS)
    power = (x[: count * window].reshape(count, window) ** 2).mean(axis=1)
    silent = 10 * np.log10(np.maximum(power, 1e-12)) < _SILENCE_DBFS
    return loudness, float(silent.mean())


def video_signals(frames: npt.NDArray[np.uint8]) -> tuple[float, float]:
    """Return (motion, black ratio) of luma frames, shape (frames, height, width)."""
    luma = frames.astype(np.int16)
    motion = float(np.abs(np.diff(luma, axis=0)).mean()) if len(luma) > 1 else 0.0
    return motion, float((frames <= _BLACK_LUMA).mean())


def measure(path: Path, *, frames: int = 8) -> tuple[MediaFacts, Signals]:
    """Probe a file and compute its signals (decodes the audio and ``frames`` luma frames).

    Raises:
        SampleError: the file cannot be probed or decoded.
    """
    facts = probe_media(path)
    loudness = silence = motion = black = None
    if facts.has_audio:
        loudness, silence = audio_signals(load_audio(path))
    if facts.has_video:
        motion, black = video_signals(sample_frames(path, frames))
    return facts, Signals(loudness, silence, motion, black)
