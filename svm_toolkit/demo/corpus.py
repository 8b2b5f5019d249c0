"""A procedural music-video corpus whose picture is driven by its soundtrack.

Each clip plays a song of two sections (the music changes half-way, so temporal models have
something to learn). Within a section the song has a tempo, a key and a timbre, and the
picture follows them:

==================  ===========================================================
music               picture
==================  ===========================================================
tempo (bpm)         a flash on every beat, stripes drifting at beats/second
pitch of the note   hue (pitch class on the colour wheel)
mode (major/minor)  stripe orientation (vertical / diagonal)
timbre (harmonics)  stripe density (more harmonics, finer texture)
==================  ===========================================================

Clips are portrait (like the short videos of SVM-10K); every ``letterbox_every``-th clip shows
a landscape picture inside black bars, as re-posted videos often do, and every ``speech_every``-th
clip is a vlog: a voice (espeak-ng) talks over the music, which MVBind's speech filter drops.
"""

from __future__ import annotations

import colorsys
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from svm_toolkit import ffmpeg
from svm_toolkit.testing.speech import SENTENCES, synthetic_speech, write_wav

logger = logging.getLogger(__name__)

_MAJOR: Final = (0, 4, 7, 12)
_MINOR: Final = (0, 3, 7, 12)
_THEMES: Final = ("travel", "vlog", "dance", "food", "sports", "pets")


@dataclass(frozen=True, slots=True)
class Section:
    """One section of a song.

    Attributes:
        bpm: tempo, beats per minute.
        root_midi: MIDI note of the key's root (57 = A3).
        minor: minor (True) or major key.
        harmonics: timbre: number of harmonics of each note (1 = pure tone).
    """

    bpm: float
    root_midi: int
    minor: bool
    harmonics: int


@dataclass(frozen=True, slots=True)
class Song:
    """A two-section song, identified by ``song_id``."""

    song_id: str
    sections: tuple[Section, Section]


@dataclass(frozen=True, slots=True)
class CorpusConfig:
    """Size and format of the demo corpus.

    Attributes:
        clips: number of videos. 200 by default: about 170 pass the demo's filters, which deals
            a test gallery of about 50 pairs and a validation split of about 25 to rank
            (with 100 clips the test gallery was 25 and validation 9).
        songs: number of distinct songs; clips beyond it reuse songs (videos sharing a song).
        seconds: clip length, seconds.
        size: frame (width, height), pixels (240p portrait by default).
        fps: frames per second.
        sample_rate: audio sample rate, Hz.
        letterbox_every: every n-th clip has black bars around a landscape picture (0: none).
        speech_every: every n-th clip is a voice over quiet music (0: none; needs espeak-ng).
        seed: random seed; the same seed gives the same corpus.
    """

    clips: int = 200
    songs: int = 166
    seconds: float = 8.0
    size: tuple[int, int] = (240, 424)
    fps: int = 15
    sample_rate: int = 22_050
    letterbox_every: int = 5
    speech_every: int = 10
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Clip:
    """One generated video and the metadata a scraper would have found next to it."""

    clip_id: str
    path: Path
    song: Song
    letterboxed: bool
    speech: bool
    likes: int
    theme: str
    author: str


def plan_corpus(directory: Path, config: CorpusConfig) -> list[Clip]:
    """Decide every clip's song and metadata (deterministic in ``config.seed``); writes nothing."""
    rng = np.random.default_rng(config.seed)
    songs = [_random_song(f"song{i:03d}", rng) for i in range(config.songs)]
    clips = []
    for i in range(config.clips):
        song = songs[i] if i < len(songs) else songs[int(rng.integers(len(songs)))]
        likes = (
            int(rng.integers(2_000, 9_000)) if i % 20 == 7 else int(rng.integers(12_000, 2_000_000))
        )
        clips.append(
            Clip(
                clip_id=f"demo{i:03d}",
                path=directory / f"demo{i:03d}.mp4",
                song=song,
                letterboxed=config.letterbox_every > 0
                and i % config.letterbox_every == config.letterbox_every - 1,
                speech=config.speech_every > 0 and i % config.speech_every == 2,
                likes=likes,
                theme=_THEMES[int(rng.integers(len(_THEMES)))],
                author=f"creator{int(rng.integers(12)):02d}",
            )
        )
    return clips


