"""Preprocessing cost per video-hour against one plain full decode of the same files.

    .venv/bin/python benchmarks/preprocess.py [--seconds 60] [--clips 3]

For generated 360p and 720p clips (30 fps, H.264 with a keyframe every 2 s as platforms encode,
AAC audio; x264 ultrafast, and at 360p also x264 medium: see :data:`CLIPS`) it times, on one
pinned core, the best of ``--repeat`` runs per clip:

* ``svm preprocess`` per video: probe + keyframes + crop + the picture track (one pass over the
  reference frames: a perceptual hash and the motion and darkness scores for every 0.5 s) +
  16 kHz audio + loudness + Silero speech ratio + Chromaprint + the ``imagebind`` and
  ``vggish`` Mel recipes (in-process, one worker), with its defaults ("default") and without
  the speech filter ("no speech": the issue's probe + crop + audio + mel + fingerprints);
* the baseline: ``ffmpeg -threads 1 -i F -an -f null -``, one full decode of every video frame.

Issue target: preprocessing <= 25% of the full decode. Then the picture track alone against the
full decode, per kind of clip, and the time of each step on one 360p clip.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from svm_toolkit import ffmpeg
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess.audio import load_audio
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.crop import detect_crop, read_frames
from svm_toolkit.preprocess.fingerprint import chromaprint, picture_track
from svm_toolkit.preprocess.sample import PreprocessJob, Preprocessor
from svm_toolkit.probe import probe_media
from svm_toolkit.testing import MediaSpec, make_media

#: Clip kinds: frame size, and the x264 options of a re-encode (``None``: ``make_media``'s own
#: x264 ultrafast, without B-frames or deblocking: every frame is a reference frame, the worst
#: case for the picture track; ``medium`` CRF 23 has B-frames and deblocking, as platforms'
#: H.264 does).
CLIPS: dict[str, tuple[tuple[int, int], tuple[str, ...] | None]] = {
    "360p": ((640, 360), None),
    "720p": ((1280, 720), None),
    "360p medium": ((640, 360), ("-preset", "medium", "-crf", "23")),
}


def full_decode(path: Path) -> None:
    subprocess.run(
        [
            ffmpeg.require(),
            "-v",
            "error",
            "-threads",
            "1",
            "-i",
            str(path),
            "-an",
            "-f",
            "null",
            "-",
        ],
        check=True,
    )


def reencode(path: Path, x264: tuple[str, ...]) -> Path:
    """``path`` re-encoded with x264 and ``x264``'s options (a keyframe every 2 s), audio copied."""
    target = path.with_name(f"{path.stem}_x264.mp4")
    ffmpeg.run(["-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-c:v", "libx264",
                *x264, "-g", "60", "-c:a", "copy", str(target)])  # fmt: skip
    return target


def check(preprocessor: Preprocessor, path: Path) -> None:
    result = preprocessor(PreprocessJob(path.stem, path.name))
    assert result.crop is not None and result.status.startswith(("ok", "filtered"))


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """Shortest of ``repeat`` runs, seconds (the least disturbed by other work on the machine)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def breakdown(preprocessor: Preprocessor, path: Path, repeat: int) -> dict[str, float]:
    """Seconds of each step of ``Preprocessor`` on one clip, run alone (best of ``repeat``)."""
    config = preprocessor.config
    audio = load_audio(path)
    crop = detect_crop(read_frames(path, config.frames).luma)
    steps: dict[str, Callable[[], object]] = {
        "probe": functools.partial(probe_media, path),
        "keyframes + crop": lambda: detect_crop(read_frames(path, config.frames).luma),
        "picture track": functools.partial(picture_track, path, crop),
        "audio decode to 16 kHz": functools.partial(load_audio, path),
        "speech ratio (Silero)": functools.partial(preprocessor.speech.speech_ratio, audio),
        "Chromaprint": functools.partial(chromaprint, audio, max_seconds=config.fingerprint_s),
    }
    for recipe in preprocessor.recipes:
        steps[f"Mel {recipe.name}"] = functools.partial(recipe.compute, audio)
    return {name: best_of(repeat, run) for name, run in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each clip, s")
    parser.add_argument("--clips", type=int, default=3, help="clips per kind")
    parser.add_argument("--repeat", type=int, default=3, help="runs per clip; the best counts")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # one core, for us and the ffmpeg we start
    torch.set_num_threads(1)
    threadpool_limits(1)  # as each preprocess worker does
    print(
        f"machine: {platform.processor() or platform.machine()}, 1 pinned core of {os.cpu_count()}"
    )
    print(f"clips: {args.clips} x {args.seconds:g} s per kind, 30 fps, keyframe every 2 s\n")
    with tempfile.TemporaryDirectory(prefix="svm-bench-pre-") as scratch:
        root = Path(scratch)
        config = PreprocessConfig(mel=("imagebind", "vggish"), workers=1)
        no_speech = dataclasses.replace(
            config, filters=dataclasses.replace(config.filters, max_speech_ratio=None)
        )
        variants = {
            "default": Preprocessor(DatasetLayout(root), config),
            "no speech": Preprocessor(DatasetLayout(root), no_speech),
        }
        warm = make_media(root / "warm.mp4", MediaSpec(seconds=4, size=(320, 240)))
        for preprocessor in variants.values():
            preprocessor(PreprocessJob("warm", warm.name))  # model load, imports
        tracks: dict[str, tuple[float, float]] = {}
        print(f"{'':22} {'video h':>8} {'preprocess s/h':>15} {'full decode s/h':>16} {'ratio':>7}")
        for label, (size, x264) in CLIPS.items():
            paths = []
            for i in range(args.clips):
                spec = MediaSpec(
                    seconds=args.seconds, size=size, content=(size[0], size[1] * 3 // 4 // 2 * 2),
                    fps=30, gop=60, audio="noise",
                )  # fmt: skip
                path = make_media(root / f"{label.replace(' ', '_')}_{i}.mp4", spec)
                if x264 is not None:
                    path = reencode(path, x264)
                paths.append(path)
            hours = args.clips * args.seconds / 3600
            decode = sum(best_of(args.repeat, functools.partial(full_decode, p)) for p in paths)
            for name, preprocessor in variants.items():
                pre = sum(
                    best_of(args.repeat, functools.partial(check, preprocessor, p)) for p in paths
                )
                print(
                    f"{label + ' ' + name:22} {hours:8.3f} {pre / hours:15.1f} "
                    f"{decode / hours:16.1f} {pre / decode:7.1%}"
                )
            track = 0.0
            for p in paths:
                crop = detect_crop(read_frames(p).luma)
                track += best_of(args.repeat, functools.partial(picture_track, p, crop))
            tracks[label] = (track / hours, decode / hours)
            if label == "360p":
                steps = breakdown(variants["default"], paths[0], args.repeat)
        print("\ntarget: preprocess <= 25% of the full decode")
        print(
            "\nthe picture track alone (reference frames decoded, hashes, motion), s per video-h:"
        )
        for label, (track, decode) in tracks.items():
            line = f"{track:7.1f} against a full decode of {decode:7.1f} ({track / decode:.1%})"
            print(f"  {label + ':':12} {line}")
        print(f"\nwhere the time goes, one {args.seconds:g} s 360p clip (s per video-hour):")
        for step, seconds in steps.items():
            print(f"  {step:28} {seconds * 3600 / args.seconds:6.1f}")


if __name__ == "__main__":
    main()
