"""Atomic writes of small files (JSON, CSV, images): a temporary name, fsync, then a rename.

A killed process never leaves a half-written file under the final name. These helpers need
only the standard library, so modules that write reports (``svm evaluate``'s metrics, the
trainer's run folder) use them without importing torch; they used to live in
:mod:`svm_toolkit.train.checkpoint`, which still re-exports them.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from svm_toolkit.errors import InputError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Args:
        path: The final file; its folder is created if missing.
        data: The whole content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def write_json(path: Path, value: Any) -> None:
    """Write pretty JSON (2-space indent, keys in insertion order) atomically."""
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


__all__ = ["read_json", "write_bytes_atomic", "write_json", "write_rows_csv"]
