from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from svm_toolkit.testing import MediaSpec, make_media
from tests.conftest import probe


def streams(path: Path) -> dict[str, dict[str, object]]:
    return {s["codec_type"]: s for s in probe(path)["streams"]}


def test_mp4_with_black_bars(media_dir: Path) -> None:
    info = probe(media_dir / "clip.mp4")
    by_type = {s["codec_type"]: s for s in info["streams"]}
    assert (by_type["video"]["width"], by_type["video"]["height"]) == (160, 120)
    assert by_type["video"]["codec_name"] == "h264" and by_type["audio"]["codec_name"] == "aac"
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)


def test_bars_are_where_cropdetect_finds_them(media_dir: Path) -> None:
    spec = MediaSpec(seconds=2.0, size=(160, 120), content=(160, 88))
    assert spec.bars == (0, 16, 160, 88)
    out = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-i",
            str(media_dir / "clip.mp4"),
            "-vf",
            "cropdetect=limit=24:round=2:reset=0",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    detected = re.findall(r"crop=(\d+:\d+:\d+:\d+)", out)
    assert detected and set(detected) == {"160:88:0:16"}  # on every frame


def test_no_audio_stream(media_dir: Path) -> None:
    assert set(streams(media_dir / "silent.mp4")) == {"video"}


def test_sine_peaks_at_its_frequency(tmp_path: Path) -> None:
    path = make_media(
        tmp_path / "tone.wav",
        MediaSpec(video=None, audio="sine", tone_hz=1000, sample_rate=16_000, container="wav"),
    )
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-"],
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * 16_000 / len(samples)
    assert peak_hz == pytest.approx(1000, abs=2)


@pytest.mark.parametrize(
    ("spec", "video", "audio"),
    [
        (MediaSpec(seconds=1, container="webm"), "vp9", "opus"),
        (MediaSpec(seconds=1, container="mkv", audio="noise"), "h264", "vorbis"),
        (MediaSpec(seconds=1, video=None, container="m4a"), None, "aac"),
        (MediaSpec(seconds=1, video=None, container="mp3", audio="silence"), None, "mp3"),
        (MediaSpec(seconds=1, video="black", audio="silence"), "h264", "aac"),
        (MediaSpec(seconds=1, video="noise"), "h264", "aac"),
        (MediaSpec(seconds=1, video="bars", size=(64, 48)), "h264", "aac"),
    ],
)
def test_containers_and_patterns(
    tmp_path: Path, spec: MediaSpec, video: str | None, audio: str | None
) -> None:
    path = make_media(tmp_path / f"x.{spec.container}", spec)
    found = streams(path)
    assert (found.get("video", {}).get("codec_name"), found.get("audio", {}).get("codec_name")) == (
        video,
        audio,
    )
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": (161, 120)}, "even"),
        ({"content": (160, 87)}, "even"),
        ({"content": (200, 88)}, "does not fit"),
        ({"video": None, "audio": None}, "needs a video or an audio"),
        ({"container": "wav"}, "holds audio only"),
        ({"seconds": 0}, "must be > 0"),
    ],
)
def test_invalid_specs(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MediaSpec(**kwargs)  # type: ignore[arg-type]
