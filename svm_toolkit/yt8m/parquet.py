"""Frame-level feature shards written straight from the records' bytes.

YouTube-8M stores each feature value as one byte ``q``; the shards hold
``FLOAT16_OF_BYTE[q]`` (the official dequantisation rounded to float16). Parquet says exactly
that with a dictionary: the column chunk's dictionary page holds the 256 float16 values and its
data pages the indices, bit-packed at 8 bits, which are the record's bytes as they are. So every
reader sees the same ``list<fixed_size_list<float16>[D]>`` column as before (pyarrow, pandas,
polars, DuckDB and Hugging Face ``datasets`` all read ``RLE_DICTIONARY``), stored in one byte
per value, and writing it is a copy of the bytes: no dequantisation, no per-value work.

pyarrow's writer cannot take that shortcut (it computes the repetition and definition levels
value by value, and writes float16 through per-value byte arrays: 3.5 ms per 250-s record), so
this module writes the file itself: a Parquet 2.6 file with uncompressed pages, no statistics,
and the footer pyarrow would write for the same Arrow schema (``ARROW:schema`` included, so
readers get ``fixed_size_list`` back). Only the frame-level feature schema is handled
(``sample_id``, ``embeddings``, ``timestamps_s``: :func:`svm_toolkit.schema.feature_schema` with
``sequence=True``).

Format reference: apache/parquet-format ``parquet.thrift`` (compact protocol) and
``Encodings.md`` (RLE/bit-packing hybrid, dictionary encoding).
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

# -- Parquet's enums (parquet.thrift) ------------------------------------------------------------
_BYTE_ARRAY, _FIXED_LEN_BYTE_ARRAY, _FLOAT = 6, 7, 4
_REQUIRED, _OPTIONAL, _REPEATED = 0, 1, 2
_UTF8, _LIST = 0, 3  # ConvertedType
_PLAIN, _RLE, _RLE_DICTIONARY = 0, 3, 8
_DATA_PAGE, _DICTIONARY_PAGE = 0, 2
_UNCOMPRESSED = 0
# -- Thrift compact protocol field types ---------------------------------------------------------
_I32, _I64, _BINARY, _LIST_T, _STRUCT = 5, 6, 8, 9, 12

_MAGIC: Final = b"PAR1"
#: The name of a list's items in Parquet, whatever Arrow calls them (pyarrow's compliant nesting).
_ITEM: Final = "element"
#: Bits per dictionary index: one byte, so the indices are the records' bytes.
_INDEX_BITS: Final = 8

Field = tuple[int, int, object]
"""A Thrift struct field: (id, compact type, value; ``None`` is left out)."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _value(kind: int, value: object) -> bytes:
    if kind in (_I32, _I64):
        assert isinstance(value, int)
        return _varint(_zigzag(value))
    if kind == _BINARY:
        data = value.encode() if isinstance(value, str) else value
        assert isinstance(data, bytes)
        return _varint(len(data)) + data
    if kind == _STRUCT:  # already encoded by _struct
        assert isinstance(value, bytes)
        return value
    if kind == _LIST_T:
        assert isinstance(value, tuple)
        item_kind, items = value
        header = (
            bytes([len(items) << 4 | item_kind])
            if len(items) < 15
            else (bytes([0xF0 | item_kind]) + _varint(len(items)))
        )
        return header + b"".join(_value(item_kind, item) for item in items)
    raise ValueError(f"thrift type {kind} is not written here")


def _struct(fields: Iterable[Field]) -> bytes:
    """Encode a Thrift struct (compact protocol); fields in increasing id order."""
    out = bytearray()
    last = 0
    for field_id, kind, value in fields:
        if value is None:
            continue
        delta = field_id - last
        if 0 < delta <= 15:
            out.append(delta << 4 | kind)
        else:
            out.append(kind)
            out += _varint(_zigzag(field_id))
        last = field_id
        out += _value(kind, value)
    out.append(0)
    return bytes(out)


_EMPTY: Final = _struct(())


def _rle(runs: Iterable[tuple[int, int]]) -> bytes:
    """RLE runs of the hybrid encoding for levels of at most 8 bits: ``(value, count)`` pairs."""
    return b"".join(_varint(count << 1) + bytes([value]) for value, count in runs if count)


def _levels(encoded: bytes) -> bytes:
    """A data page v1 level block: its length (4 bytes, little-endian), then the runs."""
    return len(encoded).to_bytes(4, "little") + encoded


@functools.lru_cache(maxsize=4096)
def _page_header(kind: int, size: int, num_values: int, encoding: int) -> bytes:
    """A PageHeader (cached: videos of the same length have the same headers)."""
    if kind == _DICTIONARY_PAGE:
        header: Field = (7, _STRUCT, _struct([(1, _I32, num_values), (2, _I32, encoding)]))
    else:
        data = _struct(
            [(1, _I32, num_values), (2, _I32, encoding), (3, _I32, _RLE), (4, _I32, _RLE)]
        )
        header = (5, _STRUCT, data)
    return _struct([(1, _I32, kind), (2, _I32, size), (3, _I32, size), header])


