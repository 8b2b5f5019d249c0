"""Reference ``tf.train`` message classes built with the ``protobuf`` package (a second parser).

Used by the tests (to check :mod:`svm_toolkit.yt8m.proto` against protobuf) and by the YT8M
parsing benchmark (as its baseline). Needs ``protobuf`` (in the ``dev`` extra).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def tf_train_messages(syntax: str = "proto3") -> dict[str, Any]:
    """Return ``{"Example": cls, "SequenceExample": cls}`` built from tf.train's definitions.

    Args:
        syntax: ``proto3`` (repeated numbers packed, as TensorFlow writes them) or ``proto2``
            (unpacked), to exercise both wire encodings.
    """
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
