from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.filters import FILTER_PRESETS, FILTERS, FilterConfig, judge
from svm_toolkit.preprocess.sample import PreprocessJob, Preprocessor
from svm_toolkit.preprocess.signals import Signals, audio_signals, video_signals
from svm_toolkit.probe import MediaFacts
from svm_toolkit.testing import MediaSpec, make_media

BASE = FilterConfig()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("filters")
    specs = {
        "good": MediaSpec(seconds=4, size=(240, 160), fps=10),
        "portrait": MediaSpec(seconds=4, size=(160, 240), fps=10),
        "tiny": MediaSpec(seconds=4, size=(96, 64), fps=10),
        "mute": MediaSpec(seconds=4, audio=None, fps=10),
        "silent": MediaSpec(seconds=4, audio="silence", fps=10),
        "still": MediaSpec(seconds=4, video="bars", fps=10),
        "dark": MediaSpec(seconds=4, video="black", fps=10),
    }
    return {name: make_media(root / f"{name}.mp4", spec) for name, spec in specs.items()}


def measure(path: Path) -> tuple[MediaFacts, Signals]:
    """Facts and signals as ``svm preprocess`` computes them."""
    result = Preprocessor(DatasetLayout(path.parent), PreprocessConfig(workers=1))(
        PreprocessJob(path.stem, path.name)
    )
    assert result.facts is not None and result.signals is not None, result.detail
    return result.facts, result.signals


def status(path: Path, config: FilterConfig = BASE) -> str | None:
    facts, signals = measure(path)
    return judge(facts, signals, config)[0]


def test_a_good_clip_passes_every_filter(clips: dict[str, Path]) -> None:
    facts, signals = measure(clips["good"])
    failed, verdicts = judge(facts, signals, replace(FILTER_PRESETS["svm10k"], max_aspect=2.0))
    assert failed is None
    assert {v.name for v in verdicts} == set(
        FILTERS
    )  # every filter judged and kept, with its score
    assert all(v.score is not None for v in verdicts)


@pytest.mark.parametrize(
    ("clip", "config", "expected"),
    [
        ("good", replace(BASE, min_duration_s=5.0), "filtered:duration"),
        ("good", replace(BASE, max_duration_s=3.0), "filtered:duration"),
        ("tiny", replace(BASE, min_short_side=144), "filtered:resolution"),
        ("good", replace(BASE, min_short_side=144), None),
        ("good", replace(BASE, max_aspect=1.0), "filtered:aspect"),  # keep portrait only
        ("portrait", replace(BASE, max_aspect=1.0), None),
        ("mute", BASE, "filtered:audio"),
        ("mute", replace(BASE, require_audio=False), None),
        ("silent", BASE, "filtered:loudness"),
        ("silent", replace(BASE, min_loudness_dbfs=None), "filtered:silence"),
        ("still", BASE, "filtered:static"),
        ("dark", replace(BASE, min_motion=None), "filtered:black"),
    ],
)
def test_each_filter_passes_and_fails(
    clips: dict[str, Path], clip: str, config: FilterConfig, expected: str | None
) -> None:
    assert status(clips[clip], config) == expected


def test_signal_values() -> None:
    sr = 16_000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    loudness, silence = audio_signals(tone)
    assert loudness == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01) and silence == 0.0
    half = np.concatenate([tone, np.zeros(sr, np.float32)])
    assert audio_signals(half)[1] == pytest.approx(0.5)
    frames = np.zeros((3, 4, 4), np.uint8)
    frames[1] += 100
    assert video_signals(frames) == (pytest.approx(100.0), pytest.approx(2 / 3))


def test_inverted_bounds_are_refused() -> None:
    from svm_toolkit.errors import ConfigError

    with pytest.raises(ConfigError, match="inverted"):
        FilterConfig(min_duration_s=10, max_duration_s=5)


@pytest.mark.parametrize(
    ("name", "motion", "expected"),
    [
        ("grain", "noise=alls=6:allf=t:all_seed=7", "filtered:static"),  # measured 0.09 levels
        ("slow_zoom", "zoompan=z='1+0.0005*on':d=1:s=320x180:fps=30", None),  # 2.77 levels
    ],
)
def test_the_static_threshold_sits_between_a_grainy_still_and_a_slow_zoom(
    tmp_path: Path, name: str, motion: str, expected: str | None
) -> None:
    """A Mandelbrot still, x264 medium CRF 28 as platforms encode, 6 s at 30 fps."""
    still = (
        "mandelbrot=s=320x180:maxiter=200:start_scale=1.5:end_scale=1.5,trim=end_frame=1,"
        "loop=180:1:0,setpts=N/30/TB,format=yuv420p"
    )
    path = tmp_path / f"{name}.mp4"
    ffmpeg.run(["-hide_banner", "-loglevel", "error", "-y", "-filter_complex",
                f"{still},{motion}", "-f", "lavfi", "-i", "sine=duration=6", "-t", "6", "-r",
                "30", "-c:v", "libx264", "-preset", "medium", "-crf", "28", "-c:a", "aac",
                str(path)])  # fmt: skip
    assert status(path) == expected
