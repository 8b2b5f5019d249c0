from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest

from svm_toolkit.demo.corpus import (
    CorpusConfig,
    Section,
    Song,
    generate_corpus,
    plan_corpus,
    song_audio,
    song_frames,
)
from tests.conftest import probe

A_MAJOR = Section(
    bpm=120, root_midi=69, minor=False, harmonics=1
)  # A4 = 440 Hz, a beat every 0.5 s
SONG = Song("s", (A_MAJOR, Section(bpm=90, root_midi=60, minor=True, harmonics=8)))


def test_plan_is_deterministic_and_reuses_songs(tmp_path: Path) -> None:
    config = CorpusConfig(clips=12, songs=8, letterbox_every=4)
    plan = plan_corpus(tmp_path, config)
    assert plan == plan_corpus(tmp_path, config)
    assert len({c.song.song_id for c in plan}) <= 8
    assert [c.letterboxed for c in plan].count(True) == 3
    assert all(s.sections[0] != s.sections[1] for s in (c.song for c in plan))


def test_audio_plays_the_key_on_the_beat() -> None:
    sr = 16_000
    audio = song_audio(SONG, seconds=4.0, sample_rate=sr)
    assert audio.dtype == np.float32 and audio.shape == (4 * sr,) and np.abs(audio).max() <= 1.0
    first_note = audio[int(0.1 * sr) : int(0.5 * sr)]  # after the kick, before beat 2
    spectrum = np.abs(np.fft.rfft(first_note * np.hanning(len(first_note))))
    assert np.argmax(spectrum) * sr / len(first_note) == pytest.approx(440, abs=5)
    rms = lambda a, b: float(np.sqrt(np.mean(audio[int(a * sr) : int(b * sr)] ** 2)))  # noqa: E731
    for beat in (0.5, 1.0, 1.5):  # loud right after each beat, quiet just before the next
        assert rms(beat, beat + 0.05) > 3 * rms(beat + 0.42, beat + 0.5)


def test_picture_follows_the_music() -> None:
    config = CorpusConfig(seconds=4.0, fps=20, size=(64, 112))
    frames = list(song_frames(SONG, config))
    assert len(frames) == 80 and frames[0].shape == (112, 64, 3) and frames[0].dtype == np.uint8

    def hue(frame: np.ndarray) -> float:
        r, g, b = frame.reshape(-1, 3).mean(axis=0) / 255
        return colorsys.rgb_to_hsv(r, g, b)[0]

    # Beat 0 plays A (pitch class 9), beat 1 C# (+4 semitones): the hue turns by 4/12.
    assert hue(frames[0]) == pytest.approx(9 / 12, abs=0.03)
    assert hue(frames[10]) == pytest.approx(1 / 12, abs=0.03)
    brightness = [f.mean() for f in frames]
    assert brightness[10] > 1.5 * brightness[19]  # the flash on the beat fades before the next


def test_letterboxed_frames_have_black_bars() -> None:
    frame = next(song_frames(SONG, CorpusConfig(size=(64, 112)), letterboxed=True))
    box = 64 * 9 // 16 // 2 * 2  # 36 px of landscape picture
    top = (112 - box) // 2
    assert frame[:top].max() == 0 and frame[top + box :].max() == 0
    assert frame[top : top + box].min() > 0


def test_generated_clips_are_real_videos_and_are_reused(tmp_path: Path) -> None:
    config = CorpusConfig(clips=2, songs=2, seconds=1.5)
    clips = generate_corpus(tmp_path, config, workers=2)
    info = probe(clips[0].path)
    kinds = {s["codec_type"]: s for s in info["streams"]}
    assert (kinds["video"]["codec_name"], kinds["video"]["width"], kinds["video"]["height"]) == (
        "h264",
        240,
        424,
    )
    assert kinds["audio"]["codec_name"] == "aac"
    assert float(info["format"]["duration"]) == pytest.approx(1.5, abs=0.15)
    before = [c.path.stat().st_mtime_ns for c in clips]
    generate_corpus(tmp_path, config)
    assert [c.path.stat().st_mtime_ns for c in clips] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo000.mp4", "demo001.mp4"]
