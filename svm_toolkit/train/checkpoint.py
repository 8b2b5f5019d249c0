"""A run folder's files and their atomic writes: config, checkpoints and per-epoch metrics.

``RUN/config.json`` (the TrainConfig), ``last.pt`` (everything needed to resume: model, loss,
optimiser and scheduler state, epoch, history), ``best.pt`` (the model of the best validation
epoch), ``epochs.csv`` and ``epochs.json`` (one row per epoch), ``curves.png``, and from
``svm evaluate``: ``metrics.json`` and ``recall.png``. Every file is written to a temporary
name and renamed, so a killed run never leaves a half-written checkpoint (the helpers for
JSON and CSV live in :mod:`svm_toolkit.io.atomic`). torch is imported by the two functions that
need it, so reading a run's paths or JSON loads no model code.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svm_toolkit.errors import InputError
from svm_toolkit.io.atomic import read_json, write_bytes_atomic, write_json, write_rows_csv


@dataclass(frozen=True, slots=True)
class RunFiles:
    """Paths of one run folder."""

    root: Path

    @property
    def config(self) -> Path:
        """The run's TrainConfig as JSON."""
        return self.root / "config.json"

    @property
    def last(self) -> Path:
        """The resumable checkpoint of the last finished epoch."""
        return self.root / "last.pt"

    @property
    def best(self) -> Path:
        """The model of the best validation epoch (what ``svm evaluate`` loads)."""
        return self.root / "best.pt"

    @property
    def epochs_csv(self) -> Path:
        """Per-epoch metrics as CSV."""
        return self.root / "epochs.csv"

    @property
    def epochs_json(self) -> Path:
        """Per-epoch metrics as JSON."""
        return self.root / "epochs.json"

    @property
    def curves(self) -> Path:
        """Loss and validation Recall@K per epoch."""
        return self.root / "curves.png"

    @property
    def metrics(self) -> Path:
        """``svm evaluate``'s results."""
        return self.root / "metrics.json"

    @property
    def recall_plot(self) -> Path:
        """``svm evaluate``'s Recall@K curves."""
        return self.root / "recall.png"

    @property
    def cache(self) -> Path:
        """Memory-mapped copies of the features (``--mmap``)."""
        return self.root / "cache"


def discard_run(run: Path) -> None:
    """Delete what a run folder holds of its run (config, checkpoints, epochs, results).

    Used to start afresh (``--overwrite``); other files in the folder and the feature cache
    (``RUN/cache``, keyed by the shards' content) stay.
    """
    files = RunFiles(Path(run))
    for path in (
        files.config,
        files.last,
        files.best,
        files.epochs_csv,
        files.epochs_json,
        files.curves,
        files.metrics,
        files.recall_plot,
    ):
        path.unlink(missing_ok=True)


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """``torch.save`` atomically."""
    import torch

    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path, device: str = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a checkpoint this toolkit wrote.

    Raises:
        InputError: missing or not a checkpoint (the message names the file).
    """
    if not path.exists():
        raise InputError(f"{path}: no checkpoint; train first with `svm train`")
    import torch

    try:
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, ValueError) as exc:
        raise InputError(
            f"{path}: not a readable checkpoint ({exc}); delete it and re-run"
        ) from None
    return state


__all__ = [
    "RunFiles",
    "discard_run",
    "load_checkpoint",
    "read_json",
    "save_checkpoint",
    "write_bytes_atomic",
    "write_json",
    "write_rows_csv",
]
