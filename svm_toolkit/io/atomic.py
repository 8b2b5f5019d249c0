"""Atomic writes: a hidden temporary name, fsync, a rename, then an fsync of the folder.

A killed process never leaves a half-written file under the final name, and a power cut keeps
the renames in their order. :func:`atomic_path` is the one way the toolkit writes a file that
others read (shards and their stats, compaction plans, export files, the dataset card);
:func:`fsync_dir` makes a folder's renames and deletions durable. These helpers need
only the standard library, so modules that write reports (``svm evaluate``'s metrics, the
trainer's run folder) use them without importing torch; they used to live in
:mod:`svm_toolkit.train.checkpoint`, which still re-exports them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from svm_toolkit.errors import InputError


def tmp_path(path: Path) -> Path:
    """The hidden name ``path`` is written under before its rename: ``.<name>.tmp``.

    Dot-names are skipped by every outside reader (pyarrow, pandas, polars, DuckDB, Hugging Face
    ``datasets``), so a file being written is never read as data.
    """
    return path.with_name(f".{path.name}.tmp")


def fsync_dir(directory: Path) -> None:
    """Make the renames and deletions in ``directory`` durable (their order survives a crash)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to the disk."""
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield the hidden temp path to write ``path`` under; on success put it in place.

    On leaving the block without an error the temp file is fsynced, renamed to ``path``
    (replacing any old file in one step), and the folder fsynced; on an error it is removed and
    ``path`` is left as it was. The folder must exist.

    Example:
        >>> with atomic_path(folder / "index.parquet") as tmp:  # doctest: +SKIP
        ...     pq.write_table(table, tmp)
    """
    tmp = tmp_path(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Args:
        path: The final file; its folder is created if missing.
        data: The whole content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


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


__all__ = [
    "atomic_path",
    "fsync_dir",
    "fsync_file",
    "read_json",
    "tmp_path",
    "write_bytes_atomic",
    "write_json",
    "write_rows_csv",
]
