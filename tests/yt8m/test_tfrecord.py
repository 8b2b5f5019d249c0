from __future__ import annotations

import gzip
import random
import struct
import zlib
from pathlib import Path

import google_crc32c
import pytest

from svm_toolkit.yt8m.tfrecord import (
    Compression,
    FramingError,
    RecordError,
    detect_compression,
    frame,
    is_tfrecord_name,
    iter_records,
    masked_crc,
    write_records,
)


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
        (lambda b: b[:-3], r"file ends inside the record \(truncated"),
        (lambda b: b[:25], r"file ends inside the record header"),
        (lambda b: b[:-5] + bytes([b[-5] ^ 1]) + b[-4:], r"data CRC mismatch"),
        (lambda b: b[:21] + bytes([b[21] ^ 1]) + b[22:], r"length CRC mismatch"),
    ],
)
def test_corruption_names_file_record_and_offset(tmp_path: Path, mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.tfrecord"
    good = frame(b"first") + frame(b"second record")
    path.write_bytes(mangle(good))
    with pytest.raises(FramingError, match=message) as err:
        list(iter_records(path))
    assert str(err.value).startswith(f"{path.absolute()}: record 1 (byte offset 21): ")
    assert str(err.value).endswith("; re-download the file")
    assert err.value.records_before == 1


def test_not_a_tfrecord_file(tmp_path: Path) -> None:
    path = tmp_path / "v.tfrecord"
    path.write_text("Index,Name\n14,Music video\n")
    with pytest.raises(RecordError, match=r"record 0 \(byte offset 0\): length CRC mismatch"):
        list(iter_records(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot read"):
        list(iter_records(tmp_path / "nope.tfrecord"))


PAYLOADS = [b"", b"a", bytes(range(256)) * 40, b"last"]


def _compressed(kind: Compression, data: bytes) -> bytes:
    """What ``TFRecordOptions(compression_type=kind)`` writes: one stream of framed records."""
    return gzip.compress(data) if kind is Compression.GZIP else zlib.compress(data)


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZLIB])
def test_compressed_files_are_read_streaming(tmp_path: Path, kind: Compression) -> None:
    path = tmp_path / "c.tfrecord"
    path.write_bytes(_compressed(kind, b"".join(frame(p) for p in PAYLOADS)))
    records = list(iter_records(path))
    assert [r.data for r in records] == PAYLOADS
    assert [r.offset for r in records] == [0, 16, 33, 33 + 16 + 10240]
    assert {r.compression for r in records} == {kind}
    assert records[-1].read_to == path.stat().st_size
    assert records[2].where.endswith(f"record 2 (byte offset 33 in the decompressed {kind} stream)")


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    path = tmp_path / "m.tfrecord.gz"
    path.write_bytes(gzip.compress(frame(b"one")) + gzip.compress(frame(b"two") + frame(b"3")))
    assert [r.data for r in iter_records(path)] == [b"one", b"two", b"3"]


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZLIB])
def test_compressed_stream_cut_short_or_corrupt(tmp_path: Path, kind: Compression) -> None:
    big = bytes(range(256)) * 4000  # > 1 MiB decompressed: the reader works in chunks
    noise = random.Random(5).randbytes(300_000)
    whole = _compressed(kind, frame(b"first") + frame(big) + frame(noise) + frame(b"last"))
    path = tmp_path / "c.tfrecord"
    path.write_bytes(whole[: len(whole) - 200])
    got = []
    with pytest.raises(FramingError, match=f"{kind} stream is corrupt or cut short") as err:
        got.extend(r.data for r in iter_records(path))
    assert got[:2] == [b"first", big] and err.value.records_before == len(got)
    assert f"in the decompressed {kind} stream" in str(err.value)


def test_a_plain_length_that_looks_like_zlib_is_plain(tmp_path: Path) -> None:
    payload = b"x" * (0x9C78)  # the length's first bytes are 78 9c, a zlib header
    path = tmp_path / "p.tfrecord"
    path.write_bytes(frame(payload))
    assert frame(payload)[:2] == b"\x78\x9c"
    assert detect_compression(path.read_bytes()[:12]) is Compression.NONE
    assert [r.data for r in iter_records(path)] == [payload]


def test_detect_compression() -> None:
    assert detect_compression(gzip.compress(frame(b"a"))) is Compression.GZIP
    for level in (1, 6, 9):  # 78 01 / 78 5e / 78 9c / 78 da
        assert detect_compression(zlib.compress(frame(b"a"), level)) is Compression.ZLIB
    assert detect_compression(b"") is Compression.NONE


def test_folder_names() -> None:
    for name in ("train0000.tfrecord", "a.tfrecords", "a.tfr", "a.tfrecord.gz", "b.tfr.zlib"):
        assert is_tfrecord_name(name), name
    for name in ("a.tfrecord.tmp", "vocabulary.csv", "a.gz", "a.tfrecord.part"):
        assert not is_tfrecord_name(name), name
