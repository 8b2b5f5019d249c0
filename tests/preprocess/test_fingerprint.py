"""Duplicate signals: Chromaprint on re-encoded vs different audio, perceptual hashes of frames."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.demo.corpus import CorpusConfig, plan_corpus, song_audio
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess import chromaprint, chromaprint_similarity, hamming, load_audio, phash
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.crop import CropBox, detect_crop, read_frames
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.preprocess.fingerprint import (
    FLAT_HASH,
    _fast_thumbnail,
    _thumbnail_hash,
    _TrackSampler,
    picture_track,
)
from svm_toolkit.preprocess.sample import PreprocessJob, Preprocessor
from svm_toolkit.preprocess.signals import video_signals
from svm_toolkit.testing import MediaSpec, make_media
from svm_toolkit.testing.speech import write_wav

SR = 16_000


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two songs as WAV, and the first re-encoded as AAC, Opus and MP3."""
    root = tmp_path_factory.mktemp("prints")
    clips = plan_corpus(root, CorpusConfig(clips=2, songs=2, seconds=12))
    paths = {}
    for name, clip in zip(("a", "b"), clips, strict=True):
        audio = song_audio(clip.song, seconds=12.0, sample_rate=44_100)
        paths[name] = write_wav(root / f"{name}.wav", audio, 44_100)
    for container in ("m4a", "ogg", "mp3"):
        spec = MediaSpec(seconds=12, video=None, container=container, audio_file=paths["a"])
        paths[f"a.{container}"] = make_media(root / f"a.{container}", spec)
    return paths


def test_the_same_audio_re_encoded_has_the_same_fingerprint(songs: dict[str, Path]) -> None:
    original = chromaprint(load_audio(songs["a"]))
    assert original.dtype == np.uint32 and len(original) > 50
    for container in ("m4a", "ogg", "mp3"):
        copy = chromaprint(load_audio(songs[f"a.{container}"]))
        assert chromaprint_similarity(original, copy) > 0.9, container


def test_different_audio_has_a_different_fingerprint(songs: dict[str, Path]) -> None:
    a, b = (chromaprint(load_audio(songs[n])) for n in ("a", "b"))
    assert chromaprint_similarity(a, b) < 0.85
    assert chromaprint_similarity(a, a[40:]) == 1.0  # a cut copy matches at its offset
    assert chromaprint_similarity(a, np.zeros(0, np.uint32)) == 0.0


