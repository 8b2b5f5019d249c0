"""TFRecord framing, read and written without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little-endian) | uint32 masked CRC-32C of the length bytes
    byte   data[length]           | uint32 masked CRC-32C of the data

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32). Every CRC is checked;
a mismatch or a file that ends inside a record raises :class:`RecordError` naming the file, the
record number and the byte offset.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import google_crc32c

from svm_toolkit.errors import InputError

_LENGTH: Final = struct.Struct("<Q")
_CRC: Final = struct.Struct("<I")
_MASK_DELTA: Final = 0xA282EAD8
#: Refuse records longer than this (bytes): a corrupt length would otherwise allocate gigabytes.
MAX_RECORD_BYTES: Final = 256 * 2**20


class RecordError(InputError):
    """A record is corrupt or cut short; the message names the file, record and offset."""


@dataclass(frozen=True, slots=True)
class Record:
    """One record's payload and where it was found.

    Attributes:
        path: the file.
        index: 0-based record number in the file.
        offset: byte offset of the record's frame in the file.
        data: the payload (a serialised ``tf.train.Example`` or ``SequenceExample``).
    """

    path: Path
    index: int
    offset: int
    data: bytes

    @property
    def ref(self) -> str:
        """``file.tfrecord:#17`` — how messages and manifests refer to the record."""
        return f"{self.path.name}:#{self.index}"


def masked_crc(data: bytes) -> int:
    """Return TFRecord's masked CRC-32C of ``data``."""
    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def iter_records(path: Path) -> Iterator[Record]:
    """Yield every record of a TFRecord file, checking both CRCs of each.

    Raises:
        RecordError: a CRC mismatch, an impossible length, or a record cut short.
        InputError: the file cannot be opened.
    """
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with fh:
        index = 0
        while True:
            offset = fh.tell()
            header = fh.read(_LENGTH.size + _CRC.size)
            if not header:
                return
            where = f"{path}: record #{index} at byte {offset}"
            if len(header) < _LENGTH.size + _CRC.size:
                raise RecordError(
                    f"{where}: file ends inside the record header (truncated download?)"
                )
            length_bytes = header[: _LENGTH.size]
            (length,) = _LENGTH.unpack(length_bytes)
            (length_crc,) = _CRC.unpack(header[_LENGTH.size :])
            if masked_crc(length_bytes) != length_crc:
                raise RecordError(
                    f"{where}: length CRC mismatch (corrupt file, or not a TFRecord file)"
                )
            if length > MAX_RECORD_BYTES:
                raise RecordError(
                    f"{where}: record claims {length:,} bytes (at most {MAX_RECORD_BYTES:,})"
                )
            body = fh.read(length + _CRC.size)
            if len(body) < length + _CRC.size:
                raise RecordError(f"{where}: file ends inside the record (truncated download?)")
            data = body[:length]
            (data_crc,) = _CRC.unpack(body[length:])
            if masked_crc(data) != data_crc:
                raise RecordError(f"{where}: data CRC mismatch (corrupt record)")
            yield Record(path, index, offset, data)
            index += 1


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
