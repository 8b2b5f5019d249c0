"""The fast full decode and the float16 writer against the protobuf reference classes.

Records are written by protobuf's own ``tf.train`` classes (proto3 packed and proto2 unpacked);
what ``svm manifest yt8m --features`` stores must be exactly the official dequantisation
(``x * 4/255 + (4/512 - 2)`` in float32) rounded to float16. No timings here: the speed is
measured by ``benchmarks/yt8m_parse.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from svm_toolkit.io.shards import committed_shards, read_shards
from svm_toolkit.testing.tf_train import tf_train_messages
from svm_toolkit.testing.yt8m import write_vocabulary
from svm_toolkit.yt8m import Layout, Yt8mConfig, build_yt8m_manifest, parse_record
from svm_toolkit.yt8m.features import FLOAT16_OF_BYTE, dequantize_float16
from svm_toolkit.yt8m.proto import one_bytes_frames
from svm_toolkit.yt8m.records import AUDIO_DIM, RGB_DIM
from svm_toolkit.yt8m.tfrecord import RecordError, write_records

MUSIC_VIDEO = 14


def official(
    values: np.ndarray, max_quantized: float = 2.0, min_quantized: float = -2.0
) -> np.ndarray:
    """youtube-8m ``utils.Dequantize``, as its readers apply it to float32 tensors."""
    quantized_range = max_quantized - min_quantized
    scalar = quantized_range / 255.0
    bias = (quantized_range / 512.0) + min_quantized
    return values.astype(np.float32) * np.float32(scalar) + np.float32(bias)


def reference_record(
    tf: dict[str, Any], pid: str, rgb: np.ndarray, audio: np.ndarray, *, unknown: bool = False
) -> bytes:
    """A frame-level SequenceExample written by protobuf; ``unknown``: one Feature carries an
    unknown field (valid protobuf, not the usual per-second shape)."""
    message = tf["SequenceExample"]()
    message.context.feature["id"].bytes_list.value.append(pid.encode())
    message.context.feature["labels"].int64_list.value.extend([MUSIC_VIDEO, 3])
    for key, frames in (("rgb", rgb), ("audio", audio)):
        feature_list = message.feature_lists.feature_list[key]
        for row in frames:
            feature_list.feature.add().bytes_list.value.append(row.tobytes())
    if unknown and len(rgb):
        message.feature_lists.feature_list["rgb"].feature[0].MergeFromString(b"\x48\x01")
    return bytes(message.SerializeToString())


@pytest.fixture(scope="module", params=["proto3", "proto2"])
def tf(request: pytest.FixtureRequest) -> dict[str, Any]:
    return tf_train_messages(request.param)


def frames(seconds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (seconds, RGB_DIM), dtype=np.uint8),
        rng.integers(0, 256, (seconds, AUDIO_DIM), dtype=np.uint8),
    )


def test_float16_table_is_the_official_formula_rounded() -> None:
    every = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(FLOAT16_OF_BYTE, official(every).astype(np.float16))
    pairs = np.stack(np.meshgrid(every, every), axis=-1).reshape(-1, 2)  # all 65,536 pairs
    got = dequantize_float16(pairs)
    assert got.dtype == np.float16 and got.shape == pairs.shape
    np.testing.assert_array_equal(
        got.view(np.uint16), official(pairs).astype(np.float16).view(np.uint16)
    )
    odd = every[:7]  # an odd count takes the one-byte table
    np.testing.assert_array_equal(dequantize_float16(odd), official(odd).astype(np.float16))


@pytest.mark.parametrize("unknown", [False, True], ids=["per-second", "unknown-field"])
def test_full_decode_equals_reference(tf: dict[str, Any], unknown: bool) -> None:
    rgb, audio = frames(5, seed=1)
    data = reference_record(tf, "Ab12", rgb, audio, unknown=unknown)
    video = parse_record(data, ref="f: record 0", features=True)
    assert (video.yt8m_id, video.labels, video.layout) == ("Ab12", (MUSIC_VIDEO, 3), Layout.FRAME)
    assert video.stored_rgb is not None and video.stored_audio is not None
    np.testing.assert_array_equal(video.stored_rgb, rgb)
    np.testing.assert_array_equal(video.stored_audio, audio)
    assert video.rgb is not None and video.rgb.dtype == np.float32
    np.testing.assert_array_equal(video.rgb, official(rgb))
    np.testing.assert_array_equal(video.audio, official(audio))


def test_one_bytes_frames_refuses_other_shapes(tf: dict[str, Any]) -> None:
    rgb, audio = frames(3, seed=2)
    message = tf["SequenceExample"].FromString(reference_record(tf, "Ab12", rgb, audio))
    lists = message.feature_lists.feature_list
    raw = lists["audio"].SerializeToString()
    np.testing.assert_array_equal(one_bytes_frames(raw, AUDIO_DIM), audio)
    assert one_bytes_frames(raw, 64) is None  # another width
    assert one_bytes_frames(raw[:-1], AUDIO_DIM) is None  # cut short
    assert one_bytes_frames(b"", AUDIO_DIM).shape == (0, AUDIO_DIM)  # type: ignore[union-attr]


def test_wrong_frame_width_is_named(tf: dict[str, Any]) -> None:
    rgb, audio = frames(3, seed=3)
    data = reference_record(tf, "Ab12", rgb, audio[:, :100])
    with pytest.raises(RecordError, match="'audio' second 0 is not one byte string of 128 bytes"):
        parse_record(data, ref="f: record 0", features=True)


def test_written_features_equal_reference_dequantised(tmp_path: Path, tf: dict[str, Any]) -> None:
    # 20 videos of 1-4 seconds (and one of 0 s): row groups of 16 videos, so two of them.
    contents = [frames(i % 4 + 1 if i != 5 else 0, seed=10 + i) for i in range(20)]
    ids = [f"v{i:03d}" for i in range(20)]
    records = [reference_record(tf, pid, r, a) for pid, (r, a) in zip(ids, contents, strict=True)]
    path = tmp_path / "train0000.tfrecord"
    write_records(path, records)
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", {MUSIC_VIDEO: "Music video", 3: "Game"})
    build_yt8m_manifest([path], vocab, tmp_path / "ds", Yt8mConfig(features=True))
    for name, column, dim in (("yt8m_rgb", 0, RGB_DIM), ("yt8m_audio", 1, AUDIO_DIM)):
        directory = tmp_path / "ds" / "features" / name
        table = read_shards(directory, "part")
        assert table is not None and table.column_names[:2] == ["sample_id", "embeddings"]
        rows = {r["sample_id"]: r for r in table.to_pylist()}
        assert sorted(rows) == ids
        for pid, content in zip(ids, contents, strict=True):
            want = official(content[column]).astype(np.float16)
            got = np.asarray(rows[pid]["embeddings"], dtype=np.float16).reshape(-1, dim)
            np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
            assert rows[pid]["timestamps_s"] == [float(s) for s in range(len(want))]
        shard = pq.ParquetFile(committed_shards(directory, "part")[0])
        vector = shard.metadata.row_group(0).column(1)
        assert vector.path_in_schema == "embeddings.list.element.list.element"
        # the 256 float16 values as a dictionary, the records' bytes as its indices
        assert set(vector.encodings) == {"PLAIN", "RLE", "RLE_DICTIONARY"}
        assert vector.has_dictionary_page and vector.statistics is None
        assert vector.total_uncompressed_size < 1.1 * sum(c[column].size for c in contents)
        assert shard.metadata.num_row_groups == 2
