"""``svm train``: fit a baseline on one dataset's paired features, resumably.

One epoch deals the training pairs into batches with a generator seeded by ``(seed, epoch)``
and reseeds torch (dropout) the same way, so a run resumed from ``last.pt`` after a kill makes
exactly the steps an uninterrupted run makes. After each epoch the model embeds the validation
split (centred windows) and is scored by the evaluator's mean reciprocal rank over the whole
validation gallery (mean of both directions): unlike Recall@K, which sits at 100 % once K
reaches the gallery's size, MRR moves with every rank. The best epoch is kept in ``best.pt``,
and training stops after ``patience`` epochs without a better MRR. Each epoch also records the
validation loss (the training objective on the validation pairs, no dropout) and R@K for the K
below the gallery's size, as information.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from svm_toolkit.config import to_dict
from svm_toolkit.device import resolve_device
from svm_toolkit.errors import ConfigError, InputError, TrainingDivergedError
from svm_toolkit.evaluate.protocol import EvalConfig, PairedEmbeddings, evaluate_pairs
from svm_toolkit.names import check_feature_sets
from svm_toolkit.schema import Split
from svm_toolkit.train.checkpoint import (
    RunFiles,
    discard_run,
    load_checkpoint,
    read_json,
    save_checkpoint,
    write_json,
    write_rows_csv,
)
from svm_toolkit.train.config import LossConfig, ModelConfig, TrainConfig
from svm_toolkit.train.data import Batch, PairedData, load_pairs
from svm_toolkit.train.losses import build_loss
from svm_toolkit.train.models import DualEncoder, Tower, build_model

logger = logging.getLogger(__name__)

#: What early stopping compares, as ``last.pt`` records it: validation MRR (percent, mean of
#: both directions); without validation pairs, the negated training loss.
CRITERION = "val_mrr"


@dataclass(frozen=True, slots=True)
class StepProgress:
    """One optimiser step, for progress bars."""

    epoch: int
    step: int
    steps: int
    loss: float
    samples_per_s: float


@dataclass(frozen=True, slots=True)
class TrainSummary:
    """What a ``svm train`` call did.

    Attributes:
        run: the run folder.
        epochs: epochs finished in total (this call and earlier ones).
        resumed_from: epochs that were already finished when this call started.
        best_epoch: the epoch kept in ``best.pt`` (1-based).
        best_val: its validation metrics (MRR, then R@K for K below the gallery size, percent,
            mean of both directions; and the validation loss).
        stopped_early: training ended on ``patience``.
        train_pairs, val_pairs: pairs per split.
        seconds: wall time of this call, seconds.
    """

    run: Path
    epochs: int
    resumed_from: int
    best_epoch: int
    best_val: dict[str, float]
    stopped_early: bool
    train_pairs: int
    val_pairs: int
    seconds: float

    def describe(self) -> str:
        """One line for the CLI and the demo."""
        resumed = (
            " (done before)"
            if self.resumed_from == self.epochs
            else f", resumed after epoch {self.resumed_from}"
            if self.resumed_from
            else ""
        )
        stop = ", stopped early" if self.stopped_early else ""
        val = " · ".join(
            f"{k} {v:.3f}" if k == "loss" else f"{k.upper()} {v:.1f}"
            for k, v in self.best_val.items()
        )
        return (
            f"{self.train_pairs} train / {self.val_pairs} val pairs; {self.epochs} epochs"
            f"{resumed}{stop}; best epoch {self.best_epoch} (val {val}) in {self.seconds:.1f} s"
        )


@dataclass(slots=True)
class _Fit:
    """What every step of one training run works with."""

    model: DualEncoder
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    data: PairedData
    config: TrainConfig
    device: str
    batch: int
    steps: int

    def state(self) -> dict[str, Any]:
        """The tensors a checkpoint keeps."""
        return {
            "model": self.model.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load(self, saved: dict[str, Any]) -> None:
        """Restore what :meth:`state` saved."""
        self.model.load_state_dict(saved["model"])
        self.loss_fn.load_state_dict(saved["loss"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])


def train(
    dataset: Path,
    config: TrainConfig,
    run: Path,
    *,
    overwrite: bool = False,
    mmap: bool = False,
    data: PairedData | None = None,
    on_step: Callable[[StepProgress], None] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    stop_after: int | None = None,
) -> TrainSummary:
    """Train (or resume) a run.

    Args:
        dataset: the dataset root (features and splits).
        config: the run's config.
        run: the run folder; a folder holding another config needs ``overwrite``.
        overwrite: start afresh in a folder that holds a different run.
        mmap: memory-map the features from ``RUN/cache`` instead of holding them in memory.
        data: the paired features, when already loaded (benchmarks, tests).
        on_step: called after every optimiser step (progress bars).
        on_epoch: called with each epoch's metrics row.
        stop_after: end this call after that many epochs in total, as a kill would (tests).

    Raises:
        InputError: no features, no splits, or no training pairs.
        ConfigError: the folder holds a run with another config and ``overwrite`` is off, or
            ``video``/``audio`` is neither extracted nor an extractor (with suggestions).
    """
    started = time.perf_counter()
    files = RunFiles(Path(run))
    settings = {"dataset": dataset_reference(Path(dataset), files.root), "train": to_dict(config)}
    if data is None:  # a mistyped --video/--audio is refused before the run folder is made
        check_feature_sets(Path(dataset), (config.video, config.audio))
    _claim(files, settings, overwrite=overwrite)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    if data is None:
        data = load_pairs(
            dataset, audio=config.audio, video=config.video, cache=files.cache if mmap else None
        )
    train_rows, val_rows = data.rows(Split.TRAIN), data.rows(Split.VAL)
    if len(train_rows) < 2:
        raise InputError(
            f"{dataset}: {len(train_rows)} training pairs; at least 2 are needed "
            "(check `svm splits make` and that both extractors ran)"
        )
    fit = _setup(data, train_rows, config, device)
    state: dict[str, Any] = {"epoch": 0, "best": None, "best_epoch": 0, "bad": 0, "history": []}
    if files.last.exists():
        saved = load_checkpoint(files.last, device)
        fit.load(saved)
        state = {k: saved[k] for k in state}
        state["done"] = saved.get("done", False)
        if saved.get("criterion") != CRITERION:  # a run saved before MRR was the criterion:
            state["best"] = None  # its best score is not comparable; the next epoch sets one
    resumed_from = int(state["epoch"])
    while not state.get("done") and state["epoch"] < config.epochs:
        epoch = int(state["epoch"]) + 1
        row = _epoch(fit, train_rows, epoch, on_step)
        val = _validate(fit, val_rows)
        row.update({f"val_{k}": v for k, v in val.items()})
        score = [val["mrr"]] if val else [-row["train_loss"]]
        improved = state["best"] is None or score > state["best"]
        state.update(epoch=epoch, bad=0 if improved else state["bad"] + 1)
        snapshot = fit.state()
        if improved:
            state.update(best=score, best_epoch=epoch)
            best = {k: snapshot[k] for k in ("model", "loss")}
            save_checkpoint(files.best, {**best, "epoch": epoch})
        state["history"] = [*state["history"], row]
        state["done"] = (
            bool(config.patience and state["bad"] >= config.patience) or epoch >= config.epochs
        )
        kept = ("epoch", "best", "best_epoch", "bad", "history", "done")
        save_checkpoint(
            files.last, {**{k: state[k] for k in kept}, "criterion": CRITERION, **snapshot}
        )
        write_rows_csv(files.epochs_csv, state["history"])
        write_json(files.epochs_json, state["history"])
        logger.info("epoch %d: %s", epoch, row)
        if on_epoch is not None:
            on_epoch(row)
        if stop_after is not None and epoch >= stop_after:
            break
    history: list[dict[str, float]] = state["history"]
    if state.get("done"):
        from svm_toolkit.train.plots import plot_curves

        plot_curves(history, files.curves)
    best = history[state["best_epoch"] - 1] if state["best_epoch"] else {}
    return TrainSummary(
        run=files.root,
        epochs=int(state["epoch"]),
        resumed_from=resumed_from,
        best_epoch=int(state["best_epoch"]),
        best_val={k[4:]: float(v) for k, v in best.items() if k.startswith("val_")},
        stopped_early=bool(state.get("done")) and int(state["epoch"]) < config.epochs,
        train_pairs=len(train_rows),
        val_pairs=len(val_rows),
        seconds=time.perf_counter() - started,
    )


def dataset_reference(dataset: Path, run: Path) -> str:
    """How ``config.json`` records the dataset: relative to the run folder where possible.

    A run inside its dataset (``DATASET/runs/NAME``) records ``../..``, so the dataset and its
    runs can be copied or moved together and still resume and evaluate. On another drive
    (Windows), where no relative path exists, the absolute path is recorded.
    """
    try:
        return Path(os.path.relpath(dataset.resolve(), run.resolve())).as_posix()
    except ValueError:
        return str(dataset.resolve())


def _claim(files: RunFiles, settings: dict[str, Any], *, overwrite: bool) -> None:
    """Make the run folder this config's, or refuse to mix two runs in one folder.

    Runs are compared by their TrainConfig alone: the dataset's path is information (a run
    folder copied elsewhere with its dataset is the same run), and is rewritten as it is now.
    """
    if files.config.exists():
        before = read_json(files.config).get("train")
        if before != settings["train"]:
            if not overwrite:
                changed = _changed(before, settings["train"])
                raise ConfigError(
                    f"{files.root} holds a run with another config ({changed}); pass "
                    "--overwrite to start afresh there, or choose another -o folder"
                )
            discard_run(files.root)
    files.root.mkdir(parents=True, exist_ok=True)
    write_json(files.config, settings)


def _changed(before: Any, now: dict[str, Any], prefix: str = "") -> str:
    """The fields two configs differ in, as ``name: old -> new`` (at most three)."""
    if not isinstance(before, dict):
        return "unreadable before"
    out = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            inner = _changed(old, new, f"{prefix}{key}.")
            out.extend([inner] if inner else [])
        elif old != new:
            out.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return ", ".join(out[:3]) + (", ..." if len(out) > 3 else "")


def _warmup_cosine(total: int, warmup: float) -> Callable[[int], float]:
    """LR multiplier: linear from ~0 to 1 over the warm-up steps, then cosine to 0."""
    ramp = max(int(total * warmup), 1)

    def factor(step: int) -> float:
        if step < ramp:
            return (step + 1) / ramp
        progress = (step - ramp) / max(total - ramp, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _fit_standardizers(model: DualEncoder, data: PairedData, rows: npt.NDArray[np.int64]) -> None:
    """Per-dimension mean and std of the training steps, chunked to bound memory."""
    for side, tower, dim in (
        ("video", model.video, data.video.dim),
        ("audio", model.audio, data.audio.dim),
    ):
        assert isinstance(tower, Tower)
        total = np.zeros(dim)
        square = np.zeros(dim)
        count = 0
        for start in range(0, len(rows), 4096):
            steps = data.steps(side, rows[start : start + 4096])[0].astype(np.float64)
            total += steps.sum(axis=0)
            square += (steps**2).sum(axis=0)
            count += len(steps)
        mean = total / count
        std = np.sqrt(np.maximum(square / count - mean**2, 0.0))
        tower.standardize.fit(torch.from_numpy(mean).float(), torch.from_numpy(std).float())


def _tensors(batch: Batch, device: str) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.from_numpy(a).to(device, non_blocking=True)
        for a in (batch.video, batch.video_mask, batch.audio, batch.audio_mask, batch.groups)
    )


def _autocast(device: str) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; full precision on CPU (reproducible)."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _setup(data: PairedData, rows: npt.NDArray[np.int64], config: TrainConfig, device: str) -> _Fit:
    """Model (seeded, standardised on the training steps), loss, AdamW and the schedule."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, video_dim=data.video.dim, audio_dim=data.audio.dim)
    _fit_standardizers(model, data, rows)
    model.to(device)
    loss_fn = build_loss(config.loss).to(device)
    params = [p for p in [*model.parameters(), *loss_fn.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    batch = min(config.batch_size, len(rows))
    steps = max(len(rows) // batch, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _warmup_cosine(steps * config.epochs, config.warmup)
    )
    return _Fit(model, loss_fn, optimizer, scheduler, data, config, device, batch, steps)


def _epoch(
    fit: _Fit,
    rows: npt.NDArray[np.int64],
    epoch: int,
    on_step: Callable[[StepProgress], None] | None,
) -> dict[str, float]:
    """One epoch of optimiser steps; returns its metrics row."""
    config, batch = fit.config, fit.batch
    torch.manual_seed(config.seed * 1_000_003 + epoch)
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(rows)
    fit.model.train()
    started = time.perf_counter()
    losses = []
    for step in range(fit.steps):
        chosen = order[step * batch : (step + 1) * batch]
        starts = fit.data.random_starts(chosen, config.window_s, rng)
        video, video_mask, audio, audio_mask, groups = _tensors(
            fit.data.batch(chosen, starts, config.window_s), fit.device
        )
        with _autocast(fit.device):
            v, a = fit.model(video, video_mask, audio, audio_mask)
        loss = fit.loss_fn(v, a, groups)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"the loss became {float(loss.detach())} at epoch {epoch}, step {step + 1}; "
                f"lower --lr (now {config.lr:g}) and run again with --overwrite"
            )
        fit.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        fit.optimizer.step()
        fit.scheduler.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            elapsed = time.perf_counter() - started
            on_step(
                StepProgress(epoch, step + 1, fit.steps, losses[-1], (step + 1) * batch / elapsed)
            )
    seconds = time.perf_counter() - started
    return {
        "epoch": epoch,
        "train_loss": float(np.mean(losses)),
        "lr": float(fit.scheduler.get_last_lr()[0]),
        "temperature": float(getattr(fit.loss_fn, "temperature", float("nan"))),
        "seconds": seconds,
        "samples_per_s": fit.steps * batch / seconds,
    }


def encode(
    model: DualEncoder,
    data: PairedData,
    rows: npt.NDArray[np.int64],
    *,
    window_s: float,
    device: str,
    batch_size: int = 512,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Embed the pairs ``rows`` on their centred windows.

    Returns:
        ``(video, music)``: float32, shape (len(rows), E) each, L2-normalised.
    """
    model.eval()
    out_v, out_a = [], []
    with torch.inference_mode():
        for chosen in _chunks(rows, batch_size):
            video, video_mask, audio, audio_mask, _ = _tensors(
                data.batch(chosen, data.centre_starts(chosen, window_s), window_s), device
            )
            with _autocast(device):
                v, a = model(video, video_mask, audio, audio_mask)
            out_v.append(v.float().cpu().numpy())
            out_a.append(a.float().cpu().numpy())
    return np.concatenate(out_v), np.concatenate(out_a)


def paired_embeddings(
    model: DualEncoder,
    data: PairedData,
    rows: npt.NDArray[np.int64],
    config: TrainConfig,
    device: str,
) -> PairedEmbeddings:
    """The evaluator's input for the pairs ``rows``."""
    video, music = encode(model, data, rows, window_s=config.window_s, device=device)
    return PairedEmbeddings(
        tuple(data.sample_ids[i] for i in rows),
        video,
        music,
        tuple(data.music_ids[i] for i in rows),
    )


def _validate(fit: _Fit, rows: npt.NDArray[np.int64]) -> dict[str, float]:
    """Validation metrics on the centred windows; empty without validation pairs.

    Returns:
        ``mrr`` (percent, mean of both directions: the early-stopping criterion), ``r1``,
        ``r5``, ``r10`` for the K below the gallery's size only (R@K at K >= N is 100 % by
        construction), and ``loss``, the objective on the validation pairs in batches of
        the training batch size, without dropout.
    """
    if len(rows) == 0:
        return {}
    pairs = paired_embeddings(fit.model, fit.data, rows, fit.config, fit.device)
    ks = tuple(k for k in (1, 5, 10) if k < len(rows))
    result = evaluate_pairs(pairs, EvalConfig(ks=ks or (1,), device=fit.device))
    directions = list(result.directions.values())
    out = {"mrr": float(np.mean([100 * d.full.mrr for d in directions]))}
    out.update({f"r{k}": float(np.mean([d.full.recall[k] for d in directions])) for k in ks})
    out["loss"] = _validation_loss(fit, pairs, rows)
    return out


def _validation_loss(fit: _Fit, pairs: PairedEmbeddings, rows: npt.NDArray[np.int64]) -> float:
    """The training objective on the validation embeddings, batch by batch (eval mode)."""
    fit.loss_fn.eval()
    losses, weights = [], []
    with torch.inference_mode():
        for start in range(0, len(rows), fit.batch):
            chunk = slice(start, start + fit.batch)
            if len(rows[chunk]) < 2:  # one pair has no negative
                continue
            v, a, groups = (
                torch.from_numpy(x).to(fit.device)
                for x in (pairs.video[chunk], pairs.music[chunk], fit.data.groups[rows[chunk]])
            )
            losses.append(float(fit.loss_fn(v, a, groups)))
            weights.append(len(rows[chunk]))
    fit.loss_fn.train()
    return float(np.average(losses, weights=weights)) if losses else float("nan")


def _chunks(rows: npt.NDArray[np.int64], size: int) -> Iterator[npt.NDArray[np.int64]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def load_run(run: Path, device: str = "cpu") -> tuple[TrainConfig, DualEncoder]:
    """The config and the best model (``best.pt``) of a run folder."""
    files = RunFiles(Path(run))
    config = train_config_from_dict(read_json(files.config).get("train", {}))
    state = load_checkpoint(files.best, device)
    video_dim = state["model"]["video.standardize.mean"].shape[0]
    audio_dim = state["model"]["audio.standardize.mean"].shape[0]
    model = build_model(config.model, video_dim=video_dim, audio_dim=audio_dim)
    model.load_state_dict(state["model"])
    return config, model.to(device)


def train_config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from ``config.json``.

    Raises:
        InputError: fields this version does not know.
    """
    try:
        return TrainConfig(
            **{
                **values,
                "model": ModelConfig(**values["model"]),
                "loss": LossConfig(**values["loss"]),
            }
        )
    except (TypeError, KeyError) as exc:
        raise InputError(f"run config does not match this version's TrainConfig: {exc}") from None
