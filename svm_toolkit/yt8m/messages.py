"""``tf.train`` message classes built at run time from descriptors, parsed by protobuf (upb).

No generated code and no TensorFlow: the definitions below are tf.train's own (``example.proto``,
``feature.proto``), declared through ``descriptor_pb2`` and turned into classes by the installed
``protobuf`` package, whose C parser (upb) decodes them.

* :func:`tf_train_messages`: the reference ``Example`` / ``SequenceExample`` classes, proto3
  (numbers packed, as TensorFlow writes them) or proto2 (unpacked), used by the tests and the
  benchmark to write and check records.
* :func:`frame_messages`: the classes the full decode of :mod:`svm_toolkit.yt8m.records` uses: a
  ``SequenceExample`` whose feature lists are left as bytes (``map<string, bytes>``, the same wire
  format as ``map<string, FeatureList>``), so upb parses the context and hands each list's bytes
  to a vectorised reader, and a ``FeatureList`` class for the lists that reader does not take.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from svm_toolkit.yt8m.proto import Features, FeatureValue, ProtoError

F = descriptor_pb2.FieldDescriptorProto


def _file(
    package: str, syntax: str, *, raw_lists: bool = False
) -> descriptor_pb2.FileDescriptorProto:
    """tf.train's messages in ``package``; ``raw_lists``: FeatureLists maps names to bytes."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name=f"{package}.proto", package=package, syntax=syntax
    )

    def message(
        name: str, *fields: tuple[str, int, int, int, str | None]
    ) -> descriptor_pb2.DescriptorProto:
        msg = fdp.message_type.add(name=name)
        for field_name, number, ftype, label, type_name in fields:
            f = msg.field.add(name=field_name, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = f".{package}.{type_name}"
        return msg

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message("BytesList", ("value", 1, F.TYPE_BYTES, rep, None))
    message("FloatList", ("value", 1, F.TYPE_FLOAT, rep, None))
    message("Int64List", ("value", 1, F.TYPE_INT64, rep, None))
    feature = message(
        "Feature",
        ("bytes_list", 1, F.TYPE_MESSAGE, opt, "BytesList"),
        ("float_list", 2, F.TYPE_MESSAGE, opt, "FloatList"),
        ("int64_list", 3, F.TYPE_MESSAGE, opt, "Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for f in feature.field:
        f.oneof_index = 0
    message("FeatureList", ("feature", 1, F.TYPE_MESSAGE, rep, "Feature"))
    for holder, entry_value, map_name in (
        ("Features", "Feature", "feature"),
        ("FeatureLists", "FeatureList", "feature_list"),
    ):
        msg = message(holder, (map_name, 1, F.TYPE_MESSAGE, rep, f"{holder}.Entry"))
        entry = msg.nested_type.add(name="Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=opt)
        value = entry.field.add(name="value", number=2, label=opt)
        if raw_lists and holder == "FeatureLists":
            value.type = F.TYPE_BYTES
        else:
            value.type = F.TYPE_MESSAGE
            value.type_name = f".{package}.{entry_value}"
    message("Example", ("features", 1, F.TYPE_MESSAGE, opt, "Features"))
    message(
        "SequenceExample",
        ("context", 1, F.TYPE_MESSAGE, opt, "Features"),
        ("feature_lists", 2, F.TYPE_MESSAGE, opt, "FeatureLists"),
    )
    return fdp


def _classes(fdp: descriptor_pb2.FileDescriptorProto, *names: str) -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{fdp.package}.{name}"))
        for name in names
    }


def tf_train_messages(syntax: str = "proto3") -> dict[str, Any]:
    """Return ``{"Example": cls, "SequenceExample": cls}`` built from tf.train's definitions.

    Args:
        syntax: ``proto3`` (repeated numbers packed, as TensorFlow writes them) or ``proto2``
            (unpacked), to exercise both wire encodings.
    """
    return _classes(_file(f"tf{syntax}", syntax), "Example", "SequenceExample")


@cache
def frame_messages() -> dict[str, Any]:
    """Return ``{"Example", "SequenceExample", "FeatureList"}`` classes for the full decode.

    ``SequenceExample.feature_lists.feature_list`` maps each name to its ``FeatureList``'s bytes.
    Proto3 parsers take packed and unpacked numbers alike and skip unknown fields.
    """
    fdp = _file("svm_yt8m", "proto3", raw_lists=True)
    return _classes(fdp, "Example", "SequenceExample", "FeatureList")


def _value(feature: Any) -> FeatureValue:
    """A parsed ``Feature`` as the hand-written decoder gives it (no kind: an empty list)."""
    kind = feature.WhichOneof("kind")
    if kind == "bytes_list":
        return list(feature.bytes_list.value)
    if kind == "float_list":
        return np.array(feature.float_list.value, dtype=np.float32)
    if kind == "int64_list":
        return np.array(feature.int64_list.value, dtype=np.int64)
    return []


def _features(features: Any) -> Features:
    """A parsed ``Features`` message as ``{name: values}``."""
    return {key: _value(feature) for key, feature in features.feature.items()}


def decode_full(data: bytes) -> tuple[Features, dict[str, bytes]]:
    """Decode a whole record with upb: its context (or features) and its feature lists' bytes.

    An ``Example``'s ``features`` and a ``SequenceExample``'s ``context`` are both field 1 of
    type ``Features``, so one class reads either.

    Returns:
        ``({name: values}, {list name: FeatureList bytes})``; the second is empty for an
        ``Example``. Decode a list with :func:`feature_list` (or read it whole with
        :func:`svm_toolkit.yt8m.proto.one_bytes_frames`).

    Raises:
        ProtoError: malformed bytes.
    """
    try:
        message = frame_messages()["SequenceExample"].FromString(data)
    except DecodeError as exc:
        raise ProtoError(str(exc) or "protobuf cannot parse the message") from None
    return _features(message.context), dict(message.feature_lists.feature_list)


def feature_list(data: bytes) -> list[FeatureValue]:
    """Decode one ``FeatureList``'s bytes Feature by Feature (values as :func:`decode_full`).

    Raises:
        ProtoError: malformed bytes.
    """
    try:
        message = frame_messages()["FeatureList"].FromString(data)
    except DecodeError as exc:
        raise ProtoError(str(exc) or "protobuf cannot parse the feature list") from None
    return [_value(feature) for feature in message.feature]
