"""TIVM's comparison on a generated corpus: transformer vs LSTM vs mean, InfoNCE vs triplet.

    .venv/bin/python benchmarks/baselines.py [--clips 200] [--seeds 3] [--workdir DIR]
    .venv/bin/python benchmarks/baselines.py --dataset svm-demo/dataset

Builds (or reuses) a demo corpus of ``--clips`` generated music videos with ``svm demo``'s
pipeline (download, preprocess, extract with the offline extractors ``efficientnet_lite0`` and
``vmnet_music``), deals it into train/val/test (0.6/0.1/0.3, songs kept together), then trains
the demo's ``tivm`` configuration with each temporal encoder and each loss for ``--seeds`` seeds
and evaluates every run on the test split (full gallery, multi-positive by song). It prints one
row per variant: Recall@1/5/10, median rank and MRR as mean ± standard deviation over seeds
(each the mean of both directions), the chance levels, and the training time.

The corpus' picture follows its soundtrack section by section (the music changes half-way), so
temporal order carries signal on the video side; ``vmnet_music`` is one descriptor per clip, so
the music tower sees a single step whatever the encoder.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np

from svm_toolkit.demo import CorpusConfig, run_demo
from svm_toolkit.demo.pipeline import DEMO_RATIOS, demo_train_config
from svm_toolkit.evaluate.runner import evaluate_run
from svm_toolkit.splits import SplitConfig, make_splits
from svm_toolkit.train.config import LossConfig
from svm_toolkit.train.trainer import train

ENCODERS = ("transformer", "lstm", "mean")
LOSSES = ("infonce", "triplet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("svm-baselines"))
    parser.add_argument("--dataset", type=Path, help="an existing demo dataset with features")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    dataset = args.dataset
    if dataset is None:
        started = time.perf_counter()
        corpus = CorpusConfig(clips=args.clips, songs=args.clips * 5 // 6, seconds=args.seconds)
        dataset = run_demo(args.workdir, corpus).dataset
        print(f"corpus: {args.clips} clips built in {time.perf_counter() - started:.0f} s")
    made = make_splits(dataset, SplitConfig(ratios=DEMO_RATIOS), overwrite=True)
    print(f"splits: {made.describe()}")

    base = demo_train_config(args.seconds)
    ks = ("1", "5", "10")
    header = (
        f"{'encoder':<12}{'loss':<9}"
        + "".join(f"{'R@' + k:>13}" for k in ks)
        + f"{'MedR':>12}{'MRR':>12}{'train s':>9}"
    )
    print(f"\ntest split, mean of both directions, mean ± std over {args.seeds} seeds")
    print(header)
    print("-" * len(header))
    chance: dict[str, float] = {}
    for encoder in ENCODERS:
        for loss in LOSSES:
            scores: dict[str, list[float]] = {k: [] for k in (*ks, "medr", "mrr", "seconds")}
            for seed in range(args.seeds):
                config = dataclasses.replace(
                    base,
                    model=dataclasses.replace(base.model, encoder=encoder),
                    loss=LossConfig(name=loss),  # type: ignore[arg-type]
                    seed=seed,
                )
                run = dataset / "runs" / f"compare-{encoder}-{loss}-seed{seed}"
                summary = train(dataset, config, run, overwrite=True)
                metrics = evaluate_run(run).metrics
                directions = [d["full"] for d in metrics["directions"].values()]
                for k in ks:
                    scores[k].append(float(np.mean([d["recall"][k] for d in directions])))
                    chance[k] = float(np.mean([d["chance_recall"][k] for d in directions]))
                scores["medr"].append(float(np.mean([d["median_rank"] for d in directions])))
                scores["mrr"].append(float(np.mean([100 * d["mrr"] for d in directions])))
                scores["seconds"].append(summary.seconds)
                chance["medr"] = float(np.mean([d["chance_median_rank"] for d in directions]))
                chance["gallery"] = directions[0]["gallery"]

            def cell(values: list[float]) -> str:
                return f"{np.mean(values):6.1f} ± {np.std(values):4.1f}"

            print(
                f"{encoder:<12}{loss:<9}"
                + "".join(f"{cell(scores[k]):>13}" for k in ks)
                + f"{cell(scores['medr']):>12}{cell(scores['mrr']):>12}"
                + f"{np.mean(scores['seconds']):9.1f}"
            )
    print(
        f"{'chance':<21}"
        + "".join(f"{chance[k]:13.1f}" for k in ks)
        + f"{chance['medr']:12.1f}   (gallery {int(chance['gallery'])})"
    )
    print(
        f"\nmodel: {base.model.name}, width {base.model.width}, embedding {base.model.embed_dim}, "
        f"{base.epochs} epochs at most (patience {base.patience}), batch {base.batch_size}, "
        f"lr {base.lr:g}, window {base.window_s:g} s; triplet: margin {LossConfig().margin}, "
        f"hardest negative after {LossConfig().hard_after_steps} steps"
    )


if __name__ == "__main__":
    main()
