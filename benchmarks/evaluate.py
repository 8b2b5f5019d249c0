"""Exact Recall@K (``svm evaluate``) on 100,000 x 100,000 pairs against the bare matmul.

    .venv/bin/python benchmarks/evaluate.py [--pairs 100000] [--dim 1024] [--device cpu|cuda]

Generates ``--pairs`` L2-normalised video and music embeddings (``--dim``-d, float32; each
music vector is its video vector plus noise, so ranks are spread). Each measured phase runs
in a fresh process, so its peak memory can be read on its own. It prints, in one run:

* the bare matmul: every score ``V @ M.T`` in the same row blocks the evaluator uses (no
  ranking), the time of the GEMM alone;
* ``svm evaluate``'s ranking for one direction (video → music): the same blocks plus the best
  positive's score, the counting and the ranks (``retrieval_ranks``), its time and the ratio;
* the metrics step (R@K, MedR, MnR, MRR, chance) from the ranks;
* each phase's peak resident memory above the inputs it was given (bytes the phase added).

Targets (issue): the evaluator within 1.3x the bare matmul, and <= 2 GB extra peak memory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from svm_toolkit.evaluate.metrics import rank_metrics
from svm_toolkit.evaluate.ranks import DEFAULT_CHUNK_BYTES, chunk_rows, retrieval_ranks


def embeddings(pairs: int, dim: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit video vectors; music = 0.08 video + unit noise, renormalised (cosine ~0.08 to the
    partner against ~0.03 spread to the others: ranks spread over the gallery), float32."""
    g = torch.Generator().manual_seed(0)
    video = torch.nn.functional.normalize(torch.randn(pairs, dim, generator=g), dim=1)
    noise = torch.randn(pairs, dim, generator=g)
    music = torch.nn.functional.normalize(0.08 * video + noise / dim**0.5, dim=1)
    return video.to(device), music.to(device)


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak() -> float:
    """Reset the peak resident size (Linux >= 4.0) and return the current one, MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _phase(kind: str, pairs: int, dim: int, device: str, out: Any) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    video, music = embeddings(pairs, dim, device)
    groups = torch.arange(pairs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = _reset_peak()  # the inputs are resident; only what the phase adds counts
    started = time.perf_counter()
    result: dict[str, float] = {}
    if kind == "matmul":
        step = chunk_rows(pairs, DEFAULT_CHUNK_BYTES)
        for start in range(0, pairs, step):
            scores = video[start : start + step] @ music.T
            del scores
    else:
        ranks = retrieval_ranks(video, music, groups, groups)
        ranks_np = ranks.cpu().numpy()
        ranked = time.perf_counter()
        metrics = rank_metrics(ranks_np, np.ones(pairs, dtype=np.int64), pairs)
        result["metrics_s"] = time.perf_counter() - ranked
        result["r1"], result["r10"] = metrics.recall[1], metrics.recall[10]
        result["medr"] = metrics.median_rank
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result["seconds"] = time.perf_counter() - started - result.get("metrics_s", 0.0)
    result["extra_mb"] = _status_mb("VmHWM") - base
    out.put(result)


def run_phase(kind: str, pairs: int, dim: int, device: str) -> dict[str, float]:
    """Run one phase in a fresh process and return its figures."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_phase, args=(kind, pairs, dim, device, queue))
    proc.start()
    result: dict[str, float] = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    n, d = args.pairs, args.dim
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
    )
    tflop = 2 * n * n * d / 1e12
    print(
        f"{n:,} x {n:,} pairs at {d}-d, float32: {tflop:.1f} TFLOP per direction; blocks of "
        f"{chunk_rows(n):,} query rows ({DEFAULT_CHUNK_BYTES / 2**20:.0f} MiB of scores)"
    )
    bare = run_phase("matmul", n, d, args.device)
    print(
        f"bare matmul:   {bare['seconds']:8.1f} s ({tflop * 1e3 / bare['seconds']:.0f} GFLOP/s), "
        f"extra peak memory {bare['extra_mb']:,.0f} MB"
    )
    ours = run_phase("evaluate", n, d, args.device)
    print(
        f"svm evaluate:  {ours['seconds']:8.1f} s = {ours['seconds'] / bare['seconds']:.2f}x the "
        f"bare matmul (target <= 1.3x), extra peak memory {ours['extra_mb']:,.0f} MB "
        f"(target <= 2,048 MB)"
        + (f", GPU peak {ours['gpu_peak_mb']:,.0f} MB" if "gpu_peak_mb" in ours else "")
    )
    print(
        f"  metrics from the ranks: {ours['metrics_s']:.2f} s; video→music R@1 "
        f"{ours['r1']:.1f} %, R@10 {ours['r10']:.1f} %, MedR {ours['medr']:.0f}"
    )


if __name__ == "__main__":
    main()
