"""Runs that can be moved, a validation criterion that moves, and evaluate's refusals."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from svm_toolkit.errors import ConfigError
from svm_toolkit.evaluate.runner import evaluate_run
from svm_toolkit.evaluate.sources import run_dataset
from svm_toolkit.testing.pairs import PairsSpec, write_pairs
from svm_toolkit.train.checkpoint import RunFiles, discard_run
from svm_toolkit.train.config import ModelConfig, TrainConfig
from svm_toolkit.train.trainer import train

SPEC = PairsSpec(pairs=70, steps=4, audio_steps=1, noise=0.4)
SMALL = ["--width", "16", "--embed-dim", "8", "--layers", "1", "--batch-size", "16"]
FEATURES = ["--audio", SPEC.audio, "--video", SPEC.video, "--device", "cpu", "--window", "3"]


def config(**overrides: object) -> TrainConfig:
    base = TrainConfig(
        audio=SPEC.audio,
        video=SPEC.video,
        model=ModelConfig(width=16, embed_dim=8, heads=2, encoder_layers=1),
        epochs=2,
        batch_size=16,
        lr=3e-3,
        window_s=3.0,
        patience=0,
        device="cpu",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def svm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svm_toolkit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs") / "dataset", SPEC)


def test_validation_records_mrr_and_loss_and_stops_on_mrr(dataset: Path, tmp_path: Path) -> None:
    summary = train(dataset, config(epochs=12, patience=2, lr=3e-2), tmp_path / "run")
    history = json.loads(RunFiles(tmp_path / "run").epochs_json.read_text())
    gallery = summary.val_pairs
    assert 5 < gallery <= 10  # R@10 would be 100 % by construction: not recorded
    for row in history:
        assert {"val_mrr", "val_loss", "val_r1", "val_r5"} <= set(row) and "val_r10" not in row
        assert 0 < row["val_mrr"] <= 100 and np.isfinite(row["val_loss"])
    mrr = [row["val_mrr"] for row in history]
    assert summary.best_epoch == int(np.argmax(mrr)) + 1  # the first best MRR is kept
    assert summary.stopped_early and summary.epochs - summary.best_epoch == 2
    assert len(set(mrr)) > 1  # it moves
    assert set(summary.best_val) == {"mrr", "r1", "r5", "loss"}
    assert "MRR" in summary.describe()
    header = RunFiles(tmp_path / "run").epochs_csv.read_text().splitlines()[0].split(",")
    assert {"val_mrr", "val_loss"} <= set(header)


def test_a_copied_dataset_with_its_run_resumes_and_evaluates(dataset: Path, tmp_path: Path) -> None:
    here = tmp_path / "here" / "dataset"
    shutil.copytree(dataset, here)
    cli = config(model=ModelConfig(width=16, embed_dim=8, encoder_layers=1))  # as the flags say
    train(here, cli, here / "runs" / "r", stop_after=1)  # killed after epoch 1
    recorded = json.loads(RunFiles(here / "runs" / "r").config.read_text())["dataset"]
    assert recorded == "../.."
    there = tmp_path / "elsewhere" / "copy"
    shutil.copytree(here, there)
    shutil.rmtree(tmp_path / "here")  # nothing may point back to where it was
    run = there / "runs" / "r"
    assert run_dataset(run) == run / "../.."
    result = svm(
        "train",
        there,
        *FEATURES,
        *SMALL,
        "--epochs",
        "2",
        "--lr",
        "3e-3",
        "--patience",
        "0",
        "-o",
        run,
    )
    assert result.returncode == 0, result.stderr
    assert "resumed after epoch 1" in result.stdout
    result = svm("evaluate", run, "--ks", "1,5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("test split, ") and (run / "metrics.json").exists()


def test_another_config_names_what_changed_and_a_flag_that_exists(
    dataset: Path, tmp_path: Path
) -> None:
    train(dataset, config(epochs=1), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"\(seed: 0 -> 1\); pass --overwrite"):
        train(dataset, config(epochs=1, seed=1), tmp_path / "run")
    for command in ("train", "demo"):  # the commands that train; both take the flag
        assert "--overwrite" in svm(command, "--help").stdout
    discard_run(tmp_path / "run")  # what --overwrite does to the folder
    assert train(dataset, config(epochs=1, seed=1), tmp_path / "run").resumed_from == 0


def test_evaluate_refuses_flags_that_do_not_apply(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(dataset, config(epochs=1), run)
    result = svm("evaluate", run, "--audio", "vggish")
    assert result.returncode == 2 and not (run / "metrics.json").exists()
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(
            f"--audio does not apply to a run ({run}): its config.json names the features its "
            "model reads; drop it"
        )
    )
    result = svm("evaluate", "--compare", run, "--split", "val")
    assert result.returncode == 2 and "--split does not apply with --compare" in result.stderr
    result = svm("evaluate", dataset, "--audio", "a", "--video", "v", "--dataset", dataset)
    assert result.returncode == 2 and "--dataset does not apply to zero-shot" in result.stderr


def test_a_runs_results_are_never_overwritten_silently(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(dataset, config(epochs=1), run)
    first = evaluate_run(run)
    assert first.replaced is None and not first.unchanged
    stamp = (run / "metrics.json").stat().st_mtime_ns
    again = evaluate_run(run)
    assert again.unchanged and (run / "metrics.json").stat().st_mtime_ns == stamp
    result = svm("evaluate", run, "--split", "val")
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if line.startswith("overwrote ")]
    assert said == [f"overwrote {run / 'metrics.json'} (was {first.describe()})"]
    assert json.loads((run / "metrics.json").read_text())["protocol"]["split"] == "val"
    result = svm("evaluate", run, "--split", "val", "-o", tmp_path / "elsewhere")
    assert result.returncode == 0 and (tmp_path / "elsewhere" / "metrics.json").exists()
    result = svm("evaluate", run, "--split", "val")
    assert "unchanged: " in result.stdout and "overwrote" not in result.stdout


def test_old_runs_with_an_absolute_dataset_still_evaluate(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(dataset, config(epochs=1), run)
    settings = json.loads(RunFiles(run).config.read_text())
    settings["dataset"] = str(dataset.resolve())
    RunFiles(run).config.write_text(json.dumps(settings))
    assert run_dataset(run) == dataset.resolve()
    assert torch.load(RunFiles(run).best, weights_only=True)["epoch"] == 1
    assert train(dataset, config(epochs=1), run).resumed_from == 1  # the same run
