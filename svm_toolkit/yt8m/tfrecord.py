"""TFRecord framing, read and written without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little-endian) | uint32 masked CRC-32C of the length bytes
    byte   data[length]           | uint32 masked CRC-32C of the data

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32). Every CRC is checked;
a mismatch or a file that ends inside a record raises :class:`FramingError` as
``<path>: record N (byte offset B): <what>; <fix>``.

Compressed files, as ``tf.io.TFRecordOptions(compression_type="GZIP" | "ZLIB")`` writes them (the
whole file is one gzip or zlib stream of framed records), are read too, streaming: the kind is
told from the first bytes (:func:`detect_compression`), never from the file name, and byte
offsets then count in the decompressed stream.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, Final

import google_crc32c

from svm_toolkit.errors import InputError

_LENGTH: Final = struct.Struct("<Q")
_CRC: Final = struct.Struct("<I")
_HEADER: Final = _LENGTH.size + _CRC.size
_MASK_DELTA: Final = 0xA282EAD8
#: Refuse records longer than this (bytes): a corrupt length would otherwise allocate gigabytes.
MAX_RECORD_BYTES: Final = 256 * 2**20
#: Compressed bytes read at a time from a GZIP/ZLIB file.
_CHUNK: Final = 1 << 20
#: File names a folder is searched for (compression is told from the content, not the name).
TFRECORD_SUFFIXES: Final = (".tfrecord", ".tfrecords", ".tfr")
COMPRESSED_SUFFIXES: Final = (".gz", ".zlib", ".zz")
#: The same, as patterns for messages and ``--help``.
TFRECORD_PATTERNS: Final = "*.tfrecord, *.tfrecords, *.tfr, each optionally + .gz/.zlib/.zz"
REDOWNLOAD: Final = "re-download the file"


class Compression(StrEnum):
    """How a TFRecord file is stored (``tf.io.TFRecordOptions.compression_type``)."""

    NONE = ""
    GZIP = "GZIP"
    ZLIB = "ZLIB"


class RecordError(InputError):
    """A record is corrupt, cut short or not a YT8M record; the message names file and record."""


class FramingError(RecordError):
    """The framing is broken: the records after this one cannot be found (no resync).

    Attributes:
        where: ``<path>: record N (byte offset B)``.
        what: what is wrong.
        records_before: good records read from the file before this one.
    """

    def __init__(self, where: str, what: str, records_before: int) -> None:
        super().__init__(f"{where}: {what}; {REDOWNLOAD}")
        self.where = where
        self.what = what
        self.records_before = records_before


@dataclass(frozen=True, slots=True)
class Record:
    """One record's payload and where it was found.

    Attributes:
        path: the file.
        index: 0-based record number in the file.
        offset: byte offset of the record's frame in the file (in the decompressed stream for a
            compressed file).
        data: the payload (a serialised ``tf.train.Example`` or ``SequenceExample``).
        compression: how the file is stored.
        read_to: bytes of the file itself read so far (compressed bytes for a compressed file),
            for progress.
    """

    path: Path
    index: int
    offset: int
    data: bytes
    compression: Compression = Compression.NONE
    read_to: int = 0

    @property
    def ref(self) -> str:
        """``file.tfrecord:#17`` — how manifests refer to the record (``input_ref``)."""
        return f"{self.path.name}:#{self.index}"

    @property
    def where(self) -> str:
        """``/full/path.tfrecord: record 17 (byte offset 4242)`` — how messages name it."""
        return where(self.path, self.index, self.offset, self.compression)


def where(path: Path, index: int, offset: int, compression: Compression = Compression.NONE) -> str:
    """Name a record in messages: ``<full path>: record N (byte offset B)``.

    For a compressed file the offset counts in the decompressed stream, and the message says so.
    """
    plain = compression is Compression.NONE
    stream = "" if plain else f" in the decompressed {compression.value} stream"
    path = path if isinstance(path, Path) else Path(path)
    shown = path if path.is_absolute() else path.absolute()
    return f"{shown}: record {index} (byte offset {offset}{stream})"


def masked_crc(data: bytes) -> int:
    """Return TFRecord's masked CRC-32C of ``data``."""
    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def detect_compression(head: bytes) -> Compression:
    """Tell how a file is stored from its first 12 (or more) bytes.

    An uncompressed file's first record header checks out against its own CRC; only when it does
    not are the gzip (``1f 8b``) and zlib (``78 01|5e|9c|da``, any valid zlib header) magic bytes
    believed, since a valid length could start with those bytes too.
    """
    if (
        len(head) >= _HEADER
        and masked_crc(head[: _LENGTH.size]) == _CRC.unpack(head[_LENGTH.size : _HEADER])[0]
    ):
        return Compression.NONE
    if head[:2] == b"\x1f\x8b":
        return Compression.GZIP
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return Compression.ZLIB
    return Compression.NONE


