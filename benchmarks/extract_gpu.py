"""``svm extract`` on a GPU: each model alone, the decode-bound limit, and end to end.

    .venv/bin/python benchmarks/extract_gpu.py [--device cuda] [--clips 128] [--seconds 20]
        [--workers 16] [--batch-size 256] [--extractors resnet50,imagebind_vision]

On generated 360p clips (those of ``benchmarks/extract.py``) it prints, in one run:

* each extractor's model alone (``--precision auto``: bf16 on CUDA): units/s at ``--batch-size``
  on decoded-and-prepared random frames, after two warm-up batches, including the copies to and
  from the device; and its load time;
* the decode-bound limit: ``--workers`` decode processes alone (crop + fps + scale and every
  extractor's ``prepare``, as ``svm extract`` runs them), videos/s and units/s, no model;
* ``svm extract`` end to end with the same workers, videos/s, and its share of the limit, with
  and without the models' load time (measured above) in its wall time.

Target (issue): end to end >= 90 % of the decode-bound limit on an H100-class machine with 16
decode workers. Weights: the real files where they are present, else the real architectures
with random weights saved to a temporary file (speed does not depend on the values). It runs on
the CPU too (``--device cpu``), where the models, not decoding, bound the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from extract import make_dataset  # type: ignore[import-not-found]

from svm_toolkit.entry import PROCESS_ENV
from svm_toolkit.errors import MissingWeightsError
from svm_toolkit.extract.base import Extractor, Media
from svm_toolkit.extract.batching import embed_batch
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.prepare import DecoderSpec, init_worker, prepare
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.extract.runner import plan_jobs, run_extract
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.parallel import bounded_map


def weights_for(name: str, folder: Path) -> Path:
    """The extractor's weights file, else its architecture's random weights saved in ``folder``."""
    extractor = get_extractor(name)()
    try:
        extractor.check_weights()
    except MissingWeightsError:
        path = folder / f"{name}-random.pth"
        torch.save(extractor.build().state_dict(), path)
        print(f"{name}: no weights file, random weights of the real architecture")
        return path
    assert extractor.weights is not None
    return Path(extractor.weights)


def model_alone(
    name: str, weights: Path, device: str, batch: int, batches: int
) -> tuple[float, float]:
    """(load seconds, units/s) of one extractor's model on prepared random frames."""
    started = time.perf_counter()
    extractor: Extractor = get_extractor(name)(weights=weights)
    extractor.load(device, "auto")
    load_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (batch, 256, 455, 3), dtype=np.uint8)
    times = np.arange(batch, dtype=np.float32)
    units = extractor.prepare(Media(frames, times, None, 16_000)).data[:batch]
    for _ in range(2):  # warm-up: kernel selection, allocator
        embed_batch(extractor, units)
    started = time.perf_counter()
    for _ in range(batches):
        embed_batch(extractor, units)  # returns on the CPU: the device has finished
    return load_s, batches * len(units) / (time.perf_counter() - started)


def decode_only(root: Path, names: tuple[str, ...], workers: int) -> tuple[float, int, int]:
    """(seconds, videos, units) of the decode workers alone over every preprocessed video."""
    jobs, _, _ = plan_jobs(DatasetLayout(root), names, ())
    units = 0
    started = time.perf_counter()
    for prepared in bounded_map(
        prepare,
        jobs,
        workers=workers,
        initializer=init_worker,
        initargs=(DecoderSpec(root, names, 1.0, own_process=workers > 1),),
        preload=("svm_toolkit.extract.prepare", "torch"),
    ):
        units += sum(len(u.data) for u in prepared.units.values())
    return time.perf_counter() - started, len(jobs), units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--clips", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each clip, s")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=10, help="timed batches per model")
    parser.add_argument("--extractors", default="resnet50,imagebind_vision")
    args = parser.parse_args()
    if any(name not in os.environ for name in PROCESS_ENV):  # as `svm` sets them, before torch
        os.execve(sys.executable, [sys.executable, *sys.argv], {**PROCESS_ENV, **os.environ})
    names = tuple(n.strip() for n in args.extractors.split(",") if n.strip())
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "none"
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores, GPU {gpu}")  # fmt: skip
    print(f"clips: {args.clips} x {args.seconds:g} s, 640x360, 30 fps; {','.join(names)} on "
          f"{args.device}, batches of {args.batch_size}, {args.workers} decoders")  # fmt: skip
    print()
    with tempfile.TemporaryDirectory(prefix="svm-bench-gpu-") as scratch:
        root = Path(scratch) / "ds"
        weights = {n: weights_for(n, Path(scratch)) for n in names}
        load_s = 0.0
        print(f"{'model alone (--precision auto)':34} {'load s':>7} {'units/s':>9}")
        for name in names:
            loaded, rate = model_alone(
                name, weights[name], args.device, args.batch_size, args.batches
            )
            load_s += loaded
            print(f"{name:34} {loaded:7.1f} {rate:9.1f}")

        make_dataset(root, args.clips, args.seconds)
        decode_s, videos, units = decode_only(root, names, args.workers)
        config = ExtractConfig(
            extractors=names,
            device=args.device,
            batch_size=args.batch_size,
            workers=args.workers,
            weights=tuple((n, str(p)) for n, p in weights.items()),
        )
        started = time.perf_counter()
        run_extract(root, config)
        ours_s = time.perf_counter() - started

        print(f"\n{'':34} {'s':>7} {'videos/s':>9} {'units/s':>9}")
        for label, seconds in (("decode workers alone (limit)", decode_s), ("svm extract", ours_s)):
            print(f"{label:34} {seconds:7.1f} {videos / seconds:9.2f} {units / seconds:9.1f}")
        share, unloaded = decode_s / ours_s, decode_s / (ours_s - load_s)
        print(f"end to end / decode-bound limit: {share:.0%} (target >= 90%); "
              f"without the models' {load_s:.1f} s load: {unloaded:.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
