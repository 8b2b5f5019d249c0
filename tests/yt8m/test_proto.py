"""Our wire-format code against the protobuf package (an independent implementation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from svm_toolkit.yt8m.proto import (
    ProtoError,
    decode_example,
    decode_sequence_example,
    encode_example,
    encode_sequence_example,
    has_feature_lists,
)

F = descriptor_pb2.FieldDescriptorProto


def _tf_train(syntax: str) -> dict[str, Any]:
    """Build tf.train's messages from their definition; proto2 repeated numbers are unpacked."""
    package = f"tf{syntax}"
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
    for holder, entry_value, map_name in (
        ("Features", "Feature", "feature"),
        ("FeatureLists", "FeatureList", "feature_list"),
    ):
        if holder == "FeatureLists":
            message("FeatureList", ("feature", 1, F.TYPE_MESSAGE, rep, "Feature"))
        msg = message(holder, (map_name, 1, F.TYPE_MESSAGE, rep, f"{holder}.Entry"))
        entry = msg.nested_type.add(name="Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=opt)
        entry.field.add(
            name="value",
            number=2,
            type=F.TYPE_MESSAGE,
            label=opt,
            type_name=f".{package}.{entry_value}",
        )
    message("Example", ("features", 1, F.TYPE_MESSAGE, opt, "Features"))
    message(
        "SequenceExample",
        ("context", 1, F.TYPE_MESSAGE, opt, "Features"),
        ("feature_lists", 2, F.TYPE_MESSAGE, opt, "FeatureLists"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
        for name in ("Example", "SequenceExample")
    }


@pytest.fixture(scope="module", params=["proto3", "proto2"])
def tf(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _tf_train(request.param)


def test_reference_example_decodes(tf: dict[str, Any]) -> None:
    ref = tf["Example"]()
    ref.features.feature["id"].bytes_list.value.append(b"XE00")
    ref.features.feature["labels"].int64_list.value.extend([14, 3, -7, 2**40])
    ref.features.feature["mean_rgb"].float_list.value.extend([0.5, -1.25, 3.0])
    got = decode_example(ref.SerializeToString())
    assert got["id"] == [b"XE00"]
    np.testing.assert_array_equal(got["labels"], [14, 3, -7, 2**40])
    np.testing.assert_array_equal(got["mean_rgb"], np.array([0.5, -1.25, 3.0], dtype=np.float32))
    assert not has_feature_lists(ref.SerializeToString())


def test_our_example_parses_in_protobuf(tf: dict[str, Any]) -> None:
    data = encode_example(
        {
            "id": [b"ab12"],
            "labels": np.array([9, 14]),
            "mean_audio": np.array([1.5, -2.0], np.float32),
        }
    )
    ref = tf["Example"].FromString(data)
    assert list(ref.features.feature["id"].bytes_list.value) == [b"ab12"]
    assert list(ref.features.feature["labels"].int64_list.value) == [9, 14]
    assert list(ref.features.feature["mean_audio"].float_list.value) == [1.5, -2.0]


def test_sequence_example_both_ways(tf: dict[str, Any]) -> None:
    ref = tf["SequenceExample"]()
    ref.context.feature["id"].bytes_list.value.append(b"Zz99")
    ref.context.feature["labels"].int64_list.value.extend([14])
    for second in range(3):
        ref.feature_lists.feature_list["rgb"].feature.add().bytes_list.value.append(
            bytes([second]) * 4
        )
        ref.feature_lists.feature_list["audio"].feature.add().bytes_list.value.append(
            bytes([9 - second]) * 2
        )
    data = ref.SerializeToString()
    assert has_feature_lists(data)
    context, lists = decode_sequence_example(data)
    assert context["id"] == [b"Zz99"] and context["labels"].tolist() == [14]
    assert lists["rgb"] == [[b"\x00" * 4], [b"\x01" * 4], [b"\x02" * 4]]
    assert lists["audio"][2] == [b"\x07\x07"]

    ours = encode_sequence_example(context, lists)
    again = tf["SequenceExample"].FromString(ours)
    assert again == ref


@pytest.mark.parametrize(
    "data", [b"\x0a\x05abc", b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x0f", b"\x0a"]
)
def test_malformed_bytes(data: bytes) -> None:
    with pytest.raises(ProtoError):
        decode_example(data)
