"""Decode any audio codec (AAC, Opus, Vorbis, MP3, PCM...) to mono float32 at one sample rate."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import SampleError
from svm_toolkit.schema import Status


def load_audio(path: Path, *, sample_rate: int = 16_000) -> npt.NDArray[np.float32]:
    """Decode a file's first audio stream, downmixed to mono and resampled.

    Args:
        path: any container FFmpeg reads.
        sample_rate: output rate, Hz (16 kHz for ImageBind and VGGish).

    Returns:
        float32, shape (samples,), range about [-1, 1], mono at ``sample_rate``.

    Raises:
        SampleError: ``no_audio`` when the file has no audio stream, ``decode_error`` when it
            cannot be decoded.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise SampleError(Status.NO_AUDIO.value, f"{path.name}: no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise SampleError(
            Status.DECODE_ERROR.value, f"{path.name}: cannot decode audio: {exc}"
        ) from None
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)
