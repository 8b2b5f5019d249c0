from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from svm_toolkit.preprocess import CropBox, detect_crop, sample_frames
from svm_toolkit.testing import MediaSpec, make_media


@pytest.mark.parametrize(
    ("name", "size", "content", "box"),
    [
        ("letterbox", (160, 120), (160, 88), CropBox(0, 16, 160, 88)),
        ("pillarbox", (160, 120), (120, 120), CropBox(20, 0, 120, 120)),
        ("both", (160, 120), (120, 88), CropBox(20, 16, 120, 88)),
        ("none", (160, 120), None, CropBox(0, 0, 160, 120)),
        (
            "portrait",
            (120, 212),
            (120, 68),
            CropBox(0, 72, 120, 68),
        ),  # landscape in a portrait frame
    ],
)
def test_crop_boxes_are_recovered_and_agree_with_cropdetect(
    tmp_path: Path, name: str, size: tuple[int, int], content: tuple[int, int] | None, box: CropBox
) -> None:
    path = make_media(
        tmp_path / f"{name}.mp4", MediaSpec(seconds=2, size=size, content=content, fps=10)
    )
    assert detect_crop(sample_frames(path)) == box
    detect = "cropdetect=limit=24:round=2:reset=0"
    command = ["ffmpeg", "-hide_banner", "-i", str(path), "-vf", detect, "-f", "null", "-"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    assert re.findall(r"crop=\S+", out)[-1] == box.as_ffmpeg()


def test_dark_scenes_fades_and_logos() -> None:
    rng = np.random.default_rng(0)
    frames = np.full((8, 120, 160), 16, dtype=np.uint8)  # limited-range black
    frames[:, 16:104] = rng.integers(16, 30, (8, 88, 160))  # a dark scene: barely above black...
    frames[3, 16:104, 40:120] = 200  # ...lit in one frame (a flash, or the end of a fade)
    frames[:, 2:6, 4:10] = 235  # a small logo in the top bar
    assert detect_crop(frames) == CropBox(0, 16, 160, 88)
    assert detect_crop(np.full((4, 120, 160), 16, dtype=np.uint8)) == CropBox(
        0, 0, 160, 120
    )  # all black


def test_odd_geometry_rounds_inwards_to_even() -> None:
    frames = np.full((2, 121, 161), 16, dtype=np.uint8)
    frames[:, 15:106, 3:158] = 180
    box = detect_crop(frames)
    assert (box.x, box.y, box.width % 2, box.height % 2) == (4, 16, 0, 0)
    assert box.x + box.width <= 158 and box.y + box.height <= 106


def test_audio_only_file_has_no_frames(tmp_path: Path) -> None:
    from svm_toolkit.errors import SampleError

    path = make_media(tmp_path / "a.m4a", MediaSpec(seconds=1, video=None, container="m4a"))
    with pytest.raises(SampleError, match="no video stream"):
        sample_frames(path)
