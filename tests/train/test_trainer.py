from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from svm_toolkit.errors import ConfigError, InputError, TrainingDivergedError
from svm_toolkit.evaluate.runner import evaluate_features, evaluate_run
from svm_toolkit.testing.pairs import PairsSpec, write_pairs
from svm_toolkit.train.checkpoint import RunFiles
from svm_toolkit.train.config import LossConfig, ModelConfig, TrainConfig
from svm_toolkit.train.trainer import train

SPEC = PairsSpec(pairs=240, songs=200, steps=6, audio_steps=3, noise=0.4)


def config(**overrides: object) -> TrainConfig:
    base = TrainConfig(
        audio=SPEC.audio,
        video=SPEC.video,
        model=ModelConfig(width=32, embed_dim=16, heads=2, dropout=0.1),
        epochs=12,
        batch_size=32,
        lr=3e-3,
        window_s=4.0,
        patience=0,
        device="cpu",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"), SPEC)


@pytest.mark.parametrize(
    ("encoder", "loss"), [("transformer", "infonce"), ("lstm", "triplet"), ("mean", "infonce")]
)
def test_training_learns_far_above_chance(
    dataset: Path, tmp_path: Path, encoder: str, loss: str
) -> None:
    run = tmp_path / "run"
    cfg = config(
        model=ModelConfig(encoder=encoder, width=32, embed_dim=16, heads=2),
        loss=LossConfig(name=loss),  # type: ignore[arg-type]
    )
    summary = train(dataset, cfg, run)
    assert summary.epochs == 12 and summary.train_pairs > 150
    files = RunFiles(run)
    for path in (files.config, files.last, files.best, files.epochs_csv, files.epochs_json):
        assert path.exists(), path
    assert files.curves.read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(files.epochs_csv.open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 13))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])

    evaluation = evaluate_run(run)
    for direction in evaluation.metrics["directions"].values():
        full = direction["full"]
        assert full["gallery"] == evaluation.metrics["protocol"]["pairs"] > 30
        assert full["recall"]["1"] > 6 * full["chance_recall"]["1"]  # chance: about 3.7 %
        assert full["recall"]["10"] > full["chance_recall"]["10"] + 35
    saved = json.loads(files.metrics.read_text())
    assert saved["protocol"]["split"] == "test" and saved["protocol"]["positives"] == "music_id"
    assert files.recall_plot.read_bytes()[:4] == b"\x89PNG"


def test_a_killed_run_resumes_to_the_same_model(dataset: Path, tmp_path: Path) -> None:
    cfg = config(epochs=4)
    whole = train(dataset, cfg, tmp_path / "whole")
    first = train(dataset, cfg, tmp_path / "parts", stop_after=2)  # as if killed after epoch 2
    assert first.epochs == 2
    rest = train(dataset, cfg, tmp_path / "parts")
    assert rest.resumed_from == 2 and rest.epochs == 4
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "parts" / "last.pt", weights_only=True)
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=0, msg=name)
    assert whole.best_epoch == rest.best_epoch
    again = train(dataset, cfg, tmp_path / "parts")  # finished: nothing more to do
    assert again.resumed_from == 4 and again.epochs == 4


def test_a_folder_holding_another_run_needs_overwrite(dataset: Path, tmp_path: Path) -> None:
    train(dataset, config(epochs=1), tmp_path / "run")
    with pytest.raises(ConfigError, match="--overwrite"):
        train(dataset, config(epochs=1, seed=1), tmp_path / "run")
    summary = train(dataset, config(epochs=1, seed=1), tmp_path / "run", overwrite=True)
    assert summary.resumed_from == 0


def test_early_stopping_keeps_the_best_epoch(dataset: Path, tmp_path: Path) -> None:
    summary = train(dataset, config(epochs=30, patience=2, lr=5e-2), tmp_path / "run")
    assert summary.stopped_early and summary.epochs < 30
    assert summary.epochs - summary.best_epoch == 2
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["epoch"] == summary.best_epoch


def test_zero_shot_needs_one_embedding_space(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs one embedding space"):
        evaluate_features(dataset, tmp_path, audio=SPEC.audio, video=SPEC.video)
    same = write_pairs(
        tmp_path / "same", PairsSpec(pairs=60, video_dim=8, audio_dim=8, noise=0.0, latent=8)
    )
    result = evaluate_features(same, tmp_path / "out", audio=SPEC.audio, video=SPEC.video)
    assert result.metrics["protocol"]["source"].startswith("zero-shot")
    assert (tmp_path / "out" / "metrics.json").exists()


def test_a_diverging_run_stops_with_a_clear_error(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingDivergedError, match=r"lower --lr \(now 1e\+30\)"):
        train(dataset, config(epochs=2, lr=1e30), tmp_path / "run")


def test_svm_train_killed_mid_run_resumes_to_the_same_weights(
    dataset: Path, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys
    import time

    args = [
        sys.executable, "-m", "svm_toolkit", "train", str(dataset), "--audio", SPEC.audio,
        "--video", SPEC.video, "--width", "32", "--embed-dim", "16", "--epochs", "8",
        "--batch-size", "16", "--window", "4", "--device", "cpu", "--seed", "5",
    ]  # fmt: skip
    whole = subprocess.run([*args, "-o", str(tmp_path / "whole")], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    run = tmp_path / "killed"
    proc = subprocess.Popen([*args, "-o", str(run)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "epochs.csv").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-epoch, after at least one checkpoint
    proc.wait()
    done = torch.load(run / "last.pt", weights_only=True)["epoch"]
    assert 1 <= done < 8
    again = subprocess.run([*args, "-o", str(run)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"resumed after epoch {done}" in again.stdout
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(run / "last.pt", weights_only=True)
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=0, msg=name)
