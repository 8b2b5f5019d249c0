"""Our wire-format code against the protobuf package (an independent implementation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from svm_toolkit.testing.tf_train import tf_train_messages
from svm_toolkit.yt8m.messages import decode_full, feature_list
from svm_toolkit.yt8m.proto import (
    ProtoError,
    decode_example,
    decode_sequence_example,
    encode_example,
    encode_sequence_example,
    has_feature_lists,
)


@pytest.fixture(scope="module", params=["proto3", "proto2"])
def tf(request: pytest.FixtureRequest) -> dict[str, Any]:
    return tf_train_messages(request.param)


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


def test_feature_lists_off_the_fast_path_decode_the_same(tf: dict[str, Any]) -> None:
    ref = tf["SequenceExample"]()
    ref.context.feature["id"].bytes_list.value.append(b"Mx01")
    odd = ref.feature_lists.feature_list
    odd["two_values"].feature.add().bytes_list.value.extend([b"a", b"bc"])
    odd["floats"].feature.add().float_list.value.extend([1.0, 2.5])
    odd["mixed"].feature.add().bytes_list.value.append(b"x" * 300)  # a two-byte length
    odd["mixed"].feature.add().int64_list.value.append(7)
    odd["empty"].feature.add()
    odd["long"].feature.add().bytes_list.value.append(b"y" * 20_000)  # a three-byte length
    _, lists = decode_sequence_example(ref.SerializeToString())
    assert lists["two_values"] == [[b"a", b"bc"]]
    np.testing.assert_array_equal(lists["floats"][0], [1.0, 2.5])
    assert lists["mixed"][0] == [b"x" * 300] and lists["mixed"][1].tolist() == [7]
    assert lists["empty"] == [[]]
    assert lists["long"] == [[b"y" * 20_000]]
    context, none = decode_sequence_example(ref.SerializeToString(), lists=False)
    assert context["id"] == [b"Mx01"] and none == {}


def test_upb_full_decode_equals_the_hand_written_decoder(tf: dict[str, Any]) -> None:
    ref = tf["SequenceExample"]()
    ref.context.feature["id"].bytes_list.value.append(b"Mx01")
    ref.context.feature["labels"].int64_list.value.extend([14, -3, 2**40])
    ref.context.feature["mean_rgb"].float_list.value.extend([0.5, -1.25])
    ref.context.feature["nothing"].SetInParent()
    lists = ref.feature_lists.feature_list
    lists["rgb"].feature.add().bytes_list.value.append(bytes(range(256)) * 4)
    lists["mixed"].feature.add().bytes_list.value.extend([b"a", b"bc"])
    lists["mixed"].feature.add().float_list.value.extend([1.0, 2.5])
    lists["mixed"].feature.add().int64_list.value.append(-7)
    lists["mixed"].feature.add()
    data = ref.SerializeToString()
    context, raw = decode_full(data)
    want_context, want_lists = decode_sequence_example(data)
    assert context.keys() == want_context.keys() and raw.keys() == want_lists.keys()
    for key, value in want_context.items():
        if isinstance(value, list):
            assert context[key] == value
        else:
            assert context[key].dtype == value.dtype  # type: ignore[union-attr]
            np.testing.assert_array_equal(context[key], value)
    for key, features in want_lists.items():
        got = feature_list(raw[key])
        assert len(got) == len(features)
        for mine, theirs in zip(got, features, strict=True):
            if isinstance(theirs, list):
                assert mine == theirs
            else:
                np.testing.assert_array_equal(mine, theirs)
    # An Example's features are field 1 too: the same class reads it.
    example = tf["Example"]()
    example.features.feature["id"].bytes_list.value.append(b"XE00")
    assert decode_full(example.SerializeToString()) == ({"id": [b"XE00"]}, {})
    with pytest.raises(ProtoError):
        decode_full(b"\x0a\x05abc")
    with pytest.raises(ProtoError):
        feature_list(b"\x0a\xff")
