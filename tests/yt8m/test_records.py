from __future__ import annotations

import numpy as np
import pytest

from svm_toolkit.testing.yt8m import synthetic_videos
from svm_toolkit.yt8m.proto import encode_example, encode_sequence_example
from svm_toolkit.yt8m.records import Layout, dequantize, parse_record, quantize
from svm_toolkit.yt8m.tfrecord import RecordError


def test_dequantize_is_the_official_formula() -> None:
    x = np.arange(256, dtype=np.uint8)
    expected = x.astype(np.float64) * 4.0 / 255.0 + (4.0 / 512.0 - 2.0)
    np.testing.assert_allclose(dequantize(x), expected, rtol=0, atol=1e-6)
    assert dequantize(x).dtype == np.float32


def test_quantize_inverts_dequantize() -> None:
    x = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(quantize(dequantize(x) - 4.0 / 512.0), x)  # the half-bin offset


@pytest.mark.parametrize("id_key", ["id", "video_id"])
def test_frame_level_record(id_key: str) -> None:
    (video,) = synthetic_videos(1, labels=lambda i: (14, 3), seconds=4)
    got = parse_record(video.sequence_example(id_key=id_key), ref="f:#0", features=True)
    assert (got.yt8m_id, got.labels, got.layout) == (video.yt8m_id, (14, 3), Layout.FRAME)
    assert got.rgb is not None and got.audio is not None
    assert got.rgb.shape == (4, 1024) and got.audio.shape == (4, 128)
    np.testing.assert_array_equal(got.rgb, dequantize(video.rgb))
    np.testing.assert_array_equal(got.audio, dequantize(video.audio))
    assert (
        parse_record(video.sequence_example(), ref="f:#0").rgb is None
    )  # features only on request


@pytest.mark.parametrize("id_key", ["id", "video_id"])
def test_video_level_record(id_key: str) -> None:
    (video,) = synthetic_videos(1, labels=lambda i: (9,), seconds=3)
    got = parse_record(video.example(id_key=id_key), ref="v:#0", features=True)
    assert (got.yt8m_id, got.labels, got.layout) == (video.yt8m_id, (9,), Layout.VIDEO)
    assert got.rgb is not None and got.rgb.shape == (1024,)
    np.testing.assert_allclose(got.rgb, dequantize(video.rgb).mean(axis=0), rtol=1e-6)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            encode_example({"name": [b"x"], "labels": np.array([1])}),
            r"r:#3: unknown layout: no 'id' \(2018\+\) or 'video_id'",
        ),
        (
            encode_example({"id": [b"ab12"], "mean_rgb": np.zeros(1024, np.float32)}),
            r"'mean_audio' must be 128 floats \(missing\)",
        ),
        (
            encode_example(
                {
                    "id": [b"ab12"],
                    "mean_rgb": np.zeros(5, np.float32),
                    "mean_audio": np.zeros(128, np.float32),
                }
            ),
            r"'mean_rgb' must be 1024 floats",
        ),
        (
            encode_sequence_example({"id": [b"ab12"]}, {"rgb": [[b"\x00" * 1024]]}),
            r"has no 'audio' feature list",
        ),
        (
            encode_sequence_example(
                {"id": [b"ab12"]}, {"rgb": [[b"\x00" * 10]], "audio": [[b"\x00" * 128]]}
            ),
            r"'rgb' second 0 is not one byte string of 1024",
        ),
        (b"\x0a\x05ab", r"not a tf.train.Example or SequenceExample"),
    ],
)
def test_bad_records(data: bytes, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_record(data, ref="r:#3", features=True)
