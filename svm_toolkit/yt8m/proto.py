"""The protobuf wire format of ``tf.train.Example`` and ``tf.train.SequenceExample``.

Only what YouTube-8M records use, decoded and encoded without TensorFlow or generated code::

    Example         { Features features = 1; }
    SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
    Features        { map<string, Feature> feature = 1; }
    FeatureLists    { map<string, FeatureList> feature_list = 1; }
    FeatureList     { repeated Feature feature = 1; }
    Feature         { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                                   Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1; }
    Int64List { repeated int64 value = 1; }

Packed and unpacked repeated numbers are both accepted; unknown fields are skipped, as protobuf
parsers do. Malformed bytes raise :class:`ProtoError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

FeatureValue: TypeAlias = list[bytes] | npt.NDArray[np.float32] | npt.NDArray[np.int64]
Features: TypeAlias = dict[str, FeatureValue]
FeatureLists: TypeAlias = dict[str, list[FeatureValue]]

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3
_FIXED_SIZES: Final = {_FIXED64: 8, _FIXED32: 4}


class ProtoError(ValueError):
    """The bytes are not a valid message of the expected type."""


# -- decoding -----------------------------------------------------------------------------------


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtoError("message ends inside a varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield ``(field number, wire type, value)``; length-delimited values are sub-views."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtoError(f"field {number} claims {size} bytes, {len(buf) - pos} left")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire in _FIXED_SIZES:
            size = _FIXED_SIZES[wire]
            if pos + size > len(buf):
                raise ProtoError(f"message ends inside fixed-width field {number}")
            yield number, wire, buf[pos : pos + size]
            pos += size
        else:
            raise ProtoError(f"unsupported wire type {wire} for field {number}")


def _sub(value: int | memoryview, what: str) -> memoryview:
    if not isinstance(value, memoryview):
        raise ProtoError(f"{what} must be length-delimited")
    return value


def _feature(buf: memoryview) -> FeatureValue:
    kind: FeatureValue = []
    for number, _, value in _fields(buf):  # unknown kinds are skipped
        if number == _BYTES_LIST:
            items = _fields(_sub(value, "bytes_list"))
            kind = [bytes(_sub(v, "bytes value")) for n, _, v in items if n == 1]
        elif number == _FLOAT_LIST:
            kind = _floats(_sub(value, "float_list"))
        elif number == _INT64_LIST:
            kind = _int64s(_sub(value, "int64_list"))
    return kind


def _floats(buf: memoryview) -> npt.NDArray[np.float32]:
    chunks: list[bytes] = []
    for number, wire, value in _fields(buf):
        if number != 1:
            continue
        chunk = bytes(_sub(value, "float value"))
        if wire == _LEN and len(chunk) % 4:
            raise ProtoError("packed floats are not a multiple of 4 bytes")
        chunks.append(chunk)
    return np.frombuffer(b"".join(chunks), dtype="<f4").astype(np.float32)


def _int64s(buf: memoryview) -> npt.NDArray[np.int64]:
    values: list[int] = []
    for number, wire, value in _fields(buf):
        if number != 1:
            continue
        if isinstance(value, int):
            values.append(value)
        elif wire != _LEN:
            raise ProtoError(f"int64 values cannot have wire type {wire}")
        else:
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                values.append(item)
    signed = [v - (1 << 64) if v >= 1 << 63 else v for v in values]
    return np.asarray(signed, dtype=np.int64)


def _map(buf: memoryview, field_number: int) -> Iterator[tuple[str, memoryview]]:
    for number, _, entry in _fields(buf):
        if number != field_number:
            continue
        key, value = "", memoryview(b"")
        for n, _, v in _fields(_sub(entry, "map entry")):
            if n == 1:
                try:
                    key = bytes(_sub(v, "map key")).decode()
                except UnicodeDecodeError:
                    raise ProtoError("feature name is not UTF-8") from None
            elif n == 2:
                value = _sub(v, "map value")
        yield key, value


def _features(buf: memoryview) -> Features:
    return {key: _feature(value) for key, value in _map(buf, 1)}


def decode_example(data: bytes) -> Features:
    """Decode a ``tf.train.Example`` into ``{name: values}``.

    Values are ``list[bytes]``, a float32 array or an int64 array, by the feature's kind.

    Raises:
        ProtoError: malformed bytes.
    """
    out: Features = {}
    for number, _, value in _fields(memoryview(data)):
        if number == 1:
            out.update(_features(_sub(value, "features")))
    return out


def decode_sequence_example(data: bytes, *, lists: bool = True) -> tuple[Features, FeatureLists]:
    """Decode a ``tf.train.SequenceExample`` into its context and its feature lists.

    Args:
        data: the serialised message.
        lists: also decode the feature lists (``False``: the context only, much faster).

    Raises:
        ProtoError: malformed bytes.
    """
    context: Features = {}
    decoded: FeatureLists = {}
    for number, _, value in _fields(memoryview(data)):
        if number == 1:
            context.update(_features(_sub(value, "context")))
        elif number == 2 and lists:
            for key, feature_list in _map(_sub(value, "feature_lists"), 1):
                fast = _one_bytes_per_feature(bytes(feature_list))
                if fast is not None:
                    decoded[key] = [[item] for item in fast]
                else:
                    items = _fields(feature_list)
                    decoded[key] = [_feature(_sub(f, "feature")) for n, _, f in items if n == 1]
    return context, decoded


def _one_bytes_per_feature(buf: bytes) -> list[bytes] | None:
    """Decode a FeatureList whose every Feature is a BytesList of exactly one value.

    That is YT8M's per-second layout; one tight loop (lengths below 16,384 decoded inline)
    instead of the general decoder. Returns ``None`` at the first deviation from that shape,
    and the caller uses the general decoder.
    """
    view = memoryview(buf)
    out: list[bytes] = []
    pos, end = 0, len(buf)
    while pos < end:
        # Three nested "0x0a <length>" headers: FeatureList.feature, Feature.bytes_list,
        # BytesList.value. The last two must each fill the rest of the Feature.
        feature_end = end
        for level in range(3):
            if pos + 1 >= feature_end or buf[pos] != 0x0A:
                return None
            first = buf[pos + 1]
            if first < 0x80:
                size, pos = first, pos + 2
            elif pos + 2 < end and buf[pos + 2] < 0x80:
                size, pos = (first & 0x7F) | (buf[pos + 2] << 7), pos + 3
            else:
                size, pos = _varint(view, pos + 1)
            if level == 0:
                feature_end = pos + size
                if feature_end > end:
                    return None
            elif pos + size != feature_end:
                return None
        out.append(buf[pos:feature_end])
        pos = feature_end
    return out


def has_feature_lists(data: bytes) -> bool:
    """Tell a ``SequenceExample`` (it has field 2) from an ``Example``.

    Raises:
        ProtoError: malformed bytes.
    """
    return any(number == 2 for number, _, _ in _fields(memoryview(data)))


# -- encoding -----------------------------------------------------------------------------------


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


def _encode_feature(value: FeatureValue | Sequence[float] | Sequence[int]) -> bytes:
    if isinstance(value, list) and all(isinstance(v, bytes) for v in value) and value:
        body = b"".join(_len_field(1, v) for v in value)
        return _len_field(_BYTES_LIST, body)
    array = np.asarray(value)
    if array.dtype.kind == "f":
        packed = array.astype("<f4").tobytes()
        return _len_field(_FLOAT_LIST, _len_field(1, packed) if packed else b"")
    if array.dtype.kind in "iu" or array.size == 0:
        packed = b"".join(_encode_varint(int(v)) for v in array.ravel())
        return _len_field(_INT64_LIST, _len_field(1, packed) if packed else b"")
    raise TypeError(f"cannot encode a feature of dtype {array.dtype}")


def _encode_features(features: Mapping[str, FeatureValue]) -> bytes:
    entries = (
        _len_field(1, _len_field(1, key.encode()) + _len_field(2, _encode_feature(value)))
        for key, value in features.items()
    )
    return b"".join(entries)


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """Encode ``{name: values}`` as a ``tf.train.Example`` (numbers packed, as TensorFlow does)."""
    return _len_field(1, _encode_features(features))


def encode_sequence_example(
    context: Mapping[str, FeatureValue], lists: Mapping[str, Sequence[FeatureValue]]
) -> bytes:
    """Encode a ``tf.train.SequenceExample`` from its context and feature lists."""
    entries = []
    for key, features in lists.items():
        feature_list = b"".join(_len_field(1, _encode_feature(f)) for f in features)
        entries.append(_len_field(1, _len_field(1, key.encode()) + _len_field(2, feature_list)))
    return _len_field(1, _encode_features(context)) + _len_field(2, b"".join(entries))


# -- whole feature lists at once ----------------------------------------------------------------


@cache
def _frame_header(dim: int) -> bytes:
    """The bytes before each value in a FeatureList of one ``dim``-byte string per Feature."""
    bytes_list = _len_field(1, bytes(dim))
    feature = _len_field(_BYTES_LIST, bytes_list)
    item = _len_field(1, feature)
    return item[: len(item) - dim]


def one_bytes_frames(buf: bytes, dim: int) -> npt.NDArray[np.uint8] | None:
    """Read a FeatureList of one ``dim``-byte string per Feature as a ``(T, dim)`` uint8 array.

    That is YT8M's per-second layout: every Feature is the same header followed by its ``dim``
    bytes, so the list is a ``(T, header + dim)`` byte matrix whose header columns are checked
    at once. Returns a read-only view into ``buf``, or ``None`` when the list has any other shape
    (the caller then decodes it Feature by Feature).
    """
    header = _frame_header(dim)
    stride = len(header) + dim
    if len(buf) % stride:
        return None
    rows = np.frombuffer(buf, dtype=np.uint8).reshape(-1, stride)
    expected = np.frombuffer(header, dtype=np.uint8)
    if not (rows[:, : len(header)] == expected).all():
        return None
    return rows[:, len(header) :]
