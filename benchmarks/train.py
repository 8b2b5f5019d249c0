"""One epoch of ``svm train`` (``tivm``, transformer) against the machine's matmul speed.

    .venv/bin/python benchmarks/train.py [--pairs 10000] [--device cpu|cuda] [--epochs 1]

Generates ``--pairs`` pairs in memory (30 per-second steps each; 2048-d video steps as ResNet-50
gives, 128-d audio steps as VGGish gives) and trains ``tivm`` (transformer encoder, d = 256,
2 layers, 4 heads, InfoNCE, batch 256) through the same ``train()`` the CLI runs: batches cut by
``PairedData.batch``, AdamW, warm-up + cosine, checkpoint after the epoch. It prints, in one run:

* the epoch's wall time, pairs/s, and the time spent cutting batches;
* the FLOPs of one training step (forward + backward, counted by ``FlopCounterMode``), and the
  achieved GFLOP/s = FLOPs per pair x pairs / epoch time;
* the machine's matmul GFLOP/s (fp32 2048 x 2048 on CPU, bf16 8192 x 8192 on CUDA), the best
  of runs before and after the epoch (a shared VM's speed drifts), and the ratio.

Targets (issue): >= 50 % of the matmul GFLOP/s on CPU; <= 2 s per epoch on an H100-class GPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from svm_toolkit.train.bank import FeatureBank
from svm_toolkit.train.config import ModelConfig, TrainConfig
from svm_toolkit.train.data import PairedData
from svm_toolkit.train.losses import build_loss
from svm_toolkit.train.models import build_model
from svm_toolkit.train.trainer import train

STEPS, VIDEO_DIM, AUDIO_DIM = 30, 2048, 128


def generated(pairs: int, seed: int = 0) -> PairedData:
    """``pairs`` training pairs with 30 steps a side, float16 as feature shards hold them."""
    rng = np.random.default_rng(seed)
    ids = tuple(f"pair{i:06d}" for i in range(pairs))
    offsets = np.arange(0, pairs * STEPS + 1, STEPS, dtype=np.int64)
    times = np.tile(np.arange(STEPS, dtype=np.float32), pairs)

    def bank(name: str, dim: int) -> FeatureBank:
        values = np.empty((pairs * STEPS, dim), dtype=np.float16)
        for start in range(0, len(values), 65_536):  # bounded float32 scratch
            chunk = values[start : start + 65_536]
            chunk[:] = rng.standard_normal(chunk.shape, dtype=np.float32)
        return FeatureBank(name, ids, values, offsets, times, 1.0)

    return PairedData(
        sample_ids=ids,
        video=bank("resnet50", VIDEO_DIM),
        audio=bank("vggish", AUDIO_DIM),
        video_rows=np.arange(pairs, dtype=np.int64),
        audio_rows=np.arange(pairs, dtype=np.int64),
        splits=("train",) * pairs,
        music_ids=(None,) * pairs,
        groups=np.arange(pairs, dtype=np.int64),
        dropped={},
    )


def matmul_gflops(device: str) -> float:
    """Best of 10 timed square matmuls: fp32 2048 on CPU, bf16 8192 on CUDA."""
    n, dtype = (8192, torch.bfloat16) if device.startswith("cuda") else (2048, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(11):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def step_flops(config: TrainConfig, device: str) -> float:
    """FLOPs of one forward + backward step at the config's batch size."""
    model = build_model(config.model, video_dim=VIDEO_DIM, audio_dim=AUDIO_DIM).to(device)
    loss_fn = build_loss(config.loss).to(device)
    b = config.batch_size
    video = torch.randn(b, STEPS, VIDEO_DIM, device=device)
    audio = torch.randn(b, STEPS, AUDIO_DIM, device=device)
    mask = torch.ones(b, STEPS, dtype=torch.bool, device=device)
    with FlopCounterMode(display=False) as counter:
        v, a = model(video, mask, audio, mask)
        loss_fn(v, a, torch.arange(b, device=device)).backward()
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    config = TrainConfig(
        audio="vggish",
        video="resnet50",
        model=ModelConfig(
            encoder="transformer", width=256, embed_dim=256, encoder_layers=2, heads=4
        ),
        epochs=args.epochs,
        batch_size=args.batch_size,
        window_s=float(STEPS),
        patience=0,
        device=args.device,
    )
    started = time.perf_counter()
    data = generated(args.pairs)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
    )
    gib = (data.video.values.nbytes + data.audio.values.nbytes) / 2**30
    print(
        f"data: {args.pairs:,} generated pairs x {STEPS} steps, video {VIDEO_DIM}-d, audio "
        f"{AUDIO_DIM}-d, float16 ({gib:.2f} GiB) in {time.perf_counter() - started:.1f} s"
    )
    peak = matmul_gflops(args.device)
    flops = step_flops(config, args.device)
    per_pair = flops / args.batch_size
    rows = np.arange(args.batch_size, dtype=np.int64)
    cut = time.perf_counter()
    for _ in range(5):
        data.batch(rows, np.zeros(args.batch_size), float(STEPS))
    cut_s = (time.perf_counter() - cut) / 5
    steps = args.pairs // args.batch_size

    with tempfile.TemporaryDirectory(prefix="svm-bench-train-") as tmp:
        epochs: list[dict[str, float]] = []
        train(Path(tmp), config, Path(tmp) / "run", data=data, on_epoch=epochs.append)
    peak = max(peak, matmul_gflops(args.device))  # before and after: the better is the bar
    for row in epochs:
        seconds = row["seconds"]
        achieved = per_pair * steps * args.batch_size / seconds / 1e9
        print(
            f"epoch {int(row['epoch'])}: {seconds:.1f} s for {steps} steps of {args.batch_size} "
            f"({row['samples_per_s']:,.0f} pairs/s), loss {row['train_loss']:.3f}"
        )
        print(
            f"  model: {per_pair / 1e9:.3f} GFLOP per pair (forward + backward); achieved "
            f"{achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f} % of the matmul {peak:.1f} "
            f"GFLOP/s measured in this run"
        )
        print(
            f"  batch cutting (PairedData.batch): {1000 * cut_s:.1f} ms a step, "
            f"{100 * cut_s * steps / seconds:.1f} % of the epoch"
        )


if __name__ == "__main__":
    main()
