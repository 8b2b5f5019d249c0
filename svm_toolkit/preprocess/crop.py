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


def sample_frames(path: Path, count: int = 8) -> npt.NDArray[np.uint8]:
    """Decode ``count`` luma frames spread evenly over the video (one seek each).

    Returns:
        uint8, shape (frames, height, width): the Y plane (limited range, black = 16).

    Raises:
        SampleError: ``not_media`` without a video stream, ``decode_error`` when unreadable.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SampleError(Status.NOT_MEDIA.value, f"{path.name}: no video stream")
            stream = container.streams.video[0]
            duration = (container.duration or 0) / av.time_base
            frames = []
            for i in range(count):
                target = duration * (i + 0.5) / count
                container.seek(int(target * av.time_base), backward=True, any_frame=False)
                frame = next(
                    (
                        f
                        for f in container.decode(stream)
                        if f.time is None or f.time >= target - 0.05
                    ),
                    None,
                )
                if frame is not None:
                    frames.append(frame.to_ndarray(format="gray"))
    except av.error.FFmpegError as exc:
        raise SampleError(
            Status.DECODE_ERROR.value, f"{path.name}: cannot decode video: {exc}"
        ) from None
    if not frames:
        raise SampleError(Status.DECODE_ERROR.value, f"{path.name}: no frame could be decoded")
    return np.stack(frames)


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
