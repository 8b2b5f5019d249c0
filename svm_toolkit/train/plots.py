"""Training curves: loss and validation Recall@K per epoch."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from svm_toolkit.io.atomic import write_bytes_atomic


def plot_curves(history: Sequence[Mapping[str, float]], path: Path) -> Path:
    """Write ``curves.png``: training loss (left) and validation R@1/5/10 (right) per epoch."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [row["train_loss"] for row in history], marker=".")
    left.set(xlabel="epoch", ylabel="training loss", title="loss")
    for k in (1, 5, 10):
        key = f"val_r{k}"
        if history and key in history[0]:
            right.plot(epochs, [row[key] for row in history], marker=".", label=f"R@{k}")
    right.set(xlabel="epoch", ylabel="recall (%)", title="validation (mean of both directions)")
    right.set_ylim(0, 100)
    if right.lines:
        right.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
    return path
