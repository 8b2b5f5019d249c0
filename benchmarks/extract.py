"""``svm extract`` against a naive per-video loop, and its frame pipeline against a plain decode.

    .venv/bin/python benchmarks/extract.py [--clips 12] [--seconds 20] [--extractor NAME]

On generated 360p clips (30 fps, H.264 with a keyframe every 2 s, letterboxed so the crop is
real) it prints, in one run:

* ``svm extract`` with its defaults (all cores for decode workers, batches of 8 frames mixing
  videos on the CPU, ``--precision auto``) and with ``--precision fp32``: frames/s and videos/s
  end to end, from the preprocessed dataset to committed shards, and the cosine between the
  two runs' features;
* a naive loop as the peers write it: one video at a time, PyAV decodes every frame to RGB, one
  frame per second is kept, resized, and the video's frames go through the same network (eager,
  channels-first, fp32) as one batch; then the same loop with ``svm extract``'s model runner (a
  frozen channels-last graph on the CPU, fp32 and, where ``auto`` picks it, bf16), which splits
  the speed-up into model and pipeline;
* the naive loops run in a child process with the caller's environment, each ``svm extract``
  run in a fresh one (starting its decode workers, as the command does) with
  ``OMP_WAIT_POLICY=PASSIVE`` as the ``svm`` executable sets it (OpenMP reads it when torch
  loads); a variable the caller set goes to all;
* the frame pipeline alone (ffmpeg crop + 1 fps + scale to RGB, one thread) against one plain
  full decode of the same files (``ffmpeg -threads 1 -i F -an -f null -``).

Targets (issue): extract >= 3x the naive loop on 2 CPU cores; frame pipeline <= 1.2x the decode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Final

import av
import numpy as np
import pyarrow as pa
import torch

from svm_toolkit import ffmpeg
from svm_toolkit.entry import PROCESS_ENV
from svm_toolkit.extract.batching import embed_batch
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.decode import FramePlan, read_video_frames
from svm_toolkit.extract.images import normalize, resize_center_crop
from svm_toolkit.extract.precision import Precision, resolve_precision
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.extract.runner import plan_jobs, run_extract
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter, read_shards
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


def fast_model(name: str, precision: Precision) -> Callable[[torch.Tensor], torch.Tensor]:
    """The extractor as ``svm extract`` runs it (on the CPU: a frozen channels-last graph)."""
    extractor = get_extractor(name)()
    extractor.load("cpu", precision)
    return lambda units: torch.from_numpy(embed_batch(extractor, units.numpy()))


def extract(root: Path, name: str, precision: Precision) -> tuple[float, int, np.ndarray]:
    """``svm extract`` from scratch: seconds, steps embedded, the (steps, D) features."""
    layout = DatasetLayout(root)
    shutil.rmtree(layout.features_dir(name), ignore_errors=True)
    for ledger in layout.ledger_dir.glob("extract_*"):
        ledger.unlink()
    started = time.perf_counter()
    config = ExtractConfig(extractors=(name,), device="cpu", precision=precision)
    summary = run_extract(root, config)
    seconds = time.perf_counter() - started
    table = read_shards(layout.features_dir(name), "part")
    assert table is not None
    table = table.sort_by(COL.sample_id)
    steps = np.concatenate([np.asarray(e, np.float32) for e in table[COL.embeddings].to_pylist()])
    return seconds, summary.steps.get(name, 0), steps


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


def naive_runs(root: Path, name: str, auto: Precision) -> dict[str, float]:
    """The naive loop with each model, seconds (loading the model counts, as in svm extract)."""
    paths = sorted((root / "media").rglob("*.mp4"))
    runs = {"eager": eager_model, "fp32": partial(fast_model, precision="fp32")}
    if auto == "bf16":
        runs["bf16"] = partial(fast_model, precision="bf16")
    seconds: dict[str, float] = {}
    for label, build in runs.items():
        started = time.perf_counter()
        seconds["frames"] = naive(paths, name, build(name))
        seconds[label] = time.perf_counter() - started
    return seconds


def svm_run(root: Path, name: str, precision: Precision) -> dict[str, float]:
    """``svm extract`` from scratch: seconds and steps; the features go to ``steps_<p>.npy``."""
    seconds, steps, features = extract(root, name, precision)
    np.save(root / f"steps_{precision}.npy", features)
    return {"seconds": seconds, "steps": steps}


PARTS: Final = {"naive": naive_runs, "svm": svm_run}


def in_child(
    part: str, root: Path, name: str, precision: str, env: dict[str, str]
) -> dict[str, float]:
    """Run one part in a fresh process with ``env`` (OpenMP reads it when torch loads).

    The child runs from ``-c``, not this file: multiprocessing re-imports a main *file* in every
    worker, and this one imports torch, which ``svm``'s own entry point does not.
    """
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import extract"
    command = [sys.executable, "-c", f"{code}; extract.main()", "--part", part]
    command += ["--root", str(root), "--extractor", name, "--precision", precision]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each clip, s")
    parser.add_argument("--extractor", default="efficientnet_lite0")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # in a child process
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    auto = resolve_precision("auto", torch.device("cpu"))
    if args.part:
        print(json.dumps(PARTS[args.part](args.root, args.extractor, args.precision)))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores")
    print(f"clips: {args.clips} x {args.seconds:g} s, 640x360 (270 px of picture), 30 fps")
    print(f"--precision auto on this CPU: {auto}\n")
    with tempfile.TemporaryDirectory(prefix="svm-bench-extract-") as scratch:
        root = Path(scratch)
        paths = make_dataset(root, args.clips, args.seconds)
        jobs, _, _ = plan_jobs(DatasetLayout(root), (args.extractor,), ())
        naive_env = dict(os.environ)  # the peers' loop runs in the caller's environment
        svm_env = {**PROCESS_ENV, **os.environ}  # svm extract as the `svm` executable sets it
        precisions: list[Precision] = list(dict.fromkeys(("fp32", auto)))
        naive_s = in_child("naive", root, args.extractor, auto, naive_env)
        ours = {p: in_child("svm", root, args.extractor, p, svm_env) for p in precisions}
        print(f"OMP_WAIT_POLICY: naive loops {naive_env.get('OMP_WAIT_POLICY', '(unset)')}, "
              f"svm extract {svm_env['OMP_WAIT_POLICY']}\n")  # fmt: skip

        frames, steps = int(naive_s["frames"]), int(ours["fp32"]["steps"])
        rows = [
            ("naive loop, eager fp32 (peers)", frames, naive_s["eager"]),
            *((f"naive loop, svm's runner, {p}", frames, naive_s[p]) for p in precisions),
            *((f"svm extract --precision {p}", steps, ours[p]["seconds"]) for p in precisions),
        ]
        print(f"{'':34} {'frames/s':>9} {'videos/s':>9} {'s':>7}")
        for label, count, seconds in rows:
            print(f"{label:34} {count / seconds:9.1f} {len(paths) / seconds:9.2f} {seconds:7.1f}")
        for p in precisions:
            ours_s = ours[p]["seconds"]
            print(f"speed-up over the peers' loop, {p}: {naive_s['eager'] / ours_s:.1f}x "
                  f"(target >= 3x): model runner {naive_s['eager'] / naive_s[p]:.1f}x, "
                  f"pipeline {naive_s[p] / ours_s:.1f}x")  # fmt: skip
        if auto == "bf16":
            a, b = np.load(root / "steps_fp32.npy"), np.load(root / "steps_bf16.npy")
            cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            print(f"bf16 against fp32 features, cosine per step: min {cos.min():.5f}, "
                  f"mean {cos.mean():.5f}")  # fmt: skip
        print()

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
