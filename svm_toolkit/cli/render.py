"""Rendering for the CLI: aligned tables, count lines, and the ``--json`` summaries."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import click

_F = TypeVar("_F", bound=Callable[..., Any])


def counts(values: Mapping[str, int]) -> str:
    """``{"ok": 3, "invalid_url": 1}`` -> ``"ok 3 · invalid_url 1"``."""
    return " · ".join(f"{k} {v:,}" for k, v in values.items()) or "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a left-aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) and rows for i in range(len(headers))
    ]

    def line(row: list[str]) -> str:
        parts = [
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


JSON_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "manifest urls": (
        "stage", "path", "rows_read", "samples", "duplicates_merged", "by_status", "by_source",
        "unchanged", "seconds",
    ),
    "manifest info": ("stage", "dataset", "samples", "by_source", "stages", "splits", "runs"),
    "manifest yt8m": (
        "stage", "path", "files", "records", "bad_files", "skipped_records", "samples",
        "duplicates_merged", "labels", "missing_labels", "by_status", "features", "unchanged",
        "seconds",
    ),
    "download": (
        "stage", "dataset", "candidates", "skipped", "adopted", "attempted", "by_status",
        "failed", "failure_rate", "bytes", "seconds", "breaker_pauses", "ledger",
    ),
    "preprocess": (
        "stage", "dataset", "candidates", "skipped", "attempted", "by_status", "cropped",
        "media_seconds", "seconds", "ledger",
    ),
    "extract": (
        "stage", "dataset", "candidates", "skipped", "attempted", "by_status", "steps",
        "seconds", "device", "features",
    ),
    "splits make": (
        "stage", "dataset", "path", "by_split", "groups", "largest", "links", "given",
        "left_out", "unchanged", "seconds", "largest_groups", "links_path",
    ),
    "splits validate": (
        "stage", "dataset", "source", "by_split", "errors", "warnings", "findings", "checks",
        "written", "exit_code",
    ),
    "train": (
        "stage", "run", "epochs", "resumed_from", "best_epoch", "best_val", "stopped_early",
        "train_pairs", "val_pairs", "seconds",
    ),
    "evaluate": ("stage", "metrics", "written"),
    "export": (
        "stage", "out", "format", "features", "by_split", "samples", "written", "kept",
        "bytes_written", "left_out", "read_with",
    ),
    "compact": ("stage", "dataset", "shard_sets", "changed", "busy"),
    "card": ("stage", "path", "configs", "kept", "changed", "default"),
    "release": (
        "stage", "path", "samples", "by_split", "fingerprints", "extractors", "files", "seconds",
    ),
    "rebuild": (
        "stage", "release", "dataset", "samples", "steps", "extractors", "skipped_extractors",
        "seconds",
    ),
    "compare": (
        "stage", "release", "dataset", "samples", "survived", "availability", "by_split",
        "missing_by_status", "changed", "features", "splits_check", "written", "exit_code",
    ),
}  # fmt: skip
"""The keys of each command's ``--json`` object (more may follow; none is ever left out)."""


def json_option(command: str) -> Callable[[_F], _F]:
    """The ``--json`` flag of ``command``, its help naming the keys of :data:`JSON_KEYS`."""
    keys = ", ".join(JSON_KEYS[command])
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help=f"Print the final summary as one JSON object on stdout and nothing else there "
        f"(logs and errors stay on stderr; exit codes unchanged). Keys: {keys}.",
    )


def fields(value: object) -> dict[str, object]:
    """The fields of a dataclass instance, by name (not copied; see :func:`plain`)."""
    assert dataclasses.is_dataclass(value) and not isinstance(value, type)
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def plain(value: object) -> object:
    """``value`` as JSON can hold it.

    Paths become strings, mappings objects, dataclasses objects of their fields, tuples and sets
    lists, numpy scalars numbers, NaN and infinity ``null``.
    """
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(fields(value))
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return plain(item())
    return str(value)


def emit_json(command: str, values: Mapping[str, object]) -> None:
    """Print ``values`` as the one JSON object of ``command`` on stdout (``stage`` first).

    Raises:
        AssertionError: a key of :data:`JSON_KEYS` is missing (a bug, caught by the tests).
    """
    obj = {"stage": command, **{k: plain(v) for k, v in values.items()}}
    missing = [k for k in JSON_KEYS[command] if k not in obj]
    assert not missing, f"{command} --json lacks {missing}"
    click.echo(json.dumps(obj, ensure_ascii=False))
