"""Duplicate signals: perceptual hashes of frames and Chromaprint audio fingerprints.

* :func:`phash`: the DCT perceptual hash (a 32 x 32 area-averaged thumbnail, its 2-D DCT-II, the
  8 x 8 lowest frequencies compared with their median: 64 bits). Re-encoding, rescaling and small
  colour changes move a handful of bits; a different picture differs in about half of them.
* :func:`picture_track`: a hash of the cropped picture for every ``PICTURE_STEP_S`` (0.5 s) of
  the media timeline, wherever the encoder put its keyframes: the average of the frames of each
  moment and its two neighbours (1.5 s; the moment's own where that is flat), moments counted
  from the first frame and again from each shot cut, so a re-encode, a copy at another frame
  rate and a cut from any point hash nearly the same pictures. One pass over the video that
  decodes reference frames only (``skip_frame = NONREF``) without the deblocking filter: 52-57 %
  of a plain full decode here (360p and 720p H.264, one core); seeking to each sample would
  cost as much as the whole decode with a keyframe every 2 s and far more with x264's default
  of 250 frames. The same moments give the motion and darkness scores of the filters.
* :func:`chromaprint`: AcoustID's Chromaprint (``libchromaprint`` through ``pyacoustid``'s
  bindings), the raw 32-bit sub-fingerprints, about 8 a second. The same recording re-encoded
  matches in > 90 % of the bits at the right offset; unrelated audio in about 50 %.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import MissingToolError, SampleError
from svm_toolkit.preprocess.crop import CropBox
from svm_toolkit.schema import Status

logger = logging.getLogger(__name__)

SAMPLE_RATE: Final = 16_000
HASH_SIZE: Final = 8  # 8 x 8 = 64 bits
THUMB_SIZE: Final = 32
#: Seconds between two samples of a picture track (the hash's time grid).
PICTURE_STEP_S: Final = 0.5
#: A thumbnail whose luma varies less than this (standard deviation, 8-bit levels) is flat
#: (black, a fade, one colour): its hash is noise, so the track stores ``FLAT_HASH`` instead.
FLAT_LEVELS: Final = 3.0
#: The hash of a flat sample in a picture track; never a real hash (the DC bit is always set).
FLAT_HASH: Final = 0
IntArray = npt.NDArray[np.int64]
_BLACK_LUMA: Final = 24  # 8-bit luma at or below this is black (ffmpeg cropdetect's default)
_CUT_LEVELS: Final = 12.0  # a shot cut changes the thumbnail by more than this, 8-bit levels
_CUT_RATIO: Final = 3.0  # ... and by this many times the running mean change between frames
#: A frame more than this many seconds after the one before, or a step or more before it, is a
#: timestamp discontinuity (files joined, a wrapped or corrupt pts), not the timeline: the track
#: goes on one frame interval after the frame before instead (a still shown longer stays in time).
_MAX_GAP_S: Final = 600.0


@functools.lru_cache(maxsize=2)
def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    """Orthonormal DCT-II matrix, shape (n, n): ``D @ x`` is the DCT of column vectors."""
    k = np.arange(n)[:, None]
    matrix = np.cos(math.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return matrix


def _area_resize(image: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float64]:
    """Average ``image`` (h, w) down to (size, size); nearest pixels where it is smaller."""
    out = image.astype(np.float64)
    for axis in (0, 1):
        length = out.shape[axis]
        if length >= size:
            edges = np.linspace(0, length, size + 1).astype(int)
            sums = np.add.reduceat(out, edges[:-1], axis=axis)
            counts = np.diff(edges).reshape((-1, 1) if axis == 0 else (1, -1))
            out = sums / counts
        else:
            out = np.take(out, (np.arange(size) * length) // size, axis=axis)
    return out


def _fast_thumbnail(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """:func:`_area_resize` to ``THUMB_SIZE`` as two small float32 products (within 1e-4 levels).

    The cell averages are separable: ``rows @ image @ cols``, where ``rows`` (32, height) and
    ``cols`` (width, 32) hold ``1 / cell size`` over each cell's rows and columns. The picture
    track's cost is timed by ``benchmarks/preprocess.py`` (no change from the cell sums
    it replaced beyond run-to-run noise of about 10 %).
    """
    height, width = image.shape
    if height < THUMB_SIZE or width < THUMB_SIZE:
        return _area_resize(image, THUMB_SIZE)
    rows, cols = _cell_means(height, width)
    return np.asarray(rows @ image.astype(np.float32) @ cols, np.float64)


@functools.lru_cache(maxsize=8)
def _cell_means(height: int, width: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The averaging matrices of :func:`_fast_thumbnail`: (32, height) and (width, 32)."""

    def means(length: int) -> npt.NDArray[np.float32]:
        edges = np.linspace(0, length, THUMB_SIZE + 1).astype(np.int64)
        out = np.zeros((THUMB_SIZE, length), np.float32)
        for cell, (start, stop) in enumerate(itertools.pairwise(edges.tolist())):
            out[cell, start:stop] = 1.0 / (stop - start)
        return out

    return means(height), np.ascontiguousarray(means(width).T)