def _schema_elements(schema: pa.Schema) -> list[bytes]:
    """The Parquet schema pyarrow writes for the frame-level feature schema, depth first."""
    elements = [_struct([(3, _I32, _REQUIRED), (4, _BINARY, "schema"), (5, _I32, len(schema))])]
    for field in schema:
        repetition = _OPTIONAL if field.nullable else _REQUIRED
        if field.type == pa.string():
            elements.append(_leaf(field.name, repetition, _BYTE_ARRAY, utf8=True))
            continue
        if not pa.types.is_list(field.type):
            raise ValueError(f"{field.name}: {field.type} is not written by this module")
        item = field.type.value_field
        elements += _list_group(field.name, repetition)
        item_repetition = _OPTIONAL if item.nullable else _REQUIRED
        if pa.types.is_fixed_size_list(item.type):
            elements += _list_group(_ITEM, item_repetition)
            leaf = item.type.value_field
            if leaf.type != pa.float16():
                raise ValueError(f"{field.name}: {leaf.type} vectors are not written here")
            leaf_repetition = _OPTIONAL if leaf.nullable else _REQUIRED
            elements.append(_leaf(_ITEM, leaf_repetition, _FIXED_LEN_BYTE_ARRAY, float16=True))
        elif item.type == pa.float32():
            elements.append(_leaf(_ITEM, item_repetition, _FLOAT))
        else:
            raise ValueError(f"{field.name}: {field.type} is not written by this module")
    return elements


def _list_group(name: str, repetition: int) -> list[bytes]:
    logical = _struct([(3, _STRUCT, _EMPTY)])  # LogicalType.LIST
    group = [(3, _I32, repetition), (4, _BINARY, name), (5, _I32, 1), (6, _I32, _LIST)]
    middle = [(3, _I32, _REPEATED), (4, _BINARY, "list"), (5, _I32, 1)]
    return [_struct([*group, (10, _STRUCT, logical)]), _struct(middle)]


def _leaf(
    name: str, repetition: int, kind: int, *, utf8: bool = False, float16: bool = False
) -> bytes:
    fields: list[Field] = [(1, _I32, kind)]
    if float16:
        fields.append((2, _I32, 2))
    fields += [(3, _I32, repetition), (4, _BINARY, name)]
    if utf8:
        fields += [(6, _I32, _UTF8), (10, _STRUCT, _struct([(1, _STRUCT, _EMPTY)]))]
    if float16:
        fields.append((10, _STRUCT, _struct([(15, _STRUCT, _EMPTY)])))
    return _struct(fields)


@functools.lru_cache(maxsize=8)
def _key_values(schema: pa.Schema) -> tuple[tuple[bytes, bytes], ...]:
    """The footer's key-value metadata pyarrow writes for ``schema`` (``ARROW:schema`` and ours)."""
    buffer = io.BytesIO()
    pq.write_table(schema.empty_table(), buffer)
    buffer.seek(0)
    found = pq.read_metadata(buffer).metadata or {}
    return tuple(found.items())


class _Chunk:
    """One column chunk being written: its pages' offsets and sizes."""

    def __init__(self, sink: BinaryIO, path: Sequence[str], kind: int) -> None:
        self.sink = sink
        self.path = path
        self.kind = kind
        self.start = sink.tell()
        self.dictionary_offset: int | None = None
        self.data_offset: int | None = None
        self.end = self.start
        self.num_values = 0
        self.encodings: dict[int, None] = {}

    def page(
        self, kind: int, num_values: int, encoding: int, parts: Sequence[bytes | memoryview]
    ) -> None:
        """Write one uncompressed page: its header, then ``parts`` as they are."""
        offset = self.sink.tell()
        if kind == _DICTIONARY_PAGE:
            self.dictionary_offset = offset
        else:
            if self.data_offset is None:
                self.data_offset = offset
            self.num_values += num_values
            self.encodings[_RLE] = None
        self.encodings[encoding] = None
        size = sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)
        self.sink.write(_page_header(kind, size, num_values, encoding))
        for part in parts:
            self.sink.write(part)
        self.end = self.sink.tell()

    def metadata(self) -> bytes:
        """The ColumnChunk struct of the footer."""
        size = self.end - self.start
        meta = _struct(
            [
                (1, _I32, self.kind),
                (2, _LIST_T, (_I32, tuple(self.encodings))),
                (3, _LIST_T, (_BINARY, tuple(self.path))),
                (4, _I32, _UNCOMPRESSED),
                (5, _I64, self.num_values),
                (6, _I64, size),
                (7, _I64, size),
                (9, _I64, self.data_offset),
                (11, _I64, self.dictionary_offset),
            ]
        )
        return _struct([(2, _I64, self.start), (3, _STRUCT, meta)])


