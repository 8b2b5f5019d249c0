"""Procedural videos with planted copies: the corpus of the leak-detection tests and benchmark.

The pictures are not test patterns: each video is a sequence of scenes, each drawn by one of
ffmpeg's generators with a camera that moves (a zoom into a Mandelbrot set, a pan over a
Game-of-Life world, a cellular automaton scrolling by, drifting gradients), with random
parameters, colours and blur, cut together; the soundtracks are the
random melodies (a tempo, a scale and a timbre per video, a random note on every beat).

:func:`make_copies` writes two originals (3 minutes, and one minute letterboxed) and one planted
copy of each kind, each made with real ffmpeg (:data:`COPY_KINDS`). :func:`make_distinct`
writes many short videos of the same generator families with other seeds and parameters, none a
copy of another. Everything is deterministic in the seed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from svm_toolkit import ffmpeg
from svm_toolkit.testing.speech import write_wav

SAMPLE_RATE: Final = 22_050
_CENTRES: Final = (
    (-0.743643887, 0.131825904),
    (-0.1011, 0.9563),
    (-1.25066, 0.02012),
    (-0.7453, 0.1127),
    (0.2549, 0.0005),
    (-0.235125, 0.827215),
    (-1.7687, 0.0017),
    (0.3602, -0.6413),
)


@dataclass(frozen=True, slots=True)
class PlantedCopy:
    """A copy of an original and how it must be linked.

    Attributes:
        kind: what was done to it (a key of :data:`COPY_KINDS`).
        path: the copy.
        original: the original's path.
        link: the link kind that must find it: ``picture`` or ``audio``.
        offset_s: where the copy starts in the original, seconds (its ``offset_s`` is minus it).
    """

    kind: str
    path: Path
    original: Path
    link: str
    offset_s: float = 0.0


#: Copy kinds and what they are.
COPY_KINDS: Final = {
    "half": "re-encoded at 1/2 scale, H.264 at 150 kb/s",
    "quarter": "re-encoded at 1/4 scale, VP9 in WebM at 60 kb/s, Opus audio",
    "letterbox_added": "black bars added (4:3 frame), H.264",
    "letterbox_removed": "the bars of a letterboxed original cropped away, H.264",
    "cut_30s": "30 s cut from the middle of the 3-minute original",
    "fps_half": "frame rate halved (24 -> 12 fps)",
    "new_soundtrack": "the whole picture under another song",
    "soundtrack_only": "a minute of the original's soundtrack under another picture",
    "cut_new_soundtrack": "30 s cut under another song",
}


def scene(rng: np.random.Generator, size: tuple[int, int], fps: int, seconds: float) -> str:
    """One random scene as an ffmpeg filter chain (a generator, camera motion, colour, blur)."""
    w, h = size
    n = round(seconds * fps)
    family = int(rng.integers(4))
    if family == 0:
        x, y = _CENTRES[int(rng.integers(len(_CENTRES)))]
        x, y = x + rng.normal(0, 2e-4), y + rng.normal(0, 2e-4)
        start = float(rng.uniform(0.3, 2.5))
        chain = (
            f"mandelbrot=s={w}x{h}:r={fps}:maxiter=300:start_x={x:.9f}:start_y={y:.9f}:"
            f"start_scale={start:.4f}:end_scale={start / rng.uniform(4, 40):.6f}:end_pts={n}"
        )
    elif family == 1:  # colours given: ffmpeg 5.1 draws them at random whatever the seed
        count = int(rng.integers(3, 8))
        colours = ":".join(
            f"c{i}=#" + "".join(f"{int(v):02x}" for v in rng.integers(0, 256, 3))
            for i in range(count)
        )
        chain = (
            f"gradients=s={w}x{h}:r={fps}:seed={int(rng.integers(1 << 30))}:"
            f"n={count}:{colours}:speed={rng.uniform(0.01, 0.05):.4f}"
        )
    elif family == 2:  # a few generations a second, as a slow time-lapse
        cell = int(rng.choice([3, 4, 6]))
        colour = "".join(f"{int(v):02x}" for v in rng.integers(64, 256, 3))
        dead = "".join(f"{int(v):02x}" for v in rng.integers(0, 64, 3))
        chain = (
            f"life=s={w // cell}x{h // cell}:r={int(rng.integers(2, 6))}:"
            f"seed={int(rng.integers(1 << 30))}:ratio={rng.uniform(0.1, 0.5):.3f}:"
            f"mold={int(rng.integers(0, 40))}:life_color=#{colour}:death_color=#{dead}:"
            f"mold_color=#{dead[::-1]},scale={w}:{h}:flags=bicubic,fps={fps}"
        )
    else:  # a pattern drifting up at a few rows a second
        rule = int(rng.choice([18, 30, 45, 73, 90, 105, 110, 150, 169, 225]))
        cell = int(rng.choice([2, 3, 4]))
        chain = (
            f"cellauto=s={w // cell}x{h // cell}:r={int(rng.integers(3, 10))}:rule={rule}:"
            f"seed={int(rng.integers(1 << 30))}:random_fill_ratio={rng.uniform(0.2, 0.8):.3f},"
            f"scale={w}:{h}:flags=bicubic,fps={fps}"
        )
    chain += f",format=yuv420p,hue=h={rng.uniform(0, 360):.1f}:s={rng.uniform(0.6, 1.6):.2f}"
    if rng.random() < 0.7:  # the camera pans
        chain += f",scroll=h={rng.uniform(-0.006, 0.006):.5f}:v={rng.uniform(-0.004, 0.004):.5f}"
    chain += f",gblur=sigma={rng.uniform(0.1, 1.2):.2f}"
    return f"{chain},trim=end_frame={n},setpts=PTS-STARTPTS,setsar=1"


def render(
    path: Path,
    scenes: list[str],
    audio: Path | None,
    *,
    bars: tuple[int, int] | None = None,
    extra: tuple[str, ...] = (),
) -> Path:
    """Encode the scenes cut together (H.264 CRF 23, a keyframe every 2 s) with ``audio``.

    Args:
        path: the output.
        scenes: filter chains (:func:`scene`).
        audio: the soundtrack, or ``None`` for none.
        bars: pad the picture to this frame (width, height), centred, in black.
        extra: more output arguments (e.g. segmenting).
    """
    labels = "".join(f"[s{i}]" for i in range(len(scenes)))
    graph = ";".join(f"{chain}[s{i}]" for i, chain in enumerate(scenes))
    graph += f";{labels}concat=n={len(scenes)}:v=1:a=0"
    if bars is not None:
        graph += f",pad={bars[0]}:{bars[1]}:(ow-iw)/2:(oh-ih)/2:black"
    graph += "[v]"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as script:
        script.write(graph)
    try:
        args = ["-hide_banner", "-loglevel", "error", "-y", "-filter_complex_script", script.name]
        if audio is not None:
            args += ["-i", str(audio)]
        args += ["-map", "[v]"] + (["-map", "0:a", "-c:a", "aac", "-b:a", "96k"] if audio else [])
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "48",
                 "-shortest", *extra, str(path)]  # fmt: skip
        ffmpeg.run(args)
    finally:
        Path(script.name).unlink(missing_ok=True)
    return path


def _encode(source: Path, target: Path, *args: str) -> Path:
    ffmpeg.run(["-hide_banner", "-loglevel", "error", "-y", "-i", str(source), *args,
                str(target)])  # fmt: skip
    return target


def melody(rng: np.random.Generator, seconds: float) -> npt.NDArray[np.float32]:
    """A random tune: a tempo, a scale and a timbre, a random note of the scale on every beat.

    Returns:
        Mono float32 audio at :data:`SAMPLE_RATE`, in [-1, 1].
    """
    beat = 60.0 / rng.uniform(70, 160) / int(rng.choice([1, 2]))
    root = int(rng.integers(45, 64))
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.5 else [0, 2, 3, 5, 7, 8, 10])
    harmonics = rng.uniform(0.1, 1.0, int(rng.integers(1, 6)))
    count = int(np.ceil(seconds / beat))
    notes = root + scale[rng.integers(0, 7, count)] + 12 * rng.integers(0, 2, count)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    which = np.minimum((t / beat).astype(int), count - 1)
    frequency = 440.0 * 2.0 ** ((notes[which] - 69) / 12)
    since = t - which * beat
    phase = 2 * np.pi * frequency * since
    tone = np.zeros(len(t))
    for k, weight in enumerate(harmonics.tolist()):
        tone += weight * np.sin((k + 1) * phase)
    envelope = np.exp(-since / (0.6 * beat))
    audio = tone * envelope / (harmonics.sum() + 1e-9) + 0.01 * rng.standard_normal(len(t))
    out: npt.NDArray[np.float32] = (0.5 * audio).astype(np.float32)
    return out


def _songs(directory: Path, count: int, seconds: float, rng: np.random.Generator) -> list[Path]:
    """``count`` different tunes as WAV files of ``seconds``."""
    return [
        write_wav(directory / f"song{i}.wav", melody(rng, seconds), SAMPLE_RATE)
        for i in range(count)
    ]


def make_copies(
    directory: Path, *, seed: int = 22, size: tuple[int, int] = (384, 216)
) -> tuple[list[Path], list[PlantedCopy]]:
    """Write the originals and one planted copy of each of :data:`COPY_KINDS`.

    Returns:
        ``(originals, copies)``: the two originals (a 3-minute video, a 1-minute letterboxed
        one) and the copies.
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    fps = 24
    songs = _songs(directory, 4, 180.0, rng)
    original = render(
        directory / "original.mp4", [scene(rng, size, fps, 15.0) for _ in range(12)], songs[0]
    )
    content = (w, h * 3 // 4 // 2 * 2)
    boxed = render(
        directory / "letterboxed.mp4",
        [scene(rng, content, fps, 12.0) for _ in range(5)],
        songs[2],
        bars=size,
    )
    other = render(directory / "other_picture.mp4", [scene(rng, size, fps, 12.0) for _ in range(5)],
                   None)  # fmt: skip
    x264 = ("-c:v", "libx264", "-preset", "veryfast")
    copies = [
        PlantedCopy("half", _encode(original, directory / "half.mp4", "-vf", f"scale={w // 2}:-2",
                    *x264, "-b:v", "150k", "-c:a", "aac", "-b:a", "64k"), original, "picture"),
        PlantedCopy("quarter", _encode(original, directory / "quarter.webm", "-vf",
                    f"scale={w // 4}:-2", "-c:v", "libvpx-vp9", "-deadline", "realtime",
                    "-cpu-used", "8", "-b:v", "60k", "-c:a", "libopus", "-b:a", "48k"),
                    original, "picture"),
        PlantedCopy("letterbox_added", _encode(original, directory / "letterbox_added.mp4",
                    "-vf", f"pad={w}:{w * 3 // 4}:0:(oh-ih)/2:black", *x264, "-crf", "28",
                    "-c:a", "copy"), original, "picture"),
        PlantedCopy("letterbox_removed", _encode(boxed, directory / "letterbox_removed.mp4",
                    "-vf", f"crop={content[0]}:{content[1]}", *x264, "-crf", "28", "-c:a", "copy"),
                    boxed, "picture"),
        PlantedCopy("cut_30s", _encode(original, directory / "cut_30s.mp4", "-ss", "75.3", "-t",
                    "30", *x264, "-crf", "26", "-c:a", "aac"), original, "picture", 75.3),
        PlantedCopy("fps_half", _encode(original, directory / "fps_half.mp4", "-vf", "fps=12",
                    *x264, "-crf", "26", "-c:a", "copy"), original, "picture"),
    ]  # fmt: skip
    new_sound = directory / "new_soundtrack.mp4"
    ffmpeg.run(["-hide_banner", "-loglevel", "error", "-y", "-i", str(original), "-i",
                str(songs[1]), "-map", "0:v", "-map", "1:a", *x264, "-crf", "26", "-c:a", "aac",
                "-shortest", str(new_sound)])  # fmt: skip
    only_sound = directory / "soundtrack_only.mp4"
    ffmpeg.run(["-hide_banner", "-loglevel", "error", "-y", "-i", str(other), "-ss", "40",
                "-i", str(original), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                "-shortest", str(only_sound)])  # fmt: skip
    cut_sound = directory / "cut_new_soundtrack.mp4"
    ffmpeg.run(["-hide_banner", "-loglevel", "error", "-y", "-ss", "120.7", "-t", "30", "-i",
                str(original), "-i", str(songs[3]), "-map", "0:v", "-map", "1:a", *x264,
                "-crf", "26", "-c:a", "aac", "-shortest", str(cut_sound)])  # fmt: skip
    copies += [
        PlantedCopy("new_soundtrack", new_sound, original, "picture"),
        PlantedCopy("soundtrack_only", only_sound, original, "audio", 40.0),
        PlantedCopy("cut_new_soundtrack", cut_sound, original, "picture", 120.7),
    ]
    return [original, boxed], copies


def make_distinct(
    directory: Path,
    count: int = 200,
    *,
    seconds: float = 6.0,
    seed: int = 2026,
    size: tuple[int, int] = (192, 108),
    fps: int = 12,
) -> list[Path]:
    """Write ``count`` short videos, two scenes each, none a copy of another, in one encode.

    Returns:
        The videos, ``distinct000.mp4``...
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scenes = [scene(rng, size, fps, seconds / 2) for _ in range(2 * count)]
    # one soundtrack, cut with the picture: a tune per video
    audio = np.concatenate([melody(rng, seconds) for _ in range(count)])
    track = write_wav(directory / "songs.wav", audio, SAMPLE_RATE)
    render(
        directory / "distinct%03d.mp4",
        scenes,
        track,
        extra=("-force_key_frames", f"expr:gte(t,n_forced*{seconds:g})", "-f", "segment",
               "-segment_time", f"{seconds:g}", "-reset_timestamps", "1"),
    )  # fmt: skip
    track.unlink()
    return [directory / f"distinct{i:03d}.mp4" for i in range(count)]


__all__ = ["COPY_KINDS", "PlantedCopy", "make_copies", "make_distinct", "render", "scene"]
