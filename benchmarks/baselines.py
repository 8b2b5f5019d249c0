"""TIVM's comparison on a generated corpus: transformer vs LSTM vs mean, InfoNCE vs triplet.

    .venv/bin/python benchmarks/baselines.py [--clips 200] [--seeds 3] [--workdir DIR]
    .venv/bin/python benchmarks/baselines.py --dataset svm-demo/dataset

Builds (or reuses) a demo corpus of ``--clips`` generated music videos with ``svm demo``'s
pipeline (download, preprocess, extract with the offline extractors ``efficientnet_lite0`` and
``vmnet_music``), deals it into train/val/test (0.55/0.15/0.3 as ``svm demo``, songs kept
together), then trains the demo's ``tivm`` configuration with each temporal encoder and each loss
for ``--seeds`` seeds and evaluates every run on the test split (full gallery, multi-positive by
song). It prints one row per variant: Recall@1, Recall@10 and MRR of each direction as mean ±
standard deviation over seeds, the chance levels, and the training time.

Where temporal order carries information (:mod:`svm_toolkit.demo.corpus`): every song has two
sections, and tempo, key, mode and timbre change at half the clip; the picture follows the
section being played (flash rate and stripe drift <- tempo, hue <- the note, orientation <-
mode, stripe density <- timbre), and the notes move through the key's arpeggio beat by beat. A
video's frames are thus an ordered sequence: section A's look for 4 s, then section B's, and a
clip with the sections swapped looks different frame by frame. The music side cannot show it
here: ``vmnet_music``, the one audio extractor that runs offline, summarises the whole clip in
one 29.12 s step (mean, variance and maximum of librosa features of the zero-padded clip), the
same for either order. So the music tower sees a single step whatever the encoder, and what a
temporal video encoder can add over mean pooling is limited to how the frames' features
combine, not the order of the sections; with a per-step audio extractor (``vggish``, its
weights downloaded) both towers would see the order.
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
from svm_toolkit.evaluate.protocol import EvalConfig
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
    directions = ("video_to_music", "music_to_video")
    columns = ("R@1", "R@10", "MRR")
    header = (
        f"{'encoder':<12}{'loss':<9}"
        + "".join(f"{d[0] + '→' + d[-5] + ' ' + c:>14}" for d in directions for c in columns)
        + f"{'train s':>9}"
    )
    print(f"\ntest split, mean ± std over {args.seeds} seeds (v→m: video queries, m→v: music)")
    print(header)
    print("-" * len(header))
    chance: dict[str, float] = {}
    gallery = 0
    for encoder in ENCODERS:
        for loss in LOSSES:
            scores: dict[str, list[float]] = {}
            seconds = []
            for seed in range(args.seeds):
                config = dataclasses.replace(
                    base,
                    model=dataclasses.replace(base.model, encoder=encoder),
                    loss=LossConfig(name=loss),  # type: ignore[arg-type]
                    seed=seed,
                )
                run = dataset / "runs" / f"compare-{encoder}-{loss}-seed{seed}"
                summary = train(dataset, config, run, overwrite=True)
                metrics = evaluate_run(run, EvalConfig(ks=(1, 10), device="cpu")).metrics
                for direction in directions:
                    full = metrics["directions"][direction]["full"]
                    gallery = full["gallery"]
                    for column, value, ch in (
                        ("R@1", full["recall"]["1"], full["chance_recall"]["1"]),
                        ("R@10", full["recall"]["10"], full["chance_recall"]["10"]),
                        ("MRR", 100 * full["mrr"], None),
                    ):
                        scores.setdefault(f"{direction} {column}", []).append(float(value))
                        if ch is not None:
                            chance[f"{direction} {column}"] = float(ch)
                seconds.append(summary.seconds)

            def cell(values: list[float]) -> str:
                return f"{np.mean(values):5.1f} ± {np.std(values):4.1f}"

            print(
                f"{encoder:<12}{loss:<9}"
                + "".join(f"{cell(scores[f'{d} {c}']):>14}" for d in directions for c in columns)
                + f"{np.mean(seconds):9.1f}",
                flush=True,
            )
    print(
        f"{'chance':<21}"
        + "".join(
            f"{chance[f'{d} {c}']:14.1f}" if f"{d} {c}" in chance else f"{'':>14}"
            for d in directions
            for c in columns
        )
        + f"   (gallery {gallery})"
    )
    print(
        f"\nmodel: {base.model.name}, width {base.model.width}, embedding {base.model.embed_dim}, "
        f"{base.epochs} epochs at most (patience {base.patience}), batch {base.batch_size}, "
        f"lr {base.lr:g}, window {base.window_s:g} s; triplet: margin {LossConfig().margin}, "
        f"hardest negative after {LossConfig().hard_after_steps} steps"
    )


if __name__ == "__main__":
    main()
