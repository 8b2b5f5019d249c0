"""Decode one video once for every extractor: frames at a fixed rate, one ffmpeg filter graph.

Crop, frame-rate sampling and scaling all run inside ffmpeg (``crop → fps → scale``), so only the
sampled frames are scaled and converted to RGB, and nothing is re-encoded. ffmpeg auto-rotates,
so the crop box is the one of the picture as shown.
"""

from __future__ import annotations

import dataclasses
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from svm_toolkit import ffmpeg
from svm_toolkit.errors import SampleError
from svm_toolkit.extract.images import torchvision_size
from svm_toolkit.preprocess.crop import CropBox
from svm_toolkit.schema import Status


@dataclass(frozen=True, slots=True)
class FramePlan:
    """How to decode one video's frames.

    Attributes:
        fps: frames per second to sample, frames/s.
        short_side: short side after scaling, pixels (the largest ``resize`` asked for).
        crop: the box to keep, in pixels of the picture as shown (``None``: the whole frame).
        size: width and height of the picture as shown, pixels (before the crop).
        threads: ffmpeg decoder threads (1: processes are the parallelism).
        keep_last: let ffmpeg's ``fps`` filter pass the last frame at the end of the stream
            (``eof_action=pass``), for video streams too short to reach the first sampling
            time otherwise (one still frame over a soundtrack).
    """

    fps: float
    short_side: int
    crop: CropBox | None
    size: tuple[int, int]
    threads: int = 1
    keep_last: bool = False

    def output_size(self) -> tuple[int, int]:
        """Width and height of the frames ffmpeg writes: torchvision's ``Resize(short_side)``.

        Short side ``short_side``, long side truncated (``int(short_side * long / short)``, see
        :func:`~svm_toolkit.extract.images.torchvision_size`), so crops land where torchvision's
        land; RGB output takes odd sizes.
        """
        w, h = (self.crop.width, self.crop.height) if self.crop else self.size
        out_h, out_w = torchvision_size(h, w, self.short_side)
        return out_w, out_h

    def filter_graph(self) -> str:
        """The ``-vf`` argument: crop, sample ``fps``, scale, RGB."""
        out_w, out_h = self.output_size()
        steps = [self.crop.as_ffmpeg()] if self.crop else []
        fps = f"fps={self.fps:g}" + (":eof_action=pass" if self.keep_last else "")
        steps += [fps, f"scale={out_w}:{out_h}:flags=bilinear", "format=rgb24"]
        return ",".join(steps)


def read_video_frames(
    path: Path, plan: FramePlan
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Decode the sampled frames of one video.

    A video whose stream ends before ffmpeg's ``fps`` filter takes any frame (a single frame
    lasting 40 ms) is decoded again keeping its last frame.

    Returns:
        uint8 frames, shape (T, H, W, 3), RGB; float32 times, shape (T,), seconds
        (frame i is the one shown at ``i / fps``).

    Raises:
        SampleError: ``decode_error`` when ffmpeg cannot decode the file.
    """
    out_w, out_h = plan.output_size()
    args = [
        ffmpeg.require(), "-v", "error", "-nostdin", "-threads", str(plan.threads),
        "-i", str(path), "-an", "-sn", "-vf", plan.filter_graph(),
        "-f", "rawvideo", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise SampleError(
            Status.DECODE_ERROR.value,
            f"{path.name}: ffmpeg could not decode the video: {message[-1] if message else '?'}",
        )
    frame_bytes = out_w * out_h * 3
    count = len(proc.stdout) // frame_bytes
    if count == 0 and not plan.keep_last:
        return read_video_frames(path, dataclasses.replace(plan, keep_last=True))
    frames = np.frombuffer(proc.stdout, np.uint8, count=count * frame_bytes)
    frames = frames.reshape(count, out_h, out_w, 3).copy()  # writable, for torch.from_numpy
    return frames, (np.arange(count, dtype=np.float32) / np.float32(plan.fps))
