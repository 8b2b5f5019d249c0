"""Every layout TensorFlow writes, written by the protobuf reference classes (issue 24).

0-second frame-level records (no ``feature_lists`` field at all), video-level files, files mixing
layouts, GZIP/ZLIB files read end to end through ``svm manifest yt8m``, and bad records in the
middle of a file skipped one by one.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.io.shards import read_shards
from svm_toolkit.manifest import read_manifest
from svm_toolkit.testing.tf_train import tf_train_messages
from svm_toolkit.testing.yt8m import SyntheticVideo, synthetic_videos, write_vocabulary
from svm_toolkit.yt8m import Yt8mConfig, build_yt8m_manifest, dequantize
from svm_toolkit.yt8m.tfrecord import RecordError, frame, write_records

VOCAB = {0: "Game", 14: "Music video"}


@pytest.fixture(scope="module", params=["proto3", "proto2"])
def tf(request: pytest.FixtureRequest) -> dict[str, Any]:
    return tf_train_messages(request.param)


def sequence_example(
    tf: dict[str, Any], video: SyntheticVideo, seconds: int | None = None
) -> bytes:
    """A frame-level record as TensorFlow writes it; 0 seconds: no ``feature_lists`` at all."""
    ref = tf["SequenceExample"]()
    ref.context.feature["id"].bytes_list.value.append(video.yt8m_id.encode())
    ref.context.feature["labels"].int64_list.value.extend(video.labels)
    for row in range(len(video.rgb) if seconds is None else seconds):
        lists = ref.feature_lists.feature_list
        lists["rgb"].feature.add().bytes_list.value.append(video.rgb[row].tobytes())
        lists["audio"].feature.add().bytes_list.value.append(video.audio[row].tobytes())
    data: bytes = ref.SerializeToString()
    assert ref.HasField("feature_lists") == (seconds != 0)
    return data


def example(tf: dict[str, Any], video: SyntheticVideo) -> bytes:
    """A video-level record: means of the dequantised seconds."""
    ref = tf["Example"]()
    ref.features.feature["id"].bytes_list.value.append(video.yt8m_id.encode())
    ref.features.feature["labels"].int64_list.value.extend(video.labels)
    ref.features.feature["mean_rgb"].float_list.value.extend(dequantize(video.rgb).mean(axis=0))
    ref.features.feature["mean_audio"].float_list.value.extend(dequantize(video.audio).mean(axis=0))
    data: bytes = ref.SerializeToString()
    return data


def music(i: int) -> tuple[int, ...]:
    return (14,) if i % 4 else (0,)  # video 0, 4, 8: Game


def sequences(tmp_path: Path) -> dict[str, np.ndarray]:
    table = read_shards(tmp_path / "ds" / "features" / "yt8m_rgb", "part")
    assert table is not None
    return {
        row["sample_id"]: np.asarray(row["embeddings"], dtype=np.float16).reshape(-1, 1024)
        for row in table.to_pylist()
    }


def test_frame_file_whose_first_record_is_zero_seconds(tmp_path: Path, tf: dict[str, Any]) -> None:
    videos = synthetic_videos(4, labels=lambda i: (14,), seconds=2)
    payloads = [sequence_example(tf, videos[0], seconds=0)]
    payloads += [sequence_example(tf, v) for v in videos[1:]]
    write_records(tmp_path / "train0000.tfrecord", payloads)
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    summary = build_yt8m_manifest(
        [tmp_path / "train0000.tfrecord"], vocab, tmp_path / "ds", Yt8mConfig(features=True)
    )
    assert (summary.samples, summary.skipped_records) == (4, 0)
    got = sequences(tmp_path)
    assert got[videos[0].yt8m_id].shape == (0, 1024)  # 0 seconds: an empty sequence
    for video in videos[1:]:
        expected = dequantize(video.rgb).astype(np.float16)
        np.testing.assert_array_equal(got[video.yt8m_id], expected)


def test_a_file_of_zero_second_records_only(tmp_path: Path, tf: dict[str, Any]) -> None:
    videos = synthetic_videos(3, labels=lambda i: (14,), seconds=2)
    write_records(tmp_path / "a.tfrecord", [sequence_example(tf, videos[0])])
    write_records(tmp_path / "b.tfrecord", [sequence_example(tf, v, 0) for v in videos[1:]])
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    build_yt8m_manifest([tmp_path], vocab, tmp_path / "ds", Yt8mConfig(features=True))
    got = sequences(tmp_path)
    assert [got[v.yt8m_id].shape[0] for v in videos] == [2, 0, 0]


def test_video_level_files(tmp_path: Path, tf: dict[str, Any]) -> None:
    videos = synthetic_videos(5, labels=music, seconds=3)
    write_records(tmp_path / "train00.tfrecord", [example(tf, v) for v in videos])
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    summary = build_yt8m_manifest([tmp_path], vocab, tmp_path / "ds", Yt8mConfig(features=True))
    assert summary.samples == 3  # videos 0 and 4 are Game
    table = read_shards(tmp_path / "ds" / "features" / "yt8m_audio", "part")
    assert table is not None and table.num_rows == 3
    row = table.to_pylist()[0]
    assert row["sample_id"] == videos[1].yt8m_id
    expected = dequantize(videos[1].audio).mean(axis=0).astype(np.float16)
    np.testing.assert_array_equal(np.asarray(row["embedding"], dtype=np.float16), expected)


def test_a_file_mixing_layouts_names_file_and_record(tmp_path: Path, tf: dict[str, Any]) -> None:
    videos = synthetic_videos(4, labels=lambda i: (14,), seconds=2)
    payloads = [sequence_example(tf, v) for v in videos[:2]]
    payloads += [example(tf, videos[2]), sequence_example(tf, videos[3])]
    path = tmp_path / "mixed.tfrecord"
    write_records(path, payloads)
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    with pytest.raises(RecordError) as err:
        build_yt8m_manifest([path], vocab, tmp_path / "ds")
    message = str(err.value)
    assert message.startswith(f"{path.absolute()}: record 2 (byte offset ")
    assert "a video-level record in a file of frame-level records" in message
    assert "record 0 (byte offset 0) is one" in message and "--skip-bad-records" in message

    summary = build_yt8m_manifest(
        [path], vocab, tmp_path / "ds", Yt8mConfig(features=True, skip_bad_records=True)
    )
    assert (summary.samples, summary.skipped_records) == (3, 1)
    assert set(sequences(tmp_path)) == {videos[i].yt8m_id for i in (0, 1, 3)}


def test_a_bad_record_in_the_middle_is_skipped_alone(tmp_path: Path, tf: dict[str, Any]) -> None:
    videos = synthetic_videos(8, labels=music, seconds=2)
    payloads = [sequence_example(tf, v) for v in videos]
    bad = 3  # a music video whose record is well framed but does not decode
    payloads[bad] = payloads[bad][: len(payloads[bad]) // 2]
    path = tmp_path / "train0000.tfrecord"
    write_records(path, payloads)
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    offset = sum(16 + len(p) for p in payloads[:bad])
    with pytest.raises(RecordError) as err:
        build_yt8m_manifest([path], vocab, tmp_path / "ds", Yt8mConfig(features=True))
    assert str(err.value).startswith(f"{path.absolute()}: record {bad} (byte offset {offset}): ")
    assert str(err.value).endswith(
        "pass --skip-bad-records to skip this record and keep the others"
    )

    config = Yt8mConfig(features=True, skip_bad_records=True)
    summary = build_yt8m_manifest([path], vocab, tmp_path / "ds", config)
    good = [v.yt8m_id for i, v in enumerate(videos) if i != bad and 14 in v.labels]
    assert read_manifest(tmp_path / "ds").column("sample_id").to_pylist() == good
    assert set(sequences(tmp_path)) == set(good)  # every kept row has its features
    assert (summary.records, summary.skipped_records, summary.bad_files) == (8, 1, 0)
    assert "1 bad record(s) skipped" in summary.describe()


def test_a_bad_feature_list_drops_its_row(tmp_path: Path, tf: dict[str, Any]) -> None:
    """The context decodes (the video is picked) but its features do not: no row is kept."""
    videos = synthetic_videos(3, labels=lambda i: (14,), seconds=2)
    ref = tf["SequenceExample"].FromString(sequence_example(tf, videos[1]))
    ref.feature_lists.feature_list["rgb"].feature[1].bytes_list.value[0] = b"short"
    payloads = [sequence_example(tf, videos[0]), ref.SerializeToString()]
    path = tmp_path / "f.tfrecord"
    write_records(path, [*payloads, sequence_example(tf, videos[2])])
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    config = Yt8mConfig(features=True, skip_bad_records=True)
    summary = build_yt8m_manifest([path], vocab, tmp_path / "ds", config)
    kept = read_manifest(tmp_path / "ds").column("sample_id").to_pylist()
    assert kept == [videos[0].yt8m_id, videos[2].yt8m_id] and summary.skipped_records == 1
    assert set(sequences(tmp_path)) == set(kept)


def test_framing_error_keeps_what_came_before(tmp_path: Path, tf: dict[str, Any]) -> None:
    videos = synthetic_videos(4, labels=lambda i: (14,), seconds=2)
    framed = [frame(sequence_example(tf, v)) for v in videos]
    framed[2] = framed[2][:20] + bytes([framed[2][20] ^ 0xFF]) + framed[2][21:]  # data CRC
    path = tmp_path / "train0000.tfrecord"
    path.write_bytes(b"".join(framed))
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    with pytest.raises(RecordError, match=r"record 2 \(byte offset \d+\): data CRC mismatch"):
        build_yt8m_manifest([path], vocab, tmp_path / "ds")
    config = Yt8mConfig(features=True, skip_bad_records=True)
    summary = build_yt8m_manifest([path], vocab, tmp_path / "ds", config)
    assert (summary.samples, summary.skipped_records, summary.bad_files) == (2, 1, 1)


def test_gzip_and_zlib_files_through_the_cli(tmp_path: Path, tf: dict[str, Any]) -> None:
    """What ``TFRecordOptions(compression_type="GZIP" | "ZLIB")`` writes: one stream of records."""
    videos = synthetic_videos(6, labels=music, seconds=2)
    stream = [
        b"".join(frame(sequence_example(tf, v)) for v in part) for part in (videos[:3], videos[3:])
    ]
    folder = tmp_path / "frame"
    folder.mkdir()
    (folder / "train0000.tfrecord.gz").write_bytes(gzip.compress(stream[0]))
    (folder / "train0001.tfrecord").write_bytes(zlib.compress(stream[1]))  # zlib, plain name
    (folder / "notes.txt").write_text("not a record file")
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    command = [sys.executable, "-m", "svm_toolkit", "manifest", "yt8m", str(folder)]
    command += ["--vocabulary", str(vocab), "--features", "--json", "-o", str(tmp_path / "ds")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["files"], summary["records"], summary["samples"]) == (2, 6, 4)
    got = sequences(tmp_path)
    for video in videos:
        if 14 in video.labels:
            expected = dequantize(video.rgb).astype(np.float16)
            np.testing.assert_array_equal(got[video.yt8m_id], expected)

    # A cut-short gzip file says so (not "length CRC mismatch").
    (folder / "train0000.tfrecord.gz").write_bytes(gzip.compress(stream[0])[:-30])
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(
        r"record 2 \(byte offset \d+ in the decompressed GZIP stream\): the GZIP "
        r"stream is corrupt or cut short",
        result.stderr,
    ), result.stderr


def test_a_context_only_record_in_a_video_level_file(tmp_path: Path, tf: dict[str, Any]) -> None:
    """It waits for the file's layout; decoded as video level it lacks mean_rgb: reported once."""
    videos = synthetic_videos(3, labels=lambda i: (14,), seconds=2)
    path = tmp_path / "v.tfrecord"
    write_records(path, [sequence_example(tf, videos[0], 0), *(example(tf, v) for v in videos[1:])])
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    with pytest.raises(RecordError) as err:
        build_yt8m_manifest([path], vocab, tmp_path / "ds", Yt8mConfig(features=True))
    message = str(err.value)
    assert message.startswith(f"{path.absolute()}: record 0 (byte offset 0): video-level ")
    assert "'mean_rgb' must be 1024 floats" in message and message.count("--skip-bad-records") == 1
    config = Yt8mConfig(features=True, skip_bad_records=True)
    summary = build_yt8m_manifest([path], vocab, tmp_path / "ds", config)
    kept = read_manifest(tmp_path / "ds").column("sample_id").to_pylist()
    assert kept == [v.yt8m_id for v in videos[1:]] and summary.skipped_records == 1


def test_files_of_both_layouts_in_one_run(tmp_path: Path, tf: dict[str, Any]) -> None:
    videos = synthetic_videos(4, labels=lambda i: (14,), seconds=2)
    write_records(tmp_path / "a.tfrecord", [example(tf, v) for v in videos[:2]])
    write_records(tmp_path / "b.tfrecord", [sequence_example(tf, v) for v in videos[2:]])
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", VOCAB)
    build_yt8m_manifest([tmp_path], vocab, tmp_path / "m")  # without features: one manifest
    assert read_manifest(tmp_path / "m").num_rows == 4
    with pytest.raises(InputError, match=r"b.tfrecord: record 0 \(byte offset 0\): a file of "):
        build_yt8m_manifest([tmp_path], vocab, tmp_path / "ds", Yt8mConfig(features=True))
