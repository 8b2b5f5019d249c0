"""Decode any audio codec (AAC, Opus, Vorbis, MP3, PCM...) to mono float32 at one sample rate."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import SampleError
from svm_toolkit.schema import Status

_DTYPES: dict[str, type[np.generic]] = {
    "u8": np.uint8, "s16": np.int16, "s32": np.int32, "s64": np.int64, "flt": np.float32,
    "dbl": np.float64,
}  # fmt: skip
_BATCH_FRAMES = 256  # decoded frames resampled together (~6 s of AAC at 44.1 kHz)


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
            chunks: list[npt.NDArray[np.float32]] = []
            batch: list[av.AudioFrame] = []
            for frame in container.decode(stream):
                if batch and (len(batch) >= _BATCH_FRAMES or not _same_kind(batch[0], frame)):
                    chunks += _resample(resampler, batch)
                    batch = []
                batch.append(frame)
            chunks += _resample(resampler, batch)
            chunks += [
                np.asarray(out.to_ndarray(), np.float32).reshape(-1)
                for out in resampler.resample(None)
            ]
    except av.error.FFmpegError as exc:
        raise SampleError(
            Status.DECODE_ERROR.value, f"{path.name}: cannot decode audio: {exc}"
        ) from None
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _same_kind(a: av.AudioFrame, b: av.AudioFrame) -> bool:
    return (a.format.name, a.layout.name, a.sample_rate) == (
        b.format.name,
        b.layout.name,
        b.sample_rate,
    )


def _resample(
    resampler: av.AudioResampler, frames: list[av.AudioFrame]
) -> list[npt.NDArray[np.float32]]:
    """Resample decoded frames of one kind in one call (one call per frame costs 2x the time)."""
    if not frames:
        return []
    first = frames[0]
    joined = _samples(frames)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(joined), format=first.format.name, layout=first.layout.name
    )
    frame.sample_rate = first.sample_rate
    return [
        np.asarray(out.to_ndarray(), np.float32).reshape(-1) for out in resampler.resample(frame)
    ]


def _samples(frames: list[av.AudioFrame]) -> npt.NDArray[np.generic]:
    """The samples of frames of one kind, read from their planes.

    Same as concatenating ``frame.to_ndarray()``, whose per-frame overhead costs as much as
    decoding AAC does.

    Returns:
        shape (channels, samples) for a planar format, (1, samples * channels) for a packed one.
    """
    fmt = frames[0].format
    dtype = _DTYPES[fmt.name.removesuffix("p")]
    if fmt.is_planar:
        channels = len(frames[0].planes)
        return np.stack(
            [
                np.concatenate(
                    [np.frombuffer(memoryview(f.planes[c]), dtype, count=f.samples) for f in frames]
                )
                for c in range(channels)
            ]
        )
    width = len(frames[0].layout.channels)
    return np.concatenate(
        [np.frombuffer(memoryview(f.planes[0]), dtype, count=f.samples * width) for f in frames]
    )[None, :]
