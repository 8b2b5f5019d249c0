"""``svm extract`` against a naive per-video loop, and its frame pipeline against a plain decode.

    .venv/bin/python benchmarks/extract.py [--clips 12] [--seconds 20] [--extractor NAME]

On generated 360p clips (30 fps, H.264 with a keyframe every 2 s, letterboxed so the crop is
real) it prints, in one run:

* ``svm extract`` (all cores for decode workers, batches of 64 frames mixing videos): frames/s
  and videos/s end to end, from the preprocessed dataset to committed shards;
* a naive loop as the peers write it: one video at a time, PyAV decodes every frame to RGB, one
  frame per second is kept, resized, and the video's frames go through the same model as one
  batch;
* the frame pipeline alone (ffmpeg crop + 1 fps + scale to RGB, one thread) against one plain
  full decode of the same files (``ffmpeg -threads 1 -i F -an -f null -``).

Targets (issue): extract >= 3x the naive loop on 2 CPU cores; frame pipeline <= 1.2x the decode.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import torch

from svm_toolkit import ffmpeg
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.decode import FramePlan, read_video_frames
from svm_toolkit.extract.images import resize_center_crop
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.extract.runner import plan_jobs, run_extract
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter
from svm_toolkit.preprocess import PreprocessConfig, run_preprocess
from svm_toolkit.schema import COL, ledger_schema, with_provenance
from svm_toolkit.testing import MediaSpec, make_media


def make_dataset(root: Path, clips: int, seconds: float) -> list[Path]:
    """A dataset of generated clips, downloaded and preprocessed."""
    layout = DatasetLayout(root)
    paths, rows = [], []
    for i in range(clips):
        spec = MediaSpec(
            seconds=seconds, size=(640, 360), content=(640, 270), fps=30, gop=60, audio="noise"
        )
        path = make_media(layout.media_path(f"clip{i:03d}", ".mp4"), spec)
        paths.append(path)
        rows.append(
            {
                COL.sample_id: f"clip{i:03d}", COL.stage: "download", COL.status: "ok",
                COL.attempts: 1, COL.started_at: datetime.now(UTC), COL.seconds: 0.0,
                COL.media_path: path.relative_to(root).as_posix(),
            }
        )  # fmt: skip
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(layout.ledger_dir, "download", schema) as writer:
        writer.write(rows)
    run_preprocess(root, PreprocessConfig(workers=os.cpu_count() or 1))
    return paths


def naive(paths: list[Path], name: str) -> int:
    """One video at a time: decode every frame, keep 1 fps, one model batch per video."""
    extractor = get_extractor(name)()
    extractor.load("cpu")
    contract = extractor.contract
    frames_done = 0
    for path in paths:
        kept = []
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            next_t = 0.0
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")  # every frame converted, as peers do
                if frame.time is not None and frame.time + 1e-6 >= next_t:
                    kept.append(rgb)
                    next_t += 1.0
        units = resize_center_crop(
            np.stack(kept), contract.resize or 256, contract.image_size or 224
        )
        with torch.inference_mode():
            extractor.embed(torch.from_numpy(units))
        frames_done += len(kept)
    return frames_done


def plain_decode(path: Path) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each clip, s")
    parser.add_argument("--extractor", default="efficientnet_lite0")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores")
    print(f"clips: {args.clips} x {args.seconds:g} s, 640x360 (270 px of picture), 30 fps\n")
    with tempfile.TemporaryDirectory(prefix="svm-bench-extract-") as scratch:
        root = Path(scratch)
        paths = make_dataset(root, args.clips, args.seconds)
        jobs, _, _ = plan_jobs(DatasetLayout(root), (args.extractor,), ())

        started = time.perf_counter()
        frames = naive(paths, args.extractor)
        naive_s = time.perf_counter() - started

        torch.set_num_threads(cores)
        started = time.perf_counter()
        summary = run_extract(root, ExtractConfig(extractors=(args.extractor,), device="cpu"))
        ours_s = time.perf_counter() - started
        steps = summary.steps.get(args.extractor, 0)

        print(f"{'':34} {'frames/s':>9} {'videos/s':>9} {'s':>7}")
        print(f"{'naive loop (one video per batch)':34} {frames / naive_s:9.1f} "
              f"{len(paths) / naive_s:9.2f} {naive_s:7.1f}")  # fmt: skip
        print(f"{'svm extract':34} {steps / ours_s:9.1f} {len(paths) / ours_s:9.2f} {ours_s:7.1f}")
        print(f"speed-up: {naive_s / ours_s:.1f}x (target >= 3x)\n")

        contract = get_extractor(args.extractor).contract
        short = contract.resize or contract.image_size or 224
        started = time.perf_counter()
        for job in jobs:
            read_video_frames(root / job.media_path, FramePlan(1.0, short, job.crop, job.size))
        pipeline_s = time.perf_counter() - started
        started = time.perf_counter()
        for path in paths:
            plain_decode(path)
        decode_s = time.perf_counter() - started
        print(f"frame pipeline (crop + 1 fps + scale, 1 thread): {pipeline_s:.2f} s")
        print(f"plain full decode (ffmpeg -threads 1 -f null):   {decode_s:.2f} s")
        print(f"ratio: {pipeline_s / decode_s:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