def phash(image: npt.NDArray[np.uint8]) -> int:
    """The 64-bit DCT perceptual hash of one luma image, shape (height, width).

    Returns:
        An unsigned 64-bit integer; bit ``63 - i`` is coefficient ``i`` (row-major) of the 8 x 8
        low-frequency block being above the block's median.
    """
    return _thumbnail_hash(_area_resize(image, THUMB_SIZE))


def _thumbnail_hash(thumbnail: npt.NDArray[np.float64]) -> int:
    """:func:`phash` of a ``THUMB_SIZE`` x ``THUMB_SIZE`` area-averaged thumbnail."""
    dct = _dct_matrix(THUMB_SIZE)
    coefficients = np.round(dct @ thumbnail @ dct.T, 6)  # no float dust
    low = coefficients[:HASH_SIZE, :HASH_SIZE].reshape(-1)
    bits = low > np.median(low)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes."""
    return (a ^ b).bit_count()


@functools.cache
def _chromaprint() -> Any:
    try:
        import chromaprint as binding
    except ImportError as exc:  # pyacoustid raises ImportError when libchromaprint is missing
        raise MissingToolError(
            f"audio fingerprints need libchromaprint ({exc}); install it with "
            "'apt-get install libchromaprint1' (scripts/setup.sh does) or your package manager"
        ) from None
    return binding


def chromaprint(
    audio: npt.NDArray[np.float32], *, max_seconds: float | None = 120.0
) -> npt.NDArray[np.uint32]:
    """Chromaprint's raw fingerprint of mono 16 kHz audio.

    Args:
        audio: float32, shape (samples,), in [-1, 1].
        max_seconds: fingerprint only the start, as ``fpcalc`` does (120 s); ``None``: all.

    Returns:
        uint32, shape (about 8 per second after the first ~3 s,); empty for short clips.

    Raises:
        MissingToolError: libchromaprint is not installed.
    """
    binding = _chromaprint()
    if max_seconds is not None:
        audio = audio[: int(max_seconds * SAMPLE_RATE)]
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    printer = binding.Fingerprinter()
    printer.start(SAMPLE_RATE, 1)
    printer.feed(pcm.tobytes())
    raw, _ = binding.decode_fingerprint(printer.finish())
    return (np.asarray(raw, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32)


def chromaprint_similarity(
    a: npt.NDArray[np.uint32],
    b: npt.NDArray[np.uint32],
    *,
    max_offset: int = 80,
    min_overlap: float = 0.5,
) -> float:
    """Share of equal bits at the best alignment of two raw fingerprints, in [0, 1].

    Args:
        a: a raw fingerprint (uint32).
        b: another.
        max_offset: largest shift tried, sub-fingerprints (~0.124 s each; 80 = ~10 s).
        min_overlap: shifts must keep this share of the shorter fingerprint overlapping (short
            overlaps of unrelated music match by chance).

    Returns:
        Above 0.95 for the same recording re-encoded, 0.5-0.85 for different music; 0.0 when
        either is shorter than 8 sub-fingerprints (one second).
    """
    best = 0.0
    least = max(8, int(min_overlap * min(len(a), len(b))))
    for offset in range(-max_offset, max_offset + 1):
        x, y = (a[offset:], b) if offset >= 0 else (a, b[-offset:])
        n = min(len(x), len(y))
        if n < least:
            continue
        differing = np.unpackbits((x[:n] ^ y[:n]).view(np.uint8)).sum()
        best = max(best, 1.0 - float(differing) / (32 * n))
    return best


@dataclass(frozen=True, slots=True)
class PictureTrack:
    """The picture of one video sampled on its timeline.

    Attributes:
        hashes: uint64, shape (samples,): the DCT perceptual hash of the cropped picture
            around each moment (the average thumbnail of it and its neighbours in the shot, or
            of its own frames where that is flat), ``FLAT_HASH`` (0) for a flat one.
        times_s: float64, shape (samples,): when each moment starts, seconds from the first
            frame: ``step_s`` apart within a shot, restarted at each shot cut (so within half a
            step of ``k * step_s``).
        step_s: seconds between samples.
        motion: mean absolute change of the 32 x 32 luma thumbnails between consecutive samples,
            8-bit levels (0.0 with fewer than two samples).
        black_ratio: share of cropped pixels at or below luma 24 over the samples, in [0, 1].
    """

    hashes: npt.NDArray[np.uint64]
    times_s: npt.NDArray[np.float64]
    step_s: float
    motion: float
    black_ratio: float


def picture_track(
    path: Path,
    crop: CropBox,
    *,
    step_s: float = PICTURE_STEP_S,
    max_seconds: float | None = None,
) -> PictureTrack:
    """Hash the cropped picture every ``step_s`` seconds of a video's timeline, in one pass.

    Moment ``k`` starts within half a step of ``t0 + k * step_s`` (``t0``: the first frame's
    time); its hash is of the average thumbnail of the frames of moments ``k - 1`` to ``k + 1``
    of its shot, or of its own frames where that average is flat (see :class:`_TrackSampler`).
    Only reference frames are decoded, without the deblocking filter; a 32 x 32 thumbnail does
    not see the difference.

    Args:
        path: the media file.
        crop: the content box in coded pixels (:func:`svm_toolkit.preprocess.crop.detect_crop`).
        step_s: seconds between samples.
        max_seconds: stop after this much of the timeline (``None``: all of it).

    Returns:
        The track; a file whose video breaks off, or whose picture changes size, keeps the
        samples before that (logged). Timestamp jumps (see :data:`_MAX_GAP_S`) are closed up.

    Raises:
        SampleError: ``not_media`` without a video stream, ``decode_error`` when no frame decodes.
    """
    sampler = _TrackSampler(crop, step_s, name=path.name)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SampleError(Status.NOT_MEDIA.value, f"{path.name}: no video stream")
            stream = container.streams.video[0]
            stream.codec_context.options = {"skip_loop_filter": "all"}
            stream.codec_context.skip_frame = "NONREF"
            for frame in container.decode(stream):
                if not sampler.add(frame, max_seconds):
                    break
    except av.error.FFmpegError as exc:
        if not sampler.seen:
            raise SampleError(
                Status.DECODE_ERROR.value, f"{path.name}: cannot decode video: {exc}"
            ) from None
        logger.info("%s: video breaks off after %d frames: %s", path.name, sampler.seen, exc)
    return sampler.finish(path)


_Y_FIRST: Final = frozenset(
    {"gray", "nv12", "nv21", "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}
)


def _luma(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The Y plane of a frame (a view where the format has it first), shape (height, width).

    Its levels are the stream's (limited range: black at 16), which the hash and the motion
    score do not mind (a hash is unchanged by a brightness offset or gain); the black share is
    measured on :func:`_gray`, like the crop.
    """
    if frame.format.name in _Y_FIRST:
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        return rows[: frame.height, : frame.width]
    return _gray(frame)


