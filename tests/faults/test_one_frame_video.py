"""A valid video of one frame over a soundtrack is decoded, not ``decode_error`` (issue 17.11)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.extract.decode import FramePlan, read_video_frames
from svm_toolkit.extract.prepare import Decoder, ExtractJob
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess import PreprocessConfig
from svm_toolkit.preprocess.crop import read_frames
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.preprocess.sample import PreprocessJob, Preprocessor


@pytest.fixture(scope="module")
def one_frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mp4 with a single 40 ms H.264 frame and 2 s of AAC."""
    path = tmp_path_factory.mktemp("one") / "media" / "one.mp4"
    path.parent.mkdir()
    subprocess.run(
        [ffmpeg.require(), "-v", "error",
         "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.04",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
         "-c:v", "libx264", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_preprocess_reads_the_frame(one_frame: Path) -> None:
    frames = read_frames(one_frame)
    assert frames.luma.shape == (1, 48, 64) and list(frames.times_s) == [0.0]
    config = PreprocessConfig(filters=FilterConfig(min_motion=None, max_speech_ratio=None))
    result = Preprocessor(DatasetLayout(one_frame.parents[1]), config)(
        PreprocessJob("one", "media/one.mp4")
    )
    assert result.status != "decode_error", result.detail
    assert result.crop is not None and result.facts is not None and result.facts.has_audio


@pytest.mark.parametrize("fps", [1.0, 8.0])
def test_extract_decodes_the_frame(one_frame: Path, fps: float) -> None:
    frames, times = read_video_frames(one_frame, FramePlan(fps, 32, None, (64, 48)))
    assert frames.shape == (1, 32, 42, 3) and list(times) == [0.0]
    assert frames.max() > 0  # the picture, not a black filler


def test_the_extract_decoder_serves_every_extractor(one_frame: Path) -> None:
    decoder = Decoder(one_frame.parents[1], ("resnet50_v1",), fps=1.0)
    prepared = decoder(ExtractJob("one", "media/one.mp4", ("resnet50_v1",), size=(64, 48)))
    assert not prepared.failed and "resnet50_v1" in prepared.units


def test_normal_videos_keep_their_frame_count(tmp_path: Path) -> None:
    """The last-frame fallback is only for streams that gave no frame at all."""
    path = tmp_path / "x.mp4"
    subprocess.run(
        [ffmpeg.require(), "-v", "error", "-f", "lavfi",
         "-i", "testsrc=size=64x48:rate=25:duration=3.3", "-c:v", "libx264", str(path)],
        check=True,
    )  # fmt: skip
    frames, _ = read_video_frames(path, FramePlan(1.0, 32, None, (64, 48)))
    assert len(frames) == 3
