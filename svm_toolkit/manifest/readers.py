"""Read URL lists: txt, csv, tsv, jsonl/ndjson, json, parquet, each optionally ``.gz``.

Every reader returns the rows with a ``file:line`` reference, so any later complaint about a
row can say exactly where it came from. Malformed input raises :class:`InputError` naming the
file, the line and the fix.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from svm_toolkit.errors import InputError
from svm_toolkit.schema import COL

#: Column name given to the lines of a plain-text list.
TXT_COLUMN: Final = COL.url


@dataclass(frozen=True, slots=True)
class InputRow:
    """One input row: where it came from and its values by column name."""

    ref: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InputTable:
    """All rows of one input file, with its columns in file order."""

    path: Path
    columns: tuple[str, ...]
    rows: list[InputRow]


Reader = Callable[[Path, IO[bytes]], InputTable]
READERS: dict[str, Reader] = {}


def _reader(*suffixes: str) -> Callable[[Reader], Reader]:
    def register(fn: Reader) -> Reader:
        for suffix in suffixes:
            if suffix in READERS:
                raise ValueError(f"reader for {suffix!r} registered twice")
            READERS[suffix] = fn
        return fn

    return register


def supported_suffixes() -> list[str]:
    """Return the file suffixes :func:`read_input` understands (each also with ``.gz``)."""
    return sorted(READERS)


def read_input(path: Path) -> InputTable:
    """Read one URL list; the format comes from the suffix (``.csv``, ``.jsonl.gz``, …).

    Raises:
        InputError: missing or unreadable file, unknown format, malformed row, no rows.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file (pass the URL list files themselves)")
    suffixes = [s.lower() for s in path.suffixes]
    gz = suffixes[-1:] == [".gz"]
    fmt = (
        suffixes[-2] if gz and len(suffixes) >= 2 else (suffixes[-1] if suffixes and not gz else "")
    )
    reader = READERS.get(fmt)
    if reader is None:
        known = ", ".join(supported_suffixes())
        raise InputError(
            f"{path}: unknown format {fmt or '(no suffix)'!r}; use one of {known} (optionally .gz)"
        )
    try:
        with path.open("rb") as raw:
            stream = gzip.GzipFile(fileobj=raw) if gz else raw
            table = reader(path, stream)  # type: ignore[arg-type]
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a valid gzip file ({exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not table.rows:
        raise InputError(f"{path}: no rows; the file holds no URLs")
    return table


def _text(stream: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


@_reader(".txt", ".list")
def _read_txt(path: Path, stream: IO[bytes]) -> InputTable:
    """One URL per line; blank lines and lines starting with ``#`` are skipped."""
    rows = []
    for number, line in enumerate(_text(stream), start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            rows.append(InputRow(f"{path.name}:{number}", {TXT_COLUMN: text}))
    return InputTable(path, (TXT_COLUMN,), rows)


def _read_delimited(path: Path, stream: IO[bytes], delimiter: str) -> InputTable:
    reader = csv.reader(_text(stream), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return InputTable(path, (), [])
        header = [h.strip() for h in header]
        if not all(header) or len(set(header)) != len(header):
            raise InputError(
                f"{path.name}:1: the header row needs unique, non-empty column names, got {header}"
            )
        rows = []
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise InputError(
                    f"{path.name}:{reader.line_num}: {len(fields)} fields, the header has "
                    f"{len(header)}; quote values that contain {delimiter!r}"
                )
            values = {h: (v.strip() or None) for h, v in zip(header, fields, strict=True)}
            rows.append(InputRow(f"{path.name}:{reader.line_num}", values))
    except csv.Error as exc:
        raise InputError(f"{path.name}:{reader.line_num}: malformed row ({exc})") from None
    return InputTable(path, tuple(header), rows)


@_reader(".csv")
def _read_csv(path: Path, stream: IO[bytes]) -> InputTable:
    """Comma-separated values with a header row."""
    return _read_delimited(path, stream, ",")


@_reader(".tsv", ".tab")
def _read_tsv(path: Path, stream: IO[bytes]) -> InputTable:
    """Tab-separated values with a header row."""
    return _read_delimited(path, stream, "\t")


@_reader(".jsonl", ".ndjson")
def _read_jsonl(path: Path, stream: IO[bytes]) -> InputTable:
    """One JSON object per line."""
    rows = []
    for number, line in enumerate(_text(stream), start=1):
        if not line.strip():
            continue
        ref = f"{path.name}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{ref}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise InputError(f"{ref}: expected a JSON object per line, got {type(value).__name__}")
        rows.append(InputRow(ref, value))
    return InputTable(path, _union_columns(rows), rows)


@_reader(".json")
def _read_json(path: Path, stream: IO[bytes]) -> InputTable:
    """A JSON array of objects (or of URL strings)."""
    try:
        value = json.load(_text(stream))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(value, list):
        raise InputError(
            f"{path.name}: expected a JSON array of objects; for one object per line use .jsonl"
        )
    rows = []
    for index, item in enumerate(value):
        ref = f"{path.name}:item {index}"
        if isinstance(item, str):
            item = {TXT_COLUMN: item}
        if not isinstance(item, dict):
            raise InputError(
                f"{ref}: expected an object or a URL string, got {type(item).__name__}"
            )
        rows.append(InputRow(ref, item))
    return InputTable(path, _union_columns(rows), rows)


@_reader(".parquet", ".pq")
def _read_parquet(path: Path, stream: IO[bytes]) -> InputTable:
    """A Parquet table; rows are referenced by 1-based row number."""
    try:
        table = pq.read_table(pa.BufferReader(stream.read()))
    except pa.ArrowException as exc:
        raise InputError(f"{path.name}: not a readable Parquet file ({exc})") from None
    rows = [
        InputRow(f"{path.name}:row {i}", values)
        for i, values in enumerate(table.to_pylist(), start=1)
    ]
    return InputTable(path, tuple(table.column_names), rows)


def _union_columns(rows: list[InputRow]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.values))
    return tuple(seen)
