"""Small JPEG frames of samples for the report: one ffmpeg call per picture, a box drawn on it.

Each picture is one frame taken at a time inside the sample's downloaded media (a fast seek to
the keyframe before it, then one frame decoded), with the crop box drawn in the same filter
graph before it is scaled to fit the thumbnail's square. ffmpeg autorotates, so boxes are given in
the pixels of the frame as shown. A file that is missing or does not decode gives no picture
(the page says so) and a warning; it never stops the report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from svm_toolkit import ffmpeg
from svm_toolkit.report.collect import Shown

logger = logging.getLogger(__name__)

#: The box's colour (ffmpeg's ``0xRRGGBB@alpha``) and its thickness: 1 % of the frame's height.
BOX_COLOUR: Final = "0xff3b30@0.95"
#: JPEG quality on ffmpeg's ``-q:v`` scale (2 best .. 31 worst): about 3 KB for 160 px.
JPEG_QUALITY: Final = 5
#: A frame takes tens of milliseconds; a file that hangs ffmpeg is given up after this long.
TIMEOUT_S: Final = 30.0


def frame_jpeg(
    path: Path,
    *,
    at_s: float,
    width: int,
    box: tuple[int, int, int, int] | None = None,
) -> bytes:
    """Decode one frame of ``path`` near ``at_s`` as a JPEG ``width`` pixels wide.

    Args:
        path: a media file with a video stream.
        at_s: the time of the frame, seconds from the start (the keyframe before it is shown
            when the file cannot seek exactly).
        width: the side of the square the picture fits in, pixels (even); the aspect ratio is
            kept.
        box: ``(x, y, width, height)`` to outline, in pixels of the frame as shown.

    Returns:
        The JPEG's bytes.

    Raises:
        FFmpegError: the file is missing, has no video or does not decode.
    """
    filters = []
    if box is not None:
        x, y, w, h = box
        filters.append(f"drawbox=x={x}:y={y}:w={w}:h={h}:color={BOX_COLOUR}:t=max(2\\,ih/100)")
    fit = f"{width}:{width}:force_original_aspect_ratio=decrease:force_divisible_by=2"
    filters.append(f"scale={fit}")
    args = ["-nostdin", "-v", "error", "-ss", f"{max(at_s, 0.0):.3f}", "-i", str(path)]
    args += ["-frames:v", "1", "-vf", ",".join(filters), "-an", "-f", "image2pipe"]
    args += ["-c:v", "mjpeg", "-q:v", str(JPEG_QUALITY), "-"]
    data = ffmpeg.run(args, timeout_s=TIMEOUT_S)
    if not data and at_s > 0:  # a seek past the last keyframe decodes nothing: the first frame
        return frame_jpeg(path, at_s=0.0, width=width, box=box)
    if not data:
        raise ffmpeg.FFmpegError(f"{path}: no frame decoded")
    return data


def thumbnails(
    samples: Iterable[Shown], *, width: int, workers: int = 2
) -> Mapping[tuple[str, bool], bytes | None]:
    """JPEG frames of ``samples``, decoded ``workers`` at a time.

    Args:
        samples: what to picture; the same sample with and without a box is decoded twice.
        width: the side of the square each picture fits in, pixels (even).
        workers: ffmpeg processes run at once.

    Returns:
        ``(sample_id, has a box) -> JPEG bytes``, ``None`` for a sample without a picture.
    """
    todo = {(s.sample_id, s.box is not None): s for s in samples}

    def one(sample: Shown) -> bytes | None:
        if sample.media is None or not sample.media.is_file():
            return None
        try:
            return frame_jpeg(sample.media, at_s=sample.at_s, width=width, box=sample.box)
        except ffmpeg.FFmpegError as exc:
            logger.warning("report: no picture of %s: %s", sample.sample_id, exc)
            return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pictures = list(pool.map(one, todo.values()))
    return dict(zip(todo, pictures, strict=True))


__all__ = ["frame_jpeg", "thumbnails"]
