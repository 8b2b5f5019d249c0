"""``svm extract`` on the local engine against ``--engine ray`` on the same clips: Ray's overhead.

    .venv/bin/python benchmarks/ray_extract.py [--clips 12] [--seconds 20] [--extractor NAME]

On generated 360p clips (those of ``benchmarks/extract.py``) it prints, in one run:

* the local engine: decode processes on every core feeding the model in this process;
* Ray's start-up (``ray.init`` with every core), then ``--engine ray`` twice on fresh copies of
  the dataset: decode tasks on every core streaming into one model actor. The first run pays
  for starting Ray's workers and loading the model in the actor; the second is the steady
  state a long run converges to;
* Ray's overhead: the difference to the local engine, in seconds and per video.

On a CUDA machine (``--device cuda``) the model actor holds one GPU and the same figures give
the end-to-end rate with every CPU feeding that GPU (16 on an H100 box).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from extract import make_dataset  # type: ignore[import-not-found]

from svm_toolkit.engines import EngineConfig
from svm_toolkit.engines.ray_data import import_ray
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.runner import run_extract


def fresh(root: Path, to: Path) -> Path:
    """A copy of the preprocessed dataset without features."""
    return shutil.copytree(root, to, ignore=shutil.ignore_patterns("features", "extract_*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each clip, s")
    parser.add_argument("--extractor", default="efficientnet_lite0")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores")
    print(f"clips: {args.clips} x {args.seconds:g} s, 640x360, 30 fps; {args.extractor} on "
          f"{args.device}, batches of {args.batch_size}\n")  # fmt: skip
    config = ExtractConfig(
        extractors=(args.extractor,), device=args.device, batch_size=args.batch_size
    )
    with tempfile.TemporaryDirectory(prefix="svm-bench-ray-") as scratch:
        base = Path(scratch) / "base"
        make_dataset(base, args.clips, args.seconds)
        results: list[tuple[str, float, int]] = []

        root = fresh(base, Path(scratch) / "local")
        started = time.perf_counter()
        summary = run_extract(root, config)
        results.append(("local engine", time.perf_counter() - started, sum(summary.steps.values())))

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private instance: no tokens
        ray = import_ray()
        started = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - started
        gpus = 1.0 if args.device.startswith("cuda") else 0.0
        engine = EngineConfig("ray", gpus_per_actor=gpus)
        for label in ("ray, first run", "ray, second run"):
            root = fresh(base, Path(scratch) / label.replace(" ", "").replace(",", "-"))
            started = time.perf_counter()
            summary = run_extract(root, dataclasses.replace(config), engine=engine)
            results.append((label, time.perf_counter() - started, sum(summary.steps.values())))
        ray.shutdown()

    print(f"{'':24} {'s':>7} {'frames/s':>9} {'videos/s':>9}")
    for label, seconds, frames in results:
        print(f"{label:24} {seconds:7.1f} {frames / seconds:9.1f} {args.clips / seconds:9.2f}")
    local_s = results[0][1]
    print(f"\nray.init ({cores} CPUs): {init_s:.1f} s (paid once per driver, not per stage)")
    for label, seconds, _ in results[1:]:
        extra = seconds - local_s
        print(f"Ray's overhead, {label}: {extra:+.1f} s ({extra / args.clips:+.2f} s per video, "
              f"{seconds / local_s:.2f}x the local engine's time)")  # fmt: skip


if __name__ == "__main__":
    main()
