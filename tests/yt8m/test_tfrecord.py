from __future__ import annotations

import struct
from pathlib import Path

import google_crc32c
import pytest

from svm_toolkit.yt8m.tfrecord import RecordError, frame, iter_records, masked_crc, write_records


def test_crc32c_and_its_mask() -> None:
    assert google_crc32c.value(b"123456789") == 0xE3069283  # the CRC-32C check value
    crc = 0xE3069283
    assert masked_crc(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_round_trip(tmp_path: Path) -> None:
    payloads = [b"", b"a", bytes(range(256)) * 40]
    path = tmp_path / "x.tfrecord"
    assert write_records(path, payloads) == 3
    records = list(iter_records(path))
    assert [r.data for r in records] == payloads
    assert [r.index for r in records] == [0, 1, 2]
    assert [r.offset for r in records] == [0, 16, 33]
    assert records[1].ref == "x.tfrecord:#1"
    assert path.stat().st_size == sum(16 + len(p) for p in payloads)
    assert frame(b"a")[:8] == struct.pack("<Q", 1)


def test_empty_file_has_no_records(tmp_path: Path) -> None:
    (tmp_path / "e.tfrecord").write_bytes(b"")
    assert list(iter_records(tmp_path / "e.tfrecord")) == []


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:-3], r"#1 at byte 21: file ends inside the record \(truncated"),
        (lambda b: b[:25], r"#1 at byte 21: file ends inside the record header"),
        (lambda b: b[:-5] + bytes([b[-5] ^ 1]) + b[-4:], r"#1 at byte 21: data CRC mismatch"),
        (lambda b: b[:21] + bytes([b[21] ^ 1]) + b[22:], r"#1 at byte 21: length CRC mismatch"),
    ],
)
def test_corruption_names_file_record_and_offset(tmp_path: Path, mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.tfrecord"
    good = frame(b"first") + frame(b"second record")
    path.write_bytes(mangle(good))
    with pytest.raises(RecordError, match=message) as err:
        list(iter_records(path))
    assert str(path) in str(err.value)


def test_not_a_tfrecord_file(tmp_path: Path) -> None:
    path = tmp_path / "v.tfrecord"
    path.write_text("Index,Name\n14,Music video\n")
    with pytest.raises(RecordError, match="#0 at byte 0: length CRC mismatch"):
        list(iter_records(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot read"):
        list(iter_records(tmp_path / "nope.tfrecord"))