class FrameShardFile:
    """One frame-level Parquet file being written, a row group at a time.

    Each row group's pages are written as it comes, and handed to the disk at once
    (``posix_fadvise(DONTNEED)`` starts their write-back and keeps them out of the page cache),
    so the disk writes while the caller goes on and the final fsync waits for little. The footer
    is written by :meth:`finish`.

    Args:
        path: the file to write (a temp path; the caller fsyncs and renames it).
        schema: the Arrow schema readers get, with its metadata (``embeddings`` as
            ``list<fixed_size_list<float16>[D]>``).
        dictionary: the 256 float16 values the stored bytes stand for.

    Raises:
        ValueError: a schema of another shape, or another dictionary.
    """

    def __init__(self, path: Path, schema: pa.Schema, dictionary: npt.NDArray[np.float16]) -> None:
        if len(dictionary) != 1 << _INDEX_BITS or dictionary.dtype != np.float16:
            raise ValueError("the dictionary must hold 256 float16 values")
        self.schema = schema
        self.dictionary = dictionary
        self._elements = _schema_elements(schema)
        self._row_groups: list[bytes] = []
        self.rows = 0
        self.broken = False
        self._size = 0
        self._sink: BinaryIO = path.open("wb")
        self._sink.write(_MAGIC)

    @property
    def size(self) -> int:
        """Bytes written so far (the file's size once finished)."""
        return self._size if self._sink.closed else self._sink.tell()

    def write(self, table: pa.Table, row_group_rows: int) -> None:
        """Append rows as row groups of at most ``row_group_rows``.

        An error while a row group is written cuts the file back to the row groups before it,
        which :meth:`finish` still commits; where even that fails, :attr:`broken` is set.

        Args:
            table: ``sample_id`` (string), ``embeddings`` (``list<fixed_size_list<uint8>[D]>``:
                the records' bytes, each an index into the dictionary) and ``timestamps_s``
                (``list<float32>``), no nulls.
            row_group_rows: rows (videos) per row group.
        """
        for batch in table.select(self.schema.names).to_batches():  # aligned chunks, no copies
            for first in range(0, batch.num_rows, row_group_rows):
                start = self._sink.tell()
                try:
                    self._row_group(batch.slice(first, row_group_rows), start)
                except BaseException:
                    self._cut(start)
                    raise

    def _row_group(self, part: pa.RecordBatch, start: int) -> None:
        sink = self._sink
        chunks = [
            _write_column(sink, self.schema.field(n), part.column(n), self.dictionary)
            for n in self.schema.names
        ]
        size = sink.tell() - start
        _write_back(sink, start, size)
        columns = tuple(c.metadata() for c in chunks)
        self._row_groups.append(
            _struct(
                [
                    (1, _LIST_T, (_STRUCT, columns)),
                    (2, _I64, size),
                    (3, _I64, part.num_rows),
                    (5, _I64, start),
                    (6, _I64, size),
                ]
            )
        )
        self.rows += part.num_rows

    def _cut(self, start: int) -> None:
        """Cut the file back to its complete row groups, or mark it :attr:`broken`."""
        try:
            self._sink.seek(start)  # flushes what is buffered first
            self._sink.truncate()
        except (OSError, ValueError):
            self.broken = True

    def finish(self) -> None:
        """Write the footer and close the file."""
        key_values = tuple(
            _struct([(1, _BINARY, k), (2, _BINARY, v)]) for k, v in _key_values(self.schema)
        )
        footer = _struct(
            [
                (1, _I32, 2),
                (2, _LIST_T, (_STRUCT, tuple(self._elements))),
                (3, _I64, self.rows),
                (4, _LIST_T, (_STRUCT, tuple(self._row_groups))),
                (5, _LIST_T, (_STRUCT, key_values)),
                (6, _BINARY, f"svm_toolkit version {_version()}"),
            ]
        )
        with self._sink:
            self._sink.write(footer + len(footer).to_bytes(4, "little") + _MAGIC)
            self._size = self._sink.tell()

    def close(self) -> None:
        """Close the file without a footer (the caller removes it)."""
        self._sink.close()


def _write_back(sink: BinaryIO, start: int, size: int) -> None:
    """Start writing ``size`` bytes from ``start`` to the disk now, without waiting for it."""
    if hasattr(os, "posix_fadvise"):  # Linux; elsewhere the final fsync writes everything
        sink.flush()
        os.posix_fadvise(sink.fileno(), start, size, os.POSIX_FADV_DONTNEED)


