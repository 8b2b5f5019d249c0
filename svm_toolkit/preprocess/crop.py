"""Black-border detection: one crop box per video from a handful of frames across it.

For each pixel the brightest luma over the sampled frames is kept (content is lit in at least one
frame even through dark scenes and fades; a black bar never is). A row or column is border when
fewer than ``logo_fraction`` of its pixels exceed ``limit`` (a small logo or watermark in a bar
does not keep the bar). The box is the span between the outermost content rows and columns,
shrunk to even offsets and sizes, in source pixels. ``limit=24`` on 8-bit luma is ffmpeg
``cropdetect``'s default threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import SampleError
from svm_toolkit.schema import Status


@dataclass(frozen=True, slots=True)
class CropBox:
    """A crop in source pixels: ``x``, ``y`` offsets and ``width``, ``height``, all even."""

    x: int
    y: int
    width: int
    height: int

    def as_ffmpeg(self) -> str:
        """The ``crop=w:h:x:y`` filter for ffmpeg."""
        return f"crop={self.width}:{self.height}:{self.x}:{self.y}"

    def shown(self, rotation: int, width: int, height: int) -> CropBox:
        """The same box on the picture as shown (what ffmpeg crops after its autorotate).

        Args:
            rotation: the display rotation PyAV reports, degrees; the shown picture is
                ``np.rot90(coded, rotation // 90)``.
            width: the coded frame width, pixels.
            height: the coded frame height, pixels.

        Raises:
            ValueError: a rotation that is not a multiple of 90 degrees.
        """
        turn = rotation % 360
        x, y, w, h = self.x, self.y, self.width, self.height
        boxes = {
            0: (x, y, w, h),
            90: (y, width - (x + w), h, w),
            180: (width - (x + w), height - (y + h), w, h),
            270: (height - (y + h), x, h, w),
        }
        if turn not in boxes:
            raise ValueError(f"unsupported rotation {rotation} degrees")
        return CropBox(*boxes[turn])


@dataclass(frozen=True, slots=True)
class FrameSample:
    """Luma frames spread over a video.

    Attributes:
        luma: uint8, shape (frames, height, width): the Y plane (limited range, black = 16), in
            coded (unrotated) pixels.
        times_s: float64, shape (frames,): presentation times, seconds.
        rotation: display rotation FFmpeg reports, degrees (0, 90, 180 or -90).
    """

    luma: npt.NDArray[np.uint8]
    times_s: npt.NDArray[np.float64]
    rotation: int


def read_frames(path: Path, count: int = 8, *, min_distinct: int = 3) -> FrameSample:
    """Decode about ``count`` luma frames spread evenly over the video, never the whole video.

    Each of ``count`` evenly spaced times is reached by seeking to the keyframe before it, which is
    the frame kept (one frame decoded per seek). When keyframes are so sparse that fewer than
    ``min_distinct`` different frames come back (a short clip with one keyframe), the video is
    decoded once from the start instead, keeping the first frame at or after each time.

    Raises:
        SampleError: ``not_media`` without a video stream, ``decode_error`` when unreadable.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SampleError(Status.NOT_MEDIA.value, f"{path.name}: no video stream")
            stream = container.streams.video[0]
            duration = (container.duration or 0) / av.time_base
            targets = [duration * (i + 0.5) / count for i in range(count)]
            frames = _keyframes(container, stream, targets)
            if len(frames) < min(min_distinct, count):
                container.seek(0)
                frames = _sequential(container, stream, targets)
    except av.error.FFmpegError as exc:
        raise SampleError(
            Status.DECODE_ERROR.value, f"{path.name}: cannot decode video: {exc}"
        ) from None
    if not frames:
        raise SampleError(Status.DECODE_ERROR.value, f"{path.name}: no frame could be decoded")
    return FrameSample(
        luma=np.stack([f.to_ndarray(format="gray") for f in frames]),
        times_s=np.array([f.time or 0.0 for f in frames], dtype=np.float64),
        rotation=int(frames[0].rotation),
    )


def _keyframes(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    targets: list[float],
) -> list[av.VideoFrame]:
    """The keyframe before each target time, each distinct keyframe once."""
    frames: dict[int | None, av.VideoFrame] = {}
    for target in targets:
        container.seek(int(target * av.time_base), backward=True, any_frame=False)
        frame = next(container.decode(stream), None)
        if frame is not None and frame.pts not in frames:
            frames[frame.pts] = frame
    return list(frames.values())


def _sequential(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    targets: list[float],
) -> list[av.VideoFrame]:
    """One decode from the start: the first frame at or after each target time.

    Targets past the last frame get the last frame (it stays on screen to the end), so a video
    stream shorter than the container (one still frame over a soundtrack) still gives a frame.
    """
    frames: list[av.VideoFrame] = []
    pending = iter(targets)
    target = next(pending, None)
    last = None
    for frame in container.decode(stream):
        if target is None:
            break
        last = frame
        if frame.time is None or frame.time >= target - 0.05:
            frames.append(frame)
            target = next(pending, None)
            while target is not None and frame.time is not None and frame.time >= target - 0.05:
                target = next(pending, None)
    if target is not None and last is not None and (not frames or frames[-1] is not last):
        frames.append(last)
    return frames


def sample_frames(path: Path, count: int = 8) -> npt.NDArray[np.uint8]:
    """The luma of :func:`read_frames`: uint8, shape (frames, height, width)."""
    return read_frames(path, count).luma


def detect_crop(
    frames: npt.NDArray[np.uint8], *, limit: int = 24, logo_fraction: float = 0.05
) -> CropBox:
    """Find the content box of luma frames.

    Args:
        frames: uint8, shape (frames, height, width), luma.
        limit: brightest value still counted as black, 8-bit.
        logo_fraction: share of a row or column that may be bright and still be border.

    Returns:
        The crop box; the whole frame when there are no bars (or nothing but black).
    """
    _, height, width = frames.shape
    lit = frames.max(axis=0) > limit
    rows = np.flatnonzero(lit.mean(axis=1) > logo_fraction)
    cols = np.flatnonzero(lit.mean(axis=0) > logo_fraction)
    if not len(rows) or not len(cols):
        return CropBox(0, 0, width - width % 2, height - height % 2)
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    left, right = int(cols[0]), int(cols[-1]) + 1
    x, y = left + left % 2, top + top % 2  # even offsets, moved inwards
    return CropBox(x, y, (right - x) // 2 * 2, (bottom - y) // 2 * 2)