def _gray(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The frame as FFmpeg's 8-bit gray (full range), shape (height, width)."""
    return np.asarray(frame.to_ndarray(format="gray"), np.uint8)


class _TrackSampler:
    """Averages the decoded frames around each moment, then hashes and scores it.

    The timeline is cut into moments of ``step_s`` counted from the first frame and again from
    every shot cut, so a copy cut at any point lines up with its original from its first shot
    cut on. Before that first cut its moments fall up to half a step off the original's, so a
    moment's hash is of the average 32 x 32 thumbnail of its own frames and those of the moments
    either side in the same shot (1.5 s at the 0.5 s step): two such windows half a step apart
    still share 5/6 of their frames. On the planted 30 s cut of ``benchmarks/copies.py`` (cut
    0.3 s into a moment) this raised the share of matching moments from 0.72 to 0.97; the
    closest pair of its 200 distinct videos stayed at 0.545. Where that average is flat (a
    pattern drifting a period per beat, over three beats, as in the demo's clips) the moment's
    own average is hashed instead. A copy at another frame rate averages nearly the same frames.
    A moment without frames around it (a still picture at a low frame rate) repeats the one
    before. Thumbnails are taken from the crop decimated to 96-191 rows or
    columns (every 3rd pixel of 360p, every 7th of 720p): 3 or more pixels a side in each of
    the 32 x 32 cells, whose averages barely move. A shot cut is a frame whose thumbnail differs
    from the frame before by more than ``_CUT_LEVELS`` and ``_CUT_RATIO`` times the running
    mean change, at least ``step_s`` after the last cut.
    """

    def __init__(self, crop: CropBox, step_s: float, *, name: str = "video") -> None:
        self.crop = crop
        self.step_s = step_s
        self.name = name  # the file, for the log
        self.size: tuple[int, int] | None = None  # the first frame's (width, height)
        self.last = 0.0  # the last frame's time, seconds from the first frame
        self.interval = step_s  # the last time between two frames, seconds
        self.stride = max(1, min(crop.width, crop.height) // 96)
        self.hashes: list[int] = []
        self.times: list[float] = []  # when each moment set aside or hashed starts, s
        self.seen = 0  # frames added
        # moments of the shot set aside until their next neighbour is known: (sum, frames)
        self.pending: deque[tuple[npt.NDArray[np.float64] | None, int]] = deque()
        self.before: tuple[npt.NDArray[np.float64] | None, int] | None = None  # last hashed
        self.first: float | None = None
        self.anchor = 0.0  # the shot's first frame, seconds from the first frame
        self.base = 0  # the shot's first moment
        self.change = 0.0  # running mean of the change between consecutive frames, levels
        self.previous: npt.NDArray[np.float64] | None = None  # the last frame's thumbnail
        self.window: npt.NDArray[np.float64] | None = None  # the open moment's thumbnail sum
        self.frames = 0  # frames in it
        self.open = 0  # its moment
        self.moment_first: npt.NDArray[np.float64] | None = None  # its first frame's thumbnail
        self.shown: npt.NDArray[np.float64] | None = None  # the last closed moment's
        self.motion = 0.0
        self.black = 0.0
        self.black_frame = 1.0

    def add(self, frame: av.VideoFrame, max_seconds: float | None) -> bool:
        """Take one decoded frame; ``False`` once past ``max_seconds`` or the picture resizes."""
        if frame.time is None:
            return True
        if self.first is None or self.size is None:
            self.first, self.size = frame.time, (frame.width, frame.height)
        if (frame.width, frame.height) != self.size:  # the crop box no longer fits
            width, height = self.size
            logger.info("%s: the picture changes size from %dx%d to %dx%d at %.1f s; the track "
                        "stops there", self.name, width, height, frame.width, frame.height,
                        self.last)  # fmt: skip
            return False
        time = frame.time - self.first
        if self.seen and not -self.step_s < time - self.last <= _MAX_GAP_S:
            logger.info("%s: timestamps jump by %.1f s after %.1f s; closed up", self.name,
                        time - self.last, self.last)  # fmt: skip
            self.first += time - (self.last + self.interval)
            time = self.last + self.interval
        if max_seconds is not None and time > max_seconds:
            return False
        self.seen += 1
        if time > self.last:
            self.interval = time - self.last
        self.last = time
        box, step = self.crop, self.stride
        luma = _luma(frame)[box.y : box.y + box.height : step, box.x : box.x + box.width : step]
        thumb = _fast_thumbnail(luma)
        if self.previous is not None:
            change = float(np.abs(thumb - self.previous).mean())
            cut = change > _CUT_LEVELS and change > _CUT_RATIO * self.change
            if cut and time - self.anchor >= self.step_s:
                self._new_shot(time)
            self.change += 0.2 * (change - self.change)
        self.previous = thumb
        moment = self.base + int((time - self.anchor) / self.step_s + 1e-6)
        if self.window is not None and moment > self.open:
            self._close()
        self._repeat_until(moment)
        if self.window is None:  # the moment's first frame
            self.window, self.frames, self.moment_first, self.open = thumb, 1, thumb, moment
            gray = _gray(frame)[box.y : box.y + box.height, box.x : box.x + box.width]
            self.black_frame = float((gray <= _BLACK_LUMA).mean()) if gray.size else 1.0
        else:
            self.window = self.window + thumb
            self.frames += 1
        return True

    def _new_shot(self, time: float) -> None:
        """Count moments from ``time`` on; moment ``k`` stays within half a step of ``k * step``.

        The open moment is closed when the shot's first moment comes after it, else (the cut
        fell in its first half) the new shot's first moment takes its place.
        """
        first = round(time / self.step_s)
        if self.window is not None:
            if self.open < first:
                self._close()
            else:
                self.window = None
        self._repeat_until(first)
        self._hash_ready(shot_over=True)
        self.anchor, self.base = time, first

    def _repeat_until(self, moment: int) -> None:
        """Moments up to ``moment`` without a frame of their own are set aside empty."""
        while self.times and len(self.times) < moment:
            self._set_aside(None, 0, len(self.times))

    def _close(self) -> None:
        """Set the open moment's thumbnail sum aside until its next neighbour is known."""
        assert self.window is not None and self.moment_first is not None
        if self.shown is not None:
            self.motion += float(np.abs(self.moment_first - self.shown).mean())
        self.shown = self.moment_first
        self._set_aside(self.window, self.frames, self.open)
        self.window = None
        self._hash_ready(shot_over=False)

    def _set_aside(self, total: npt.NDArray[np.float64] | None, frames: int, moment: int) -> None:
        """Queue moment ``moment`` of the shot: its thumbnail sum and frame count."""
        self.pending.append((total, frames))
        self.times.append(self.anchor + (moment - self.base) * self.step_s)
        self.black += self.black_frame

    def _hash_ready(self, *, shot_over: bool) -> None:
        """Hash the queued moments whose neighbours are known: all of them once the shot is over.

        A moment's hash is of the average thumbnail of the frames of it and its neighbours in
        the shot; where that is flat, of its own frames' (a pattern that drifts a period per
        beat averages to flat over three beats, but not over one); ``FLAT_HASH`` when both are
        flat; without any frames around it, the hash before.
        """
        while len(self.pending) > (0 if shot_over else 1):
            current = self.pending.popleft()
            following = self.pending[0] if self.pending else None
            around = [p for p in (self.before, current, following) if p is not None]
            sums = [total for total, _ in around if total is not None]
            if sums:
                average = np.sum(sums, axis=0) / sum(count for _, count in around)
                own, frames = current
                if float(average.std()) < FLAT_LEVELS and own is not None:
                    average = own / frames
                flat = float(average.std()) < FLAT_LEVELS
                value = FLAT_HASH if flat else _thumbnail_hash(average)
            else:
                value = self.hashes[-1] if self.hashes else FLAT_HASH
            self.hashes.append(value)
            self.before = current
        if shot_over:
            self.before = None

    def finish(self, path: Path) -> PictureTrack:
        """The track of the frames added so far."""
        if self.window is not None:
            self._close()
        self._hash_ready(shot_over=True)
        count = len(self.hashes)
        if not count:
            raise SampleError(Status.DECODE_ERROR.value, f"{path.name}: no frame could be decoded")
        return PictureTrack(
            hashes=np.array(self.hashes, np.uint64),
            times_s=np.array(self.times, np.float64),
            step_s=self.step_s,
            motion=self.motion / (count - 1) if count > 1 else 0.0,
            black_ratio=self.black / count,
        )
