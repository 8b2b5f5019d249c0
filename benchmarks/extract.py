"""``svm extract`` against a naive per-video loop, and its frame pipeline against a plain decode.

    .venv/bin/python benchmarks/extract.py [--clips 12] [--seconds 20] [--extractor NAME]

On generated 360p clips (30 fps, H.264 with a keyframe every 2 s, letterboxed so the crop is
real) it prints, in one run:

* ``svm extract`` (all cores for decode workers, batches of 64 frames mixing videos): frames/s
  and videos/s end to end, from the preprocessed dataset to committed shards;
* a naive loop as the peers write it: one video at a time, PyAV decodes every frame to RGB, one
  frame per second is kept, resized, and the video's frames go through the same network (eager,
  channels-first, fp32) as one batch; then the same loop with ``svm extract``'s model runner (a
  frozen channels-last graph on the CPU), which splits the speed-up into model and pipeline;
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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import torch

from svm_toolkit import ffmpeg
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.decode import FramePlan, read_video_frames
from svm_toolkit.extract.images import normalize, resize_center_crop
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


def eager_model(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The extractor's network as peers run it: eager, channels-first, fp32."""
    extractor = get_extractor(name)()
    model = extractor.build()
    assert extractor.weights is not None
    extractor.load_state(model, torch.load(extractor.weights, weights_only=True))
    model.eval()
    contract = extractor.contract
    assert contract.mean is not None and contract.std is not None
    mean, std = contract.mean, contract.std
    return lambda units: model(normalize(units, mean, std))


def fast_model(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The extractor as ``svm extract`` runs it (on the CPU: a frozen channels-last graph)."""
    extractor = get_extractor(name)()
    extractor.load("cpu")
    return extractor.embed


def naive(paths: list[Path], name: str, model: Callable[[torch.Tensor], torch.Tensor]) -> int:
    """One video at a time: decode every frame, keep 1 fps, one model batch per video."""
    contract = get_extractor(name).contract
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
            model(torch.from_numpy(units))
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

        torch.set_num_threads(cores)
        naive_s = {}
        for label, build in (("eager", eager_model), ("fast", fast_model)):
            started = time.perf_counter()  # loading the model counts, as it does for svm extract
            frames = naive(paths, args.extractor, build(args.extractor))
            naive_s[label] = time.perf_counter() - started

        started = time.perf_counter()
        summary = run_extract(root, ExtractConfig(extractors=(args.extractor,), device="cpu"))
        ours_s = time.perf_counter() - started
        steps = summary.steps.get(args.extractor, 0)

        rows = [
            ("naive loop, eager model (peers)", frames, naive_s["eager"]),
            ("naive loop, svm's model runner", frames, naive_s["fast"]),
            ("svm extract", steps, ours_s),
        ]
        print(f"{'':34} {'frames/s':>9} {'videos/s':>9} {'s':>7}")
        for label, count, seconds in rows:
            print(f"{label:34} {count / seconds:9.1f} {len(paths) / seconds:9.2f} {seconds:7.1f}")
        print(f"speed-up over the peers' loop: {naive_s['eager'] / ours_s:.1f}x (target >= 3x)")
        print(f"  of which the model runner:   {naive_s['eager'] / naive_s['fast']:.1f}x "
              "(the same loop with svm's frozen channels-last model)")  # fmt: skip
        print(f"  and the pipeline:            {naive_s['fast'] / ours_s:.1f}x\n")

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