def test_fingerprint_of_silence_and_short_audio() -> None:
    assert len(chromaprint(np.zeros(SR // 2, np.float32))) == 0


def test_phash_survives_re_encoding_and_scaling_but_not_another_picture(tmp_path: Path) -> None:
    a = make_media(tmp_path / "a.mp4", MediaSpec(seconds=2, size=(320, 240), video="testsrc2"))
    small = tmp_path / "s.webm"  # the same video, half the size, another codec
    ffmpeg.run(["-loglevel", "error", "-i", str(a), "-vf", "scale=160:120", "-c:v", "libvpx-vp9",
                "-deadline", "realtime", "-an", str(small)])  # fmt: skip
    bars = make_media(tmp_path / "b.mp4", MediaSpec(seconds=2, size=(320, 240), video="bars"))
    first = [read_frames(p, 2).luma[0] for p in (a, small, bars)]
    hashes = [phash(f) for f in first]
    assert hamming(hashes[0], hashes[1]) <= 8
    assert hamming(hashes[0], hashes[2]) >= 20
    assert 0 <= hashes[0] < 2**64


def test_phash_of_tiny_and_flat_images() -> None:
    assert phash(np.full((8, 8), 16, np.uint8)) == 1 << 63  # only the DC term is above 0
    tiny = np.arange(100, dtype=np.uint8).reshape(10, 10)
    assert phash(tiny) == phash(tiny.copy())


def test_picture_track_samples_the_timeline_not_the_keyframes(tmp_path: Path) -> None:
    """A moving 2 s loop with a keyframe at each repeat: keyframes all show the same picture."""
    once = make_media(tmp_path / "once.mp4", MediaSpec(seconds=2, fps=10, audio=None, gop=20))
    looped = tmp_path / "looped.mp4"
    ffmpeg.run(["-loglevel", "error", "-stream_loop", "3", "-i", str(once), "-c", "copy",
                str(looped)])  # fmt: skip
    frames = read_frames(looped, 8)
    keyframe_motion, _ = video_signals(frames.luma)
    assert keyframe_motion < 0.5  # the old measure: 8 keyframes, 4 distinct times, one picture
    track = picture_track(looped, detect_crop(frames.luma))
    assert track.motion > 2.0  # consecutive 0.5 s moments differ
    assert len(track.hashes) == 16 and track.times_s.tolist() == [k * 0.5 for k in range(16)]
    assert track.hashes.dtype == np.uint64 and FLAT_HASH not in track.hashes.tolist()
    # the loop repeats every 4 moments, and so does its track
    assert (np.bitwise_count(track.hashes[4:] ^ track.hashes[:-4]) <= 6).all()


def test_a_black_picture_has_a_flat_track(tmp_path: Path) -> None:
    black = make_media(tmp_path / "b.mp4", MediaSpec(seconds=2, video="black", audio=None))
    frames = read_frames(black, 4)
    track = picture_track(black, detect_crop(frames.luma))
    assert set(track.hashes.tolist()) == {FLAT_HASH}
    assert track.motion == 0.0 and track.black_ratio == 1.0


def test_without_the_picture_track_motion_comes_from_keyframes(tmp_path: Path) -> None:
    clip = make_media(tmp_path / "c.mp4", MediaSpec(seconds=2, fps=10, audio=None))
    filters = FilterConfig(require_audio=False, min_motion=None, max_speech_ratio=None)
    results = {
        on: Preprocessor(
            DatasetLayout(tmp_path), PreprocessConfig(filters=filters, picture_track=on, workers=1)
        )(PreprocessJob("c", "c.mp4"))
        for on in (True, False)
    }
    assert results[True].phash_step_s == 0.5 and len(results[True].phash) == 4
    assert results[False].phash == () and results[False].phash_step_s is None
    frames = read_frames(clip, 8)
    signals = results[False].signals
    assert signals is not None and signals.motion == video_signals(frames.luma)[0]


def _panning(seconds: float, fps: int, seed: int, speed: int = 4) -> list[np.ndarray]:
    """Frames of a smooth random picture (96 x 128 luma) panning right ``speed`` pixels a frame."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * fps)
    blocks = rng.uniform(0, 255, (6, 17 + speed * frames // 8))  # 128 + speed x frames wide
    world = np.kron(blocks, np.ones((16, 8)))  # blocks of 16 x 8 pixels
    return [world[:, speed * i : speed * i + 128].astype(np.uint8) for i in range(frames)]


def _sampled(images: list[np.ndarray], fps: int) -> tuple[list[int], list[float]]:
    """The hashes and times :class:`_TrackSampler` gives for ``images`` shown at ``fps``."""
    sampler = _TrackSampler(CropBox(0, 0, 128, 96), 0.5)
    for i, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="gray")
        frame.pts, frame.time_base = i, Fraction(1, fps)
        sampler.add(frame, None)
    track = sampler.finish(Path("synthetic.mp4"))
    return [int(h) for h in track.hashes], track.times_s.tolist()


def _average_hash(images: list[np.ndarray]) -> int:
    return _thumbnail_hash(np.mean([_fast_thumbnail(image) for image in images], axis=0))


def test_each_moment_hashes_itself_and_its_neighbours_in_the_shot() -> None:
    """Moment k of a shot: the average thumbnail of moments k - 1 to k + 1 (5 frames each)."""
    images = _panning(3.0, 10, seed=1)
    hashes, times = _sampled(images, 10)
    assert times == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    want = [_average_hash(images[5 * max(0, k - 1) : 5 * (k + 2)]) for k in range(6)]
    assert hashes == want
    assert want[2] != _average_hash(images[10:15])  # the neighbours do count


def test_no_moment_averages_across_a_shot_cut() -> None:
    """A cut at 1.2 s: the shot before ends with moment 1, the one after starts moment 2."""
    before, after = _panning(1.2, 10, seed=2, speed=1), _panning(1.8, 10, seed=3, speed=1)
    hashes, times = _sampled(before + after, 10)
    assert times == pytest.approx([0.0, 0.5, 1.2, 1.7, 2.2, 2.7])
    # moment 2's first frames (1.0-1.1 s) are dropped: the new shot's first moment takes its place
    assert hashes[:2] == [_average_hash(before[:10])] * 2
    want = [_average_hash(after[5 * max(0, k - 1) : 5 * (k + 2)]) for k in range(4)]
    assert hashes[2:] == want


def test_a_moment_whose_neighbours_average_to_flat_keeps_its_own_picture() -> None:
    """A picture and its negative alternating each half-second average to flat over 1.5 s."""
    image = _panning(0.1, 10, seed=4)[0]
    negative = (255 - image).astype(np.uint8)
    images = [image] * 5 + [negative] * 5 + [image] * 5
    hashes, _ = _sampled(images, 10)
    assert hashes[1] == _average_hash([negative]) != FLAT_HASH


def test_a_file_that_breaks_off_after_one_frame_has_one_moment() -> None:
    hashes, times = _sampled(_panning(0.1, 10, seed=5), 10)
    assert len(hashes) == len(times) == 1 and hashes[0] != FLAT_HASH


def _track_at(images: list[np.ndarray], pts: list[int], fps: int) -> tuple[list[int], list[float]]:
    """The track of ``images`` with the given presentation timestamps (1/fps units)."""
    sampler = _TrackSampler(CropBox(0, 0, 128, 96), 0.5)
    for image, at in zip(images, pts, strict=True):
        frame = av.VideoFrame.from_ndarray(image, format="gray")
        frame.pts, frame.time_base = at, Fraction(1, fps)
        if not sampler.add(frame, None):
            break
    track = sampler.finish(Path("synthetic.mp4"))
    return [int(h) for h in track.hashes], track.times_s.tolist()


@pytest.mark.parametrize(
    ("jump", "what"), [(-30, "timestamps start again (two files joined)"), (360_000, "10 h on")]
)
def test_a_timestamp_jump_is_closed_up(jump: int, what: str) -> None:
    """3 s, then 3 s more whose pts jump: 12 moments in time, as without the jump."""
    images = _panning(6.0, 10, seed=6)
    pts = [i if i < 30 else i + jump for i in range(60)]
    hashes, times = _track_at(images, pts, 10)
    assert (hashes, times) == _track_at(images, list(range(60)), 10), what
    assert len(times) == 12


def test_a_picture_that_changes_size_keeps_the_track_before_it() -> None:
    """The crop box was found on the first size: the track stops where the size changes."""
    images = _panning(2.0, 10, seed=7) + [np.zeros((48, 64), np.uint8)] * 10
    hashes, times = _track_at(images, list(range(30)), 10)
    assert (hashes, times) == _track_at(images[:20], list(range(20)), 10)