def generate_corpus(
    directory: Path,
    config: CorpusConfig = CorpusConfig(),
    *,
    workers: int | None = None,
    on_clip: Callable[[Clip], None] | None = None,
) -> list[Clip]:
    """Write the corpus's MP4 files (H.264 + AAC); files already there are kept.

    Args:
        directory: where the clips go.
        config: corpus size and format.
        workers: parallel encoders (default: CPU count).
        on_clip: called after each clip is ready (for progress bars).

    Returns:
        Every clip, in order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    clips = plan_corpus(directory, config)

    def make(clip: Clip) -> Clip:
        if not clip.path.exists():
            render_clip(clip, config)
        if on_clip is not None:
            on_clip(clip)
        return clip

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return list(pool.map(make, clips))


def render_clip(clip: Clip, config: CorpusConfig) -> None:
    """Synthesise one clip's soundtrack and picture and encode them to ``clip.path`` atomically."""
    width, height = config.size
    tmp = clip.path.with_name(f".{clip.path.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="svm-demo-") as scratch:
        wav = Path(scratch) / "audio.wav"
        audio = song_audio(clip.song, seconds=config.seconds, sample_rate=config.sample_rate)
        if clip.speech:
            text = SENTENCES[int(clip.clip_id[-3:]) % len(SENTENCES)]
            voice = synthetic_speech(text, seconds=config.seconds, sample_rate=config.sample_rate)
            audio = 0.8 * voice / max(float(np.abs(voice).max()), 1e-6) + 0.15 * audio
        write_wav(wav, audio, config.sample_rate)
        args = [
            ffmpeg.require(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-r", str(config.fps), "-i", "-",
            "-i", str(wav),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p",
            "-g", str(2 * config.fps),  # a keyframe every 2 s, as platforms encode
            "-c:a", "aac", "-b:a", "96k", "-shortest", "-movflags", "+faststart",
            "-f", "mp4", str(tmp),
        ]  # fmt: skip
        with subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdin is not None and proc.stderr is not None
            try:
                for frame in song_frames(clip.song, config, letterboxed=clip.letterboxed):
                    proc.stdin.write(frame.tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg stopped early; its exit code and stderr say why
            err = proc.stderr.read().decode(errors="replace")
            code = proc.wait()
    if code != 0:
        tmp.unlink(missing_ok=True)
        raise ffmpeg.FFmpegError(
            f"encoding {clip.path.name} failed (exit {code}): {err.strip()[-300:]}"
        )
    os.replace(tmp, clip.path)


def render_replacement(path: Path, config: CorpusConfig, *, name: str = "replacement") -> Clip:
    """Render a clip that is in no corpus (a song of its own) to ``path``, unless it is there.

    The demo's rebuild serves it under a released clip's URL: a video replaced by another.
    """
    rng = np.random.default_rng([config.seed, 1])
    clip = Clip(
        clip_id=name,
        path=path,
        song=_random_song(name, rng),
        letterboxed=False,
        speech=False,
        likes=0,
        theme=_THEMES[0],
        author="someone_else",
    )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        render_clip(clip, config)
    return clip


def _random_song(song_id: str, rng: np.random.Generator) -> Song:
    def section() -> Section:
        return Section(
            bpm=float(rng.choice([72, 90, 100, 120, 128, 140, 160])),
            root_midi=int(rng.integers(50, 64)),
            minor=bool(rng.integers(2)),
            harmonics=int(rng.choice([1, 2, 4, 8])),
        )

    first = section()
    second = section()
    while second == first:
        second = section()
    return Song(song_id, (first, second))


def _section_at(song: Song, t: float, seconds: float) -> Section:
    return song.sections[0] if t < seconds / 2 else song.sections[1]


def _note(section: Section, beat: int) -> int:
    steps = _MINOR if section.minor else _MAJOR
    return section.root_midi + steps[beat % len(steps)]


def song_audio(song: Song, *, seconds: float, sample_rate: int) -> npt.NDArray[np.float32]:
    """Render a song: a note on every beat (arpeggio of the key) plus a soft kick.

    Returns:
        float32, shape (round(seconds * sample_rate),), range [-1, 1], mono.
    """
    n = round(seconds * sample_rate)
    out = np.zeros(n, dtype=np.float64)
    half = seconds / 2
    for index, section in enumerate(song.sections):
        begin, end = index * half, (index + 1) * half
        period = 60.0 / section.bpm
        for beat, onset in enumerate(np.arange(begin, end, period)):
            a, b = round(onset * sample_rate), min(n, round(min(onset + period, end) * sample_rate))
            tau = np.arange(b - a) / sample_rate
            freq = 440.0 * 2 ** ((_note(section, beat) - 69) / 12)
            tone = sum(
                np.sin(2 * np.pi * k * freq * tau) / k for k in range(1, section.harmonics + 1)
            )
            kick = 0.6 * np.sin(2 * np.pi * 55.0 * tau) * np.exp(-tau / 0.06)
            out[a:b] += 0.5 * tone * np.exp(-tau / 0.35) + kick
    peak = float(np.max(np.abs(out))) or 1.0
    return (0.9 * out / peak).astype(np.float32)


def song_frames(
    song: Song, config: CorpusConfig, *, letterboxed: bool = False
) -> Iterator[npt.NDArray[np.uint8]]:
    """Yield the picture of a song, frame by frame.

    Yields:
        uint8, shape (height, width, 3), RGB.
    """
    width, height = config.size
    box_h = (width * 9 // 16) // 2 * 2 if letterboxed else height
    top = (height - box_h) // 2 // 2 * 2
    y, x = np.mgrid[0:box_h, 0:width].astype(np.float32) / width
    for i in range(round(config.seconds * config.fps)):
        t = i / config.fps
        section = _section_at(song, t, config.seconds)
        begin = 0.0 if section is song.sections[0] else config.seconds / 2
        period = 60.0 / section.bpm
        beat, since = divmod(t - begin, period)
        hue = (_note(section, int(beat)) % 12) / 12
        flash = np.exp(-since / 0.15)
        along = x + y if section.minor else x
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (1.5 * section.harmonics * along - t / period))
        value = (0.35 + 0.65 * flash) * (0.55 + 0.45 * stripes)
        colour = np.array(colorsys.hsv_to_rgb(hue, 0.85, 1.0), dtype=np.float32)
        picture = (255 * value[..., None] * colour).astype(np.uint8)
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[top : top + box_h] = picture
        yield frame