def write_frame_shard(
    table: pa.Table,
    path: Path,
    schema: pa.Schema,
    dictionary: npt.NDArray[np.float16],
    *,
    row_group_rows: int,
) -> None:
    """Write frame-level features whose vectors are dictionary indices as one Parquet file.

    Args:
        table: the rows (see :meth:`FrameShardFile.write`).
        path: the file to write (a temp path; the caller fsyncs and renames it).
        schema: the Arrow schema readers get, with its metadata.
        dictionary: the 256 float16 values the bytes stand for.
        row_group_rows: rows (videos) per row group.

    Raises:
        ValueError: a schema or table of another shape.
    """
    shard = FrameShardFile(path, schema, dictionary)
    try:
        shard.write(table, row_group_rows)
        shard.finish()
    except BaseException:
        shard.close()
        raise


@functools.cache
def _version() -> str:
    try:
        return metadata.version("svm_toolkit")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write_column(
    sink: BinaryIO, field: pa.Field, array: pa.Array, dictionary: npt.NDArray[np.float16]
) -> _Chunk:
    """Write one row group's column chunk: ids and timestamps in one page, vectors per row."""
    if field.type == pa.string():
        chunk = _Chunk(sink, [field.name], _BYTE_ARRAY)
        values = [v.encode() for v in array.to_pylist()]
        body = b"".join(len(v).to_bytes(4, "little") + v for v in values)
        chunk.page(_DATA_PAGE, len(values), _PLAIN, [body])
        return chunk
    lengths = array.value_lengths().to_numpy(zero_copy_only=False)
    item = field.type.value_field
    if pa.types.is_fixed_size_list(item.type):
        dim = item.type.list_size
        path = [field.name, "list", _ITEM, "list", _ITEM]
        chunk = _Chunk(sink, path, _FIXED_LEN_BYTE_ARRAY)
        chunk.page(_DICTIONARY_PAGE, len(dictionary), _PLAIN, [dictionary.tobytes()])
        indices = array.flatten().flatten().to_numpy(zero_copy_only=True)
        if indices.dtype != np.uint8:
            raise ValueError(f"{field.name}: dictionary indices must be uint8, got {indices.dtype}")
        _vector_pages(chunk, lengths, dim, indices)
        return chunk
    chunk = _Chunk(sink, [field.name, "list", _ITEM], _FLOAT)
    rep: list[tuple[int, int]] = []
    for n in lengths.tolist():
        rep += [(0, 1), (1, max(n - 1, 0))]
    defined = [(2 if n else 0, max(n, 1)) for n in lengths.tolist()]
    values = array.flatten().to_numpy(zero_copy_only=True).astype("<f4", copy=False)
    parts: list[bytes | memoryview] = [_levels(_rle(rep)), _levels(_rle(defined)), values.data]
    chunk.page(_DATA_PAGE, int(np.maximum(lengths, 1).sum()), _PLAIN, parts)
    return chunk


def _vector_pages(
    chunk: _Chunk, lengths: npt.NDArray[np.int32], dim: int, indices: npt.NDArray[np.uint8]
) -> None:
    """One data page per row: levels as runs, the row's bytes as one bit-packed run.

    Levels of ``list<fixed_size_list<float16>>`` (nullable items): repetition 0 at a row's
    first value, 1 at each later second's first, 2 within a second; definition 4 for every
    value, and one entry (0, 0) for an empty row.
    """
    empty = [_levels(_rle([(0, 1)])), _levels(_rle([(0, 1)])), bytes([_INDEX_BITS])]
    start = 0
    for n in lengths.tolist():
        if not n:
            chunk.page(_DATA_PAGE, 1, _RLE_DICTIONARY, empty)
            continue
        count = n * dim
        values = indices[start : start + count]
        start += count
        parts: list[bytes | memoryview] = [*_row_levels(n, dim), values.data]
        if count % 8:  # the bit-packed run holds whole groups of 8 values
            parts.append(bytes(-count % 8))
        chunk.page(_DATA_PAGE, count, _RLE_DICTIONARY, parts)


@functools.lru_cache(maxsize=1024)
def _row_levels(seconds: int, dim: int) -> tuple[bytes, bytes, bytes]:
    """A row's level blocks and its values' run header (cached: they depend on its length).

    Repetition 0 at the row's first value, 1 at each later second's first, 2 within a second;
    definition 4 everywhere; then the bit width (8) and the bit-packed run's header.
    """
    first = _rle([(0, 1), (2, dim - 1)])
    later = _rle([(1, 1), (2, dim - 1)])
    count = seconds * dim
    run = bytes([_INDEX_BITS]) + _varint((count + 7) // 8 << 1 | 1)
    return _levels(first + later * (seconds - 1)), _levels(_rle([(4, count)])), run
