"""Read URL lists: txt, csv, tsv, jsonl/ndjson, json, parquet, each optionally ``.gz``.

Every reader returns the rows with a ``file:line`` reference, so any later complaint about a
row can say exactly where it came from. Malformed input raises :class:`InputError` naming the
file, the line and the fix.

Memory stays bounded whatever the file holds (:class:`ReadLimits`): text formats are read one
line at a time, each line at most ``max_line_bytes`` (read in bounded chunks, so a file without
newlines is never held whole); Parquet is read in batches; only ``.json`` and ``.parquet.gz``,
which cannot be streamed, are read whole, up to ``max_whole_file_bytes``. JSON nesting is
bounded (``max_json_depth``), so a deeply nested value is an error, never a ``RecursionError``.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.io import checked
from svm_toolkit.schema import COL

#: Column name given to the lines of a plain-text list.
TXT_COLUMN: Final = COL.url


#: Longest line of a txt/csv/tsv/jsonl list, in bytes (``--max-line-bytes``).
MAX_LINE_BYTES: Final = 1 << 20
#: Most bytes (after decompression) of a file that must be parsed whole: ``.json`` and
#: ``.parquet.gz`` (``--max-whole-file-mb``); every other format is streamed.
MAX_WHOLE_FILE_BYTES: Final = 64 << 20
#: Deepest nesting of JSON values in a row (scrapers nest a few levels).
MAX_JSON_DEPTH: Final = 64
#: Most distinct columns in one file (JSON rows may each bring their own keys).
MAX_COLUMNS: Final = 1000
#: Rows per Parquet batch, and most uncompressed bytes in one Parquet row group.
PARQUET_BATCH_ROWS: Final = 8192
MAX_ROW_GROUP_BYTES: Final = 1 << 30
#: Column types a URL or id column may have in a Parquet list.
TEXT_TYPES: Final = ("string", "large_string", "string_view")


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds that keep reading one URL list in bounded memory.

    Attributes:
        max_line_bytes: longest line of a txt/csv/tsv/jsonl file, bytes (newline excluded).
        max_whole_file_bytes: most bytes (decompressed) of a ``.json`` or ``.parquet.gz`` file,
            which are parsed whole.
        max_json_depth: deepest nesting of JSON arrays/objects within a row.
        max_columns: most distinct columns in one file.
    """

    max_line_bytes: int = MAX_LINE_BYTES
    max_whole_file_bytes: int = MAX_WHOLE_FILE_BYTES
    max_json_depth: int = MAX_JSON_DEPTH
    max_columns: int = MAX_COLUMNS

    def __post_init__(self) -> None:
        for name in ("max_line_bytes", "max_whole_file_bytes", "max_json_depth", "max_columns"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


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


@dataclass(frozen=True, slots=True)
class InputFile:
    """One URL list, opened: its columns now, its rows streamed by :meth:`rows`.

    Attributes:
        path: the file.
        columns: its columns in file order.
        types: each column's Arrow type, for typed formats (Parquet); empty otherwise.
        limits: the bounds used while reading.
    """

    path: Path
    columns: tuple[str, ...]
    types: Mapping[str, pa.DataType]
    limits: ReadLimits
    _reader: Reader

    def rows(self) -> Iterator[InputRow]:
        """Read the rows again from the start, one at a time, in bounded memory.

        Raises:
            InputError: a malformed row, a line over the limit, a bad gzip stream, not UTF-8.
        """
        with _opened(self.path) as stream:
            yield from self._reader(self.path, stream, self.limits).rows


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What a format reader returns: its columns (when known up front) and a row stream."""

    columns: tuple[str, ...] | None
    rows: Iterator[InputRow]
    types: Mapping[str, pa.DataType] = field(default_factory=dict)


Reader = Callable[[Path, IO[bytes], ReadLimits], _Parsed]
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


def open_input(path: Path, limits: ReadLimits = ReadLimits()) -> InputFile:
    """Open one URL list; the format comes from the suffix (``.csv``, ``.jsonl.gz``, …).

    The columns are known on return (for JSON Lines this takes one streaming pass); the rows
    are read by :meth:`InputFile.rows`, as often as needed, without holding the file.

    Raises:
        InputError: missing or unreadable file, unknown format, malformed header or row.
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
    with _opened(path) as stream:
        parsed = reader(path, stream, limits)
        columns = parsed.columns
        if columns is None:  # columns are the union over all rows: one pass to find them
            columns = _union_columns(parsed.rows, path, limits)
    return InputFile(path, columns, parsed.types, limits, reader)


def read_input(path: Path, limits: ReadLimits = ReadLimits()) -> InputTable:
    """Read one whole URL list into memory (small lists, tests); see :func:`open_input`.

    Raises:
        InputError: as :func:`open_input`, or the file holds no rows.
    """
    opened = open_input(path, limits)
    rows = list(opened.rows())
    if not rows:
        raise InputError(f"{path}: no rows; the file holds no URLs")
    return InputTable(path, opened.columns, rows)


@contextmanager
def _opened(path: Path) -> Iterator[IO[bytes]]:
    """Open ``path`` (decompressing ``.gz``), turning read failures into :class:`InputError`."""
    gz = path.suffix.lower() == ".gz"
    try:
        with path.open("rb") as raw:
            yield gzip.GzipFile(fileobj=raw) if gz else raw  # type: ignore[misc]
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a valid gzip file ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _lines(path: Path, stream: IO[bytes], limits: ReadLimits) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` reading at most ``max_line_bytes`` + 1 bytes at a time.

    Raises:
        InputError: a line longer than the limit (so a file without newlines is never held
            whole), or a line that is not UTF-8.
    """
    limit = limits.max_line_bytes
    number = 0
    while chunk := stream.readline(limit + 1):
        number += 1
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            raise InputError(
                f"{path.name}:{number}: line longer than {limit:,} bytes; is this a URL list? "
                "(raise the limit with --max-line-bytes)"
            )
        try:
            text = chunk.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path.name}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start} of the "
                "line); re-save the file as UTF-8"
            ) from None
        yield number, text


def _read_whole(path: Path, stream: IO[bytes], limits: ReadLimits, fix: str) -> bytes:
    """Read a file that can only be parsed whole, refusing one over the limit (``fix`` says why)."""
    limit = limits.max_whole_file_bytes
    data: bytes = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"{path}: more than {limit / 2**20:,.0f} MiB; {fix} (or raise the limit with "
            "--max-whole-file-mb)"
        )
    return data


@_reader(".txt", ".list")
def _read_txt(path: Path, stream: IO[bytes], limits: ReadLimits) -> _Parsed:
    """One URL per line; blank lines and lines starting with ``#`` are skipped."""

    def rows() -> Iterator[InputRow]:
        for number, line in _lines(path, stream, limits):
            text = line.strip()
            if text and not text.startswith("#"):
                yield InputRow(f"{path.name}:{number}", {TXT_COLUMN: text})

    return _Parsed((TXT_COLUMN,), rows())


def _read_delimited(path: Path, stream: IO[bytes], limits: ReadLimits, delimiter: str) -> _Parsed:
    lines = (text for _, text in _lines(path, stream, limits))
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"{path.name}:{reader.line_num}: malformed header ({exc})") from None
    if header is None:
        return _Parsed((), iter(()))
    header = [h.strip() for h in header]
    if not all(header) or len(set(header)) != len(header):
        raise InputError(
            f"{path.name}:1: the header row needs unique, non-empty column names, got "
            f"{_shown(header)}"
        )
    if len(header) > limits.max_columns:
        raise InputError(f"{path.name}:1: {len(header):,} columns (at most {limits.max_columns})")

    def rows() -> Iterator[InputRow]:
        try:
            for fields in reader:
                if not any(f.strip() for f in fields):
                    continue
                if len(fields) != len(header):
                    raise InputError(
                        f"{path.name}:{reader.line_num}: {len(fields)} fields, the header has "
                        f"{len(header)}; quote values that contain {delimiter!r}"
                    )
                values = {h: (v.strip() or None) for h, v in zip(header, fields, strict=True)}
                yield InputRow(f"{path.name}:{reader.line_num}", values)
        except csv.Error as exc:
            raise InputError(f"{path.name}:{reader.line_num}: malformed row ({exc})") from None

    return _Parsed(tuple(header), rows())


@_reader(".csv")
def _read_csv(path: Path, stream: IO[bytes], limits: ReadLimits) -> _Parsed:
    """Comma-separated values with a header row."""
    return _read_delimited(path, stream, limits, ",")


@_reader(".tsv", ".tab")
def _read_tsv(path: Path, stream: IO[bytes], limits: ReadLimits) -> _Parsed:
    """Tab-separated values with a header row."""
    return _read_delimited(path, stream, limits, "\t")


@_reader(".jsonl", ".ndjson")
def _read_jsonl(path: Path, stream: IO[bytes], limits: ReadLimits) -> _Parsed:
    """One JSON object per line."""

    def rows() -> Iterator[InputRow]:
        for number, line in _lines(path, stream, limits):
            if not line.strip():
                continue
            ref = f"{path.name}:{number}"
            value = _parse_json(line, ref, limits)
            if not isinstance(value, dict):
                raise InputError(
                    f"{ref}: expected a JSON object per line, got {type(value).__name__}"
                )
            yield InputRow(ref, value)

    return _Parsed(None, rows())


@_reader(".json")
def _read_json(path: Path, stream: IO[bytes], limits: ReadLimits) -> _Parsed:
    """A JSON array of objects (or of URL strings), parsed whole (size-limited)."""
    data = _read_whole(
        path,
        stream,
        limits,
        "a .json array is parsed whole: write one object per line (.jsonl), which is streamed",
    )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8"
        ) from None
    value = _parse_json(text, path.name, limits)
    del data, text
    if not isinstance(value, list):
        raise InputError(
            f"{path.name}: expected a JSON array of objects; for one object per line use .jsonl"
        )

    def rows() -> Iterator[InputRow]:
        for index, item in enumerate(value):
            ref = f"{path.name}:item {index}"
            if isinstance(item, str):
                item = {TXT_COLUMN: item}
            if not isinstance(item, dict):
                raise InputError(
                    f"{ref}: expected an object or a URL string, got {type(item).__name__}"
                )
            yield InputRow(ref, item)

    return _Parsed(None, rows())


def _parse_json(text: str, ref: str, limits: ReadLimits) -> Any:
    """Parse JSON text, refusing malformed input and nesting deeper than the limit."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = ref if ":" in ref else f"{ref}:{exc.lineno}"
        raise InputError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:  # nested deeper than Python's parser goes
        value = None
    else:
        if not _deeper_than(value, limits.max_json_depth):
            return value
    raise InputError(
        f"{ref}: JSON nested deeper than {limits.max_json_depth} levels; flatten the values "
        "(a URL list needs a few levels at most)"
    )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays/objects more than ``limit`` levels (an iterative walk)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


@_reader(".parquet", ".pq")
def _read_parquet(path: Path, stream: IO[bytes], limits: ReadLimits) -> _Parsed:
    """A Parquet table, read in batches; rows are referenced by 1-based row number."""
    source: Any = path
    if path.suffix.lower() == ".gz":
        source = pa.BufferReader(
            _read_whole(
                path,
                stream,
                limits,
                "a .parquet.gz file is decompressed whole: decompress it (.parquet is streamed)",
            )
        )
    try:
        parquet = pq.ParquetFile(source)
        schema = parquet.schema_arrow
        metadata = parquet.metadata
        groups = [metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)]
    except checked.READ_ERRORS as exc:
        raise checked.unreadable(path, exc) from None
    if groups and max(groups) > MAX_ROW_GROUP_BYTES:
        raise InputError(
            f"{path.name}: a row group of {max(groups) / 2**20:,.0f} MiB uncompressed (at most "
            f"{MAX_ROW_GROUP_BYTES / 2**20:,.0f} MiB); rewrite it with smaller row groups "
            "(pyarrow: pq.write_table(table, path, row_group_size=100_000))"
        )
    if len(schema) > limits.max_columns:
        raise InputError(f"{path.name}: {len(schema):,} columns (at most {limits.max_columns})")

    def rows() -> Iterator[InputRow]:
        number = 0
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                for values in batch.to_pylist():
                    number += 1
                    yield InputRow(f"{path.name}:row {number}", values)
        except checked.READ_ERRORS as exc:
            raise checked.unreadable(path, exc, where=f"after row {number}") from None

    return _Parsed(tuple(schema.names), rows(), {f.name: f.type for f in schema})


def is_text_type(data_type: pa.DataType) -> bool:
    """Whether a Parquet column of this type holds text (URLs, ids).

    Strings of any width, dictionary-encoded strings (pandas categoricals) and an all-null
    column count as text.
    """
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    return str(data_type) in TEXT_TYPES or pa.types.is_null(data_type)


def _union_columns(rows: Iterable[InputRow], path: Path, limits: ReadLimits) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.values))
        if len(seen) > limits.max_columns:
            raise InputError(
                f"{row.ref}: more than {limits.max_columns} distinct keys in the file; keep the "
                "rows' keys the same (a URL list needs a few columns)"
            )
    return tuple(seen)


def _shown(values: list[str]) -> str:
    text = repr(values)
    return text if len(text) <= 200 else text[:200] + "..."
