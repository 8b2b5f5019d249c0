"""Decode any audio codec (AAC, Opus, Vorbis, MP3, PCM...) to mono float32 at one sample rate.

The soundtrack is streamed: decoded frames are resampled in windows of :data:`_BATCH_FRAMES`
and written into one output array, allocated from the stated duration (at most
:data:`_FIRST_MAX_S`, whatever the header says) and grown as the audio decodes, so memory is
the output (bounded by ``max_seconds``) plus one window, whatever the file.
"""

from __future__ import annotations

import math
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
#: Planar frames with this many channels or more are resampled one by one, never read through
#: PyAV's ``frame.planes``: PyAV counts planes up to a NULL pointer, which for 8 channels reads
#: past ``AVFrame.data`` (a 9th plane of garbage: 7.1 AAC segfaulted) and past the heap array
#: of pointers for more than 8.
_PLANE_SAFE_CHANNELS = 8
_GRACE_S = 1.0  # decoded audio may run this much past ``max_seconds`` (codec padding), seconds
_UNKNOWN_S = 60.0  # first allocation when the file states no duration, seconds
#: Longest first allocation, seconds (19 MB at 16 kHz): a stated duration is only a hint (a
#: header can state 1e9 s for a 10 s file); longer soundtracks grow the array as they decode.
_FIRST_MAX_S = 300.0


def load_audio(
    path: Path, *, sample_rate: int = 16_000, max_seconds: float | None = None
) -> npt.NDArray[np.float32]:
    """Decode a file's first audio stream, downmixed to mono and resampled.

    Args:
        path: any container FFmpeg reads.
        sample_rate: output rate, Hz (16 kHz for ImageBind and VGGish).
        max_seconds: longest soundtrack decoded, seconds (``None``: no bound). Decoding stops
            as soon as the audio runs more than a second past it, so memory stays bounded even
            when the container's stated duration lies.

    Returns:
        float32, shape (samples,), range about [-1, 1], mono at ``sample_rate``.

    Raises:
        SampleError: ``no_audio`` when the file has no audio stream, ``decode_error`` when it
            cannot be decoded, ``too_long`` when the audio is longer than ``max_seconds``.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise SampleError(Status.NO_AUDIO.value, f"{path.name}: no audio stream")
            stream = container.streams.audio[0]
            limit = (
                None if max_seconds is None else math.ceil((max_seconds + _GRACE_S) * sample_rate)
            )
            out = _Output(_stated_seconds(container, stream), sample_rate, limit, path, max_seconds)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            batch: list[av.AudioFrame] = []
            for frame in container.decode(stream):
                if batch and (len(batch) >= _BATCH_FRAMES or not _same_kind(batch[0], frame)):
                    out.add(_resample(resampler, batch))
                    batch = []
                if frame.format.is_planar and len(frame.layout.channels) >= _PLANE_SAFE_CHANNELS:
                    frame.pts = None  # as the joined frames of the other path
                    out.add(resampler.resample(frame))
                    continue
                batch.append(frame)
            out.add(_resample(resampler, batch))
            out.add(resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise SampleError(
            Status.DECODE_ERROR.value, f"{path.name}: cannot decode audio: {exc}"
        ) from None
    return out.result()


class _Output:
    """Mono samples written in place into one array, allocated from the stated duration.

    The first allocation is the stated duration but at most :data:`_FIRST_MAX_S`, so a header
    that lies costs nothing; the array then grows by half (in place where the allocator can)
    whenever the decoded audio runs past it, and never past ``limit`` samples.
    """

    def __init__(
        self,
        stated_s: float | None,
        sample_rate: int,
        limit: int | None,
        path: Path,
        max_seconds: float | None,
    ) -> None:
        first_s = min(stated_s or _UNKNOWN_S, _FIRST_MAX_S)
        expected = math.ceil((first_s + _GRACE_S) * sample_rate)
        self.samples = np.empty(expected if limit is None else min(expected, limit), np.float32)
        self.size = 0
        self.limit, self.path, self.max_seconds = limit, path, max_seconds

    def add(self, frames: list[av.AudioFrame]) -> None:
        """Append resampled (mono ``flt``) frames."""
        for frame in frames:
            chunk = np.asarray(frame.to_ndarray(), np.float32).reshape(-1)
            end = self.size + len(chunk)
            if self.limit is not None and end > self.limit:
                raise SampleError(
                    Status.TOO_LONG.value,
                    f"{self.path.name}: the soundtrack is longer than {self.max_seconds:g} s "
                    "(decoding stopped there; raise it with --max-media-s to accept it)",
                )
            if end > len(self.samples):
                grown = max(end, len(self.samples) * 3 // 2)
                self.samples.resize(grown if self.limit is None else min(grown, self.limit),
                                    refcheck=False)  # fmt: skip
            self.samples[self.size : end] = chunk
            self.size = end

    def result(self) -> npt.NDArray[np.float32]:
        """The samples decoded, float32, shape (samples,) (the spare capacity is freed)."""
        self.samples.resize(self.size, refcheck=False)
        return self.samples


def _stated_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The duration the file states for the stream (or the container), seconds."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def _same_kind(a: av.AudioFrame, b: av.AudioFrame) -> bool:
    return (a.format.name, a.layout.name, a.sample_rate) == (
        b.format.name,
        b.layout.name,
        b.sample_rate,
    )


def _resample(resampler: av.AudioResampler, frames: list[av.AudioFrame]) -> list[av.AudioFrame]:
    """Resample decoded frames of one kind in one call (one call per frame costs 2x the time)."""
    if not frames:
        return []
    first = frames[0]
    joined = _samples(frames)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(joined), format=first.format.name, layout=first.layout.name
    )
    frame.sample_rate = first.sample_rate
    return resampler.resample(frame)


def _samples(frames: list[av.AudioFrame]) -> npt.NDArray[np.generic]:
    """The samples of frames of one kind, read from their planes.

    Same as concatenating ``frame.to_ndarray()``, whose per-frame overhead costs as much as
    decoding AAC does. Planar frames must have fewer than :data:`_PLANE_SAFE_CHANNELS` channels.

    Returns:
        shape (channels, samples) for a planar format, (1, samples * channels) for a packed one.
    """
    fmt = frames[0].format
    dtype = _DTYPES[fmt.name.removesuffix("p")]
    width = len(frames[0].layout.channels)
    if fmt.is_planar:
        return np.stack(
            [
                np.concatenate(
                    [np.frombuffer(memoryview(f.planes[c]), dtype, count=f.samples) for f in frames]
                )
                for c in range(width)
            ]
        )
    return np.concatenate(
        [np.frombuffer(memoryview(f.planes[0]), dtype, count=f.samples * width) for f in frames]
    )[None, :]