class _Inflated:
    """A file-like ``read(n)`` over a gzip or zlib stream, decompressing ``_CHUNK`` at a time.

    Concatenated gzip members are read one after the other, as ``gzip`` does.
    """

    def __init__(self, raw: BinaryIO, compression: Compression) -> None:
        self._raw = raw
        self._wbits = 31 if compression is Compression.GZIP else 15
        self._inflater = zlib.decompressobj(self._wbits)
        self._buffer = bytearray()
        self._input = b""  # compressed bytes not yet given to the inflater

    def tell(self) -> int:
        """Compressed bytes read from the file so far."""
        return self._raw.tell()

    def read(self, size: int) -> bytes:
        """Return ``size`` decompressed bytes, fewer only at the end of the stream.

        Raises:
            zlib.error: corrupt compressed data.
            EOFError: the compressed stream is cut short.
        """
        while len(self._buffer) < size:
            if not self._input:
                self._input = self._raw.read(_CHUNK)
                if not self._input:
                    if self._inflater.eof:
                        break
                    raise EOFError("the compressed stream is cut short")
            if self._inflater.eof:  # another gzip member follows
                self._inflater = zlib.decompressobj(self._wbits)
            self._buffer += self._inflater.decompress(
                self._input, max(size - len(self._buffer), _CHUNK)
            )
            done = self._inflater.eof
            self._input = self._inflater.unused_data if done else self._inflater.unconsumed_tail
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def iter_records(path: Path) -> Iterator[Record]:
    """Yield every record of a TFRecord file (plain, GZIP or ZLIB), checking both CRCs of each.

    Raises:
        FramingError: a CRC mismatch, an impossible length, a record cut short, or a corrupt
            compressed stream; the records after it cannot be found.
        InputError: the file cannot be opened.
    """
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path.absolute()}: cannot read ({exc.strerror or exc})") from None
    with fh:
        compression = detect_compression(fh.read(_HEADER))
        fh.seek(0)
        plain = compression is Compression.NONE
        stream: BinaryIO | _Inflated = fh if plain else _Inflated(fh, compression)
        index = offset = 0
        while True:

            def here(index: int = index, offset: int = offset) -> str:  # only on errors
                return where(path, index, offset, compression)

            try:
                header = stream.read(_HEADER)
                if not header:
                    return
                if len(header) < _HEADER:
                    raise FramingError(
                        here(), "file ends inside the record header (truncated download?)", index
                    )
                length_bytes = header[: _LENGTH.size]
                (length,) = _LENGTH.unpack(length_bytes)
                (length_crc,) = _CRC.unpack(header[_LENGTH.size :])
                if masked_crc(length_bytes) != length_crc:
                    hint = _not_tfrecord_hint(path, index, compression)
                    raise FramingError(here(), f"length CRC mismatch ({hint})", index)
                if length > MAX_RECORD_BYTES:
                    raise FramingError(
                        here(),
                        f"record claims {length:,} bytes (at most {MAX_RECORD_BYTES:,})",
                        index,
                    )
                data = stream.read(length)  # the payload and its CRC apart: no copy of it
                crc = stream.read(_CRC.size)
                if len(data) < length or len(crc) < _CRC.size:
                    raise FramingError(
                        here(), "file ends inside the record (truncated download?)", index
                    )
            except (zlib.error, EOFError) as exc:
                what = f"the {compression.value} stream is corrupt or cut short ({exc})"
                raise FramingError(here(), what, index) from None
            (data_crc,) = _CRC.unpack(crc)
            if masked_crc(data) != data_crc:
                raise FramingError(here(), "data CRC mismatch (corrupt record)", index)
            yield Record(path, index, offset, data, compression, stream.tell())
            index += 1
            offset += _HEADER + length + _CRC.size


def _not_tfrecord_hint(path: Path, index: int, compression: Compression) -> str:
    if index or compression is not Compression.NONE:
        return "corrupt file"
    if path.suffix in COMPRESSED_SUFFIXES:
        return "corrupt file; its name says compressed, but it is not a gzip or zlib stream"
    return "corrupt file, or not a TFRecord file: neither plain, GZIP nor ZLIB"


def is_tfrecord_name(name: str) -> bool:
    """Whether a folder search takes this file: :data:`TFRECORD_PATTERNS`."""
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.endswith(TFRECORD_SUFFIXES)


def frame(data: bytes) -> bytes:
    """Return one record framed for a TFRecord file."""
    length = _LENGTH.pack(len(data))
    return length + _CRC.pack(masked_crc(length)) + data + _CRC.pack(masked_crc(data))


def write_records(path: Path, payloads: Iterable[bytes]) -> int:
    """Write payloads as a TFRecord file atomically; return the number of records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with tmp.open("wb") as fh:
            for data in payloads:
                fh.write(frame(data))
                count += 1
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count
