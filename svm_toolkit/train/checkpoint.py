"""A run folder's files and their atomic writes: config, checkpoints and per-epoch metrics.

``RUN/config.json`` (the TrainConfig), ``last.pt`` (everything needed to resume: model, loss,
optimiser and scheduler state, epoch, history), ``best.pt`` (the model of the best validation
epoch), ``epochs.csv`` and ``epochs.json`` (one row per epoch), ``curves.png``, and from
``svm evaluate``: ``metrics.json`` and ``recall.png``. Every file is written to a temporary
name and renamed, so a killed run never leaves a half-written checkpoint.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from svm_toolkit.errors import InputError


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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def write_json(path: Path, value: Any) -> None:
    """Write pretty JSON atomically."""
    write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> Any:
    """Read a JSON file the toolkit wrote.

    Raises:
        InputError: missing or unreadable (the message names the file).
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def write_rows_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Write dict rows as CSV atomically (columns of the first row)."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_bytes_atomic(path, buffer.getvalue().encode())


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """``torch.save`` atomically."""
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
    try:
        state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, ValueError) as exc:
        raise InputError(
            f"{path}: not a readable checkpoint ({exc}); delete it and re-run"
        ) from None
    return state
