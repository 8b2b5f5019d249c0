"""Decode any audio codec (AAC, Opus, Vorbis, MP3, PCM...) to mono float32 at one sample rate.

Each mono signal is a :class:`Take`: which channels (their mean, or the first) and which
resampler (torchvggish's resampy or torchaudio's windowed sinc, :mod:`.resample`). The
soundtrack is decoded once, at its own rate and with all its channels, in windows of
:data:`_BATCH_FRAMES`; each take mixes its channels and resamples as the windows stream, into
one output array per take allocated from the stated duration (at most :data:`_FIRST_MAX_S`,
whatever the header says) and grown as the audio decodes. Memory is the outputs (bounded by
``max_seconds``) plus one window and one resampling chunk per take, whatever the file.

The channels are mixed here, never by FFmpeg's resampler: asked for mono, swresample sums a
stereo pair as (L + R) / sqrt(2), 1.414 times the channel mean the references take.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import av
import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import SampleError
from svm_toolkit.preprocess.resample import Resampler, StreamingResampler
from svm_toolkit.schema import Status

_DTYPES: dict[str, type[np.generic]] = {
    "u8": np.uint8, "s16": np.int16, "s32": np.int32, "s64": np.int64, "flt": np.float32,
    "dbl": np.float64,
}  # fmt: skip
_BATCH_FRAMES = 256  # decoded frames converted together (~6 s of AAC at 44.1 kHz)
#: Planar frames with this many channels or more are converted one by one, never read through
#: PyAV's ``frame.planes``: PyAV counts planes up to a NULL pointer, which for 8 channels reads
#: past ``AVFrame.data`` (a 9th plane of garbage: 7.1 AAC segfaulted) and past the heap array
#: of pointers for more than 8.
_PLANE_SAFE_CHANNELS = 8
_GRACE_S = 1.0  # decoded audio may run this much past ``max_seconds`` (codec padding), seconds
_UNKNOWN_S = 60.0  # first allocation when the file states no duration, seconds
#: Longest first allocation, seconds (19 MB at 16 kHz): a stated duration is only a hint (a
#: header can state 1e9 s for a 10 s file); longer soundtracks grow the array as they decode.
_FIRST_MAX_S = 300.0

Channels = Literal["mean", "first"]  # a recipe's channel policy
CHANNELS: Final[tuple[Channels, ...]] = ("mean", "first")
Source = Literal["mean", "first", "all"]  # what a take keeps of the channels
#: The ``all`` take keeps every channel of soundtracks up to this long, seconds, and channel 0
#: alone of longer ones: ImageBind's reference removes each clip's mean over all channels in
#: place, which changes channel 0's fbank only where clips overlap (recordings under 8 s);
#: elsewhere it is a constant per clip, which Kaldi's per-frame DC removal cancels.
ALL_CHANNELS_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Take:
    """One mono signal made from a soundtrack.

    Attributes:
        channels: ``"mean"``: the mean of all channels (torchvggish's ``np.mean`` over
            channels); ``"first"``: channel 0 alone; ``"all"``: every channel, shape
            (channels, samples), of soundtracks up to :data:`ALL_CHANNELS_S` (channel 0
            alone, shape (1, samples), of longer ones), for ImageBind's reference, which
            removes the mean of all channels before the fbank of channel 0.
        resampler: ``"sinc"`` (torchaudio's, ImageBind's) or ``"resampy"`` (torchvggish's).
    """

    channels: Source = "mean"
    resampler: Resampler = "sinc"


#: The take of every audio user without a reference of its own (loudness, silence, speech,
#: Chromaprint, the extractors without a Mel recipe): the channel mean, torchaudio's resampler.
MEAN: Final = Take()


def load_audio(
    path: Path,
    *,
    sample_rate: int = 16_000,
    max_seconds: float | None = None,
    take: Take = MEAN,
) -> npt.NDArray[np.float32]:
    """Decode a file's first audio stream to one mono signal at ``sample_rate``.

    Args:
        path: any container FFmpeg reads.
        sample_rate: output rate, Hz (16 kHz for ImageBind and VGGish).
        max_seconds: longest soundtrack decoded, seconds (``None``: no bound). Decoding stops
            as soon as the audio runs more than a second past it, so memory stays bounded even
            when the container's stated duration lies.
        take: which channels and which resampler (default: the channel mean, sinc).

    Returns:
        float32, shape (samples,), range about [-1, 1], mono at ``sample_rate``; shape
        (channels, samples) for the take ``all``.

    Raises:
        SampleError: ``no_audio`` when the file has no audio stream, ``decode_error`` when it
            cannot be decoded, ``too_long`` when the audio is longer than ``max_seconds``.
    """
    return load_takes(path, (take,), sample_rate=sample_rate, max_seconds=max_seconds)[take]


def load_takes(
    path: Path,
    takes: Iterable[Take],
    *,
    sample_rate: int = 16_000,
    max_seconds: float | None = None,
) -> dict[Take, npt.NDArray[np.float32]]:
    """Decode a file's first audio stream once into several mono signals (see :func:`load_audio`).

    Returns:
        Each distinct take's signal, float32, shape (samples,) (``all``: (channels, samples)),
        at ``sample_rate``.

    Raises:
        SampleError: as :func:`load_audio`.
    """
    wanted = tuple(dict.fromkeys(takes))
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise SampleError(Status.NO_AUDIO.value, f"{path.name}: no audio stream")
            stream = container.streams.audio[0]
            mixer: _Mixer | None = None
            batch: list[av.AudioFrame] = []
            for frame in container.decode(stream):
                if mixer is None:
                    stated = _stated_seconds(container, stream)
                    mixer = _Mixer(frame, wanted, sample_rate, stated, path, max_seconds)
                if batch and (len(batch) >= _BATCH_FRAMES or not _same_kind(batch[0], frame)):
                    mixer.add(_join(batch))
                    batch = []
                if frame.format.is_planar and len(frame.layout.channels) >= _PLANE_SAFE_CHANNELS:
                    mixer.add(frame)  # converted to packed samples alone
                    continue
                batch.append(frame)
            if mixer is None:
                return {
                    take: np.zeros((1, 0) if take.channels == "all" else 0, np.float32)
                    for take in wanted
                }
            if batch:
                mixer.add(_join(batch))
            return mixer.result()
    except av.error.FFmpegError as exc:
        raise SampleError(
            Status.DECODE_ERROR.value, f"{path.name}: cannot decode audio: {exc}"
        ) from None


class _Mixer:
    """Decoded frames -> packed float32 at the stream's rate -> each take's channels, resampled.

    swresample only converts the sample format here (same layout, same rate: no mixing), to
    packed ``flt``, whose one plane is safe to read whatever the channel count.
    """

    def __init__(
        self,
        first: av.AudioFrame,
        takes: tuple[Take, ...],
        sample_rate: int,
        stated_s: float | None,
        path: Path,
        max_seconds: float | None,
    ) -> None:
        self.rate = first.sample_rate
        self.width = len(first.layout.channels)
        self.converter = av.AudioResampler(format="flt", layout=first.layout.name, rate=self.rate)
        self.path, self.max_seconds = path, max_seconds
        self.limit = (
            None if max_seconds is None else math.ceil((max_seconds + _GRACE_S) * self.rate)
        )
        self.decoded = 0  # samples per channel, at ``self.rate``
        out_limit = (
            None if max_seconds is None else math.ceil((max_seconds + _GRACE_S) * sample_rate)
        )
        # one stream per distinct signal and channel: of a mono file, mean = first = all
        self.signals = {take: self._signal(take) for take in takes}
        self.all_limit = math.ceil(ALL_CHANNELS_S * self.rate)
        self.outputs = {
            (signal, c): _Output(stated_s, sample_rate, out_limit)
            for signal in self.signals.values()
            for c in range(self.width if signal.channels == "all" else 1)
        }
        self.streams = {
            key: StreamingResampler(self.rate, sample_rate, key[0].resampler, out.add)
            for key, out in self.outputs.items()
        }

    def _signal(self, take: Take) -> Take:
        return Take("first", take.resampler) if self.width == 1 else take

    def add(self, frame: av.AudioFrame) -> None:
        """Convert, check the bound, and mix one (joined) frame into every take."""
        frame.pts = None  # joined frames have none; a mid-stream change of kind keeps the rest
        for converted in self.converter.resample(frame):
            self._mix(converted)

    def _mix(self, frame: av.AudioFrame) -> None:
        samples = np.frombuffer(memoryview(frame.planes[0]), np.float32, count=frame.samples
                                * self.width).reshape(frame.samples, self.width)  # fmt: skip
        self.decoded += frame.samples
        if self.limit is not None and self.decoded > self.limit:
            raise SampleError(
                Status.TOO_LONG.value,
                f"{self.path.name}: the soundtrack is longer than {self.max_seconds:g} s "
                "(decoding stopped there; raise it with --max-media-s to accept it)",
            )
        if self.decoded > self.all_limit:  # long: the take ``all`` keeps channel 0 alone
            for key in [k for k in self.streams if k[0].channels == "all" and k[1] > 0]:
                del self.streams[key], self.outputs[key]
        mixed: dict[int, npt.NDArray[np.float32]] = {}  # channel (-1: the mean) -> samples
        for (signal, c), stream in self.streams.items():
            channel = -1 if signal.channels == "mean" else c
            if channel not in mixed:
                mixed[channel] = _mean(samples) if channel < 0 else np.array(samples[:, channel])
            stream.push(mixed[channel])

    def result(self) -> dict[Take, npt.NDArray[np.float32]]:
        """Each take's signal (the converter and the resamplers flushed)."""
        for converted in self.converter.resample(None):
            self._mix(converted)
        for stream in self.streams.values():
            stream.close()
        done = {key: out.result() for key, out in self.outputs.items()}
        result = {}
        for take, signal in self.signals.items():
            if signal.channels == "all":
                result[take] = np.stack([done[k] for k in done if k[0] == signal])
            else:
                result[take] = done[signal, 0]
                if take.channels == "all":  # a mono file
                    result[take] = result[take][None]
        return result


def _mean(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The channel mean of packed samples, shape (n, channels) -> (n,), float32.

    The channels summed in order, then divided by their count, in float32: what
    ``np.mean(samples, axis=1)`` computes (torchvggish's downmix), bit for bit for stereo, in a
    third of its time (a reduction along a short last axis is slow in numpy).
    """
    total = np.array(samples[:, 0])
    for c in range(1, samples.shape[1]):
        total += samples[:, c]
    total /= np.float32(samples.shape[1])
    return total


class _Output:
    """Mono samples written in place into one array, allocated from the stated duration.

    The first allocation is the stated duration but at most :data:`_FIRST_MAX_S`, so a header
    that lies costs nothing; the array then grows by half (in place where the allocator can)
    whenever the decoded audio runs past it, and never past ``limit`` samples (the decoder
    stops at its own bound first).
    """

    def __init__(self, stated_s: float | None, sample_rate: int, limit: int | None) -> None:
        first_s = min(stated_s or _UNKNOWN_S, _FIRST_MAX_S)
        expected = math.ceil((first_s + _GRACE_S) * sample_rate)
        self.samples = np.empty(expected if limit is None else min(expected, limit), np.float32)
        self.size = 0
        self.limit = limit

    def add(self, chunk: npt.NDArray[np.float32]) -> None:
        """Append samples (float32, shape (n,))."""
        end = self.size + len(chunk)
        if self.limit is not None:
            end = min(end, self.limit)
            chunk = chunk[: end - self.size]
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


def _join(frames: list[av.AudioFrame]) -> av.AudioFrame:
    """Decoded frames of one kind as one frame (one conversion per frame costs 2x the time)."""
    first = frames[0]
    if len(frames) == 1:
        return first
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(_samples(frames)), format=first.format.name, layout=first.layout.name
    )
    frame.sample_rate = first.sample_rate
    return frame


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
