"""Preprocessing cost per video-hour against one plain full decode of the same files.

    .venv/bin/python benchmarks/preprocess.py [--seconds 60] [--clips 3]

For generated 360p and 720p clips (30 fps, H.264 with a keyframe every 2 s as platforms encode,
AAC audio) it times, on one pinned core:

* ``svm preprocess`` per video: probe + keyframes + crop + picture signals + 16 kHz audio +
  loudness + Silero speech ratio + perceptual hashes + Chromaprint + the ``imagebind`` and
  ``vggish`` Mel recipes (in-process, one worker);
* the baseline: ``ffmpeg -threads 1 -i F -an -f null -``, one full decode of every video frame.

Issue target: preprocessing <= 25% of the full decode.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from svm_toolkit import ffmpeg
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.sample import PreprocessJob, Preprocessor
from svm_toolkit.testing import MediaSpec, make_media

SIZES = {"360p": (640, 360), "720p": (1280, 720)}


def full_decode(path: Path) -> float:
    started = time.perf_counter()
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
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each clip, s")
    parser.add_argument("--clips", type=int, default=3, help="clips per resolution")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # one core, for us and the ffmpeg we start
    torch.set_num_threads(1)
    print(
        f"machine: {platform.processor() or platform.machine()}, 1 pinned core of {os.cpu_count()}"
    )
    print(f"clips: {args.clips} x {args.seconds:g} s per resolution, 30 fps, keyframe every 2 s\n")
    with tempfile.TemporaryDirectory(prefix="svm-bench-pre-") as scratch:
        root = Path(scratch)
        config = PreprocessConfig(mel=("imagebind", "vggish"), workers=1)
        preprocessor = Preprocessor(DatasetLayout(root), config)
        warm = make_media(root / "warm.mp4", MediaSpec(seconds=4, size=(320, 240)))
        preprocessor(PreprocessJob("warm", warm.name))  # model load, imports
        print(f"{'':6} {'video h':>8} {'preprocess s/h':>15} {'full decode s/h':>16} {'ratio':>7}")
        for label, size in SIZES.items():
            paths = []
            for i in range(args.clips):
                spec = MediaSpec(
                    seconds=args.seconds, size=size, content=(size[0], size[1] * 3 // 4 // 2 * 2),
                    fps=30, gop=60, audio="noise",
                )  # fmt: skip
                paths.append(make_media(root / f"{label}_{i}.mp4", spec))
            pre = decode = 0.0
            for path in paths:
                started = time.perf_counter()
                result = preprocessor(PreprocessJob(path.stem, path.name))
                pre += time.perf_counter() - started
                assert result.crop is not None and result.status.startswith(("ok", "filtered"))
                decode += full_decode(path)
            hours = args.clips * args.seconds / 3600
            print(
                f"{label:6} {hours:8.3f} {pre / hours:15.1f} {decode / hours:16.1f} "
                f"{pre / decode:7.1%}"
            )
    print("\ntarget: preprocess <= 25% of the full decode")


if __name__ == "__main__":
    main()
