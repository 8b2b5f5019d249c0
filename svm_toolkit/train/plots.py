"""Training curves: loss and validation MRR and Recall@K per epoch."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from svm_toolkit.io.atomic import write_bytes_atomic


def plot_curves(history: Sequence[Mapping[str, float]], path: Path) -> Path:
    """Write ``curves.png``: training loss (left), validation MRR and R@K (right) per epoch.

    R@K appears only for the K the trainer recorded (those below the validation gallery size).
    """
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [row["train_loss"] for row in history], marker=".")
    left.set(xlabel="epoch", ylabel="training loss", title="loss")
    for key, label in (
        ("val_mrr", "MRR"),
        ("val_r1", "R@1"),
        ("val_r5", "R@5"),
        ("val_r10", "R@10"),
    ):
        if history and key in history[0]:
            right.plot(epochs, [row[key] for row in history], marker=".", label=label)
    right.set(
        xlabel="epoch", ylabel="MRR, recall (%)", title="validation (mean of both directions)"
    )
    right.set_ylim(0, 100)
    if right.lines:
        right.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
    return path
