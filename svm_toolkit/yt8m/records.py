"""YouTube-8M records: ``tf.train.Example`` (video level) and ``SequenceExample`` (frame level).

Both layouts are read: 2018+ records name the video ``id`` (a 4-character pseudo id), 2017
records ``video_id``. Video-level records carry ``mean_rgb`` (1024 float32) and ``mean_audio``
(128 float32); frame-level records carry per-second ``rgb`` (1024 uint8) and ``audio`` (128 uint8)
byte strings, dequantised here exactly as the official code does (:func:`dequantize`).
(schemas: ``google/youtube-8m``, ``readers.py``; dequantisation: ``utils.py``)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.yt8m.proto import (
    FeatureValue,
    ProtoError,
    decode_example,
    decode_sequence_example,
    has_feature_lists,
)
from svm_toolkit.yt8m.tfrecord import RecordError

RGB_DIM: Final = 1024  # PCA'd Inception pool_3 features
AUDIO_DIM: Final = 128  # VGGish-like audio features
ID_KEYS: Final = ("id", "video_id")  # 2018+, 2017


class Layout(StrEnum):
    """Which kind of YT8M record."""

    VIDEO = "video"  # tf.train.Example with mean_rgb / mean_audio
    FRAME = "frame"  # tf.train.SequenceExample with per-second rgb / audio


@dataclass(frozen=True, slots=True)
class Yt8mVideo:
    """One decoded record.

    Attributes:
        yt8m_id: the record's id: a 4-character pseudo id (2018+) or the 2017 ``video_id``.
        labels: vocabulary indices.
        layout: video or frame level.
        rgb: float32, shape (1024,) for video level or (T, 1024) for frame level (T seconds);
            ``None`` when features were not requested.
        audio: float32, shape (128,) or (T, 128); ``None`` when not requested.
    """

    yt8m_id: str
    labels: tuple[int, ...]
    layout: Layout
    rgb: npt.NDArray[np.float32] | None = None
    audio: npt.NDArray[np.float32] | None = None


def dequantize(values: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Map YT8M's 8-bit features back to floats: ``x * 4/255 + (4/512 - 2)`` (youtube-8m utils.py).

    Example:
        >>> dequantize(np.array([0, 255], dtype=np.uint8)).round(4).tolist()
        [-1.9922, 2.0078]
    """
    scale, bias = np.float32(4.0 / 255.0), np.float32(4.0 / 512.0 - 2.0)
    return values.astype(np.float32) * scale + bias


def quantize(values: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """Quantise floats as YT8M's extractor did: clip to [-2, 2], then ``round((x + 2) * 255/4)``."""
    clipped = np.clip(values, -2.0, 2.0)
    quantised: npt.NDArray[np.uint8] = np.round((clipped + 2.0) * 255.0 / 4.0).astype(np.uint8)
    return quantised


def parse_record(data: bytes, *, ref: str, features: bool = False) -> Yt8mVideo:
    """Decode one record of either layout.

    Args:
        data: the record payload.
        ref: ``file:#n``, for error messages.
        features: also decode and dequantise the rgb/audio features (slower).

    Raises:
        RecordError: not a tf.train message, or not a YT8M layout (the message says what is
            missing).
    """
    try:
        if has_feature_lists(data):
            layout = Layout.FRAME
            context, lists = decode_sequence_example(data, lists=features)
        else:
            layout = Layout.VIDEO
            context, lists = decode_example(data), {}
    except ProtoError as exc:
        raise RecordError(f"{ref}: not a tf.train.Example or SequenceExample ({exc})") from None
    yt8m_id = _id(context, ref)
    labels = context.get("labels", np.zeros(0, dtype=np.int64))
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
        raise RecordError(f"{ref}: 'labels' must be an int64 list")
    video = Yt8mVideo(yt8m_id, tuple(int(x) for x in labels), layout)
    if not features:
        return video
    if layout is Layout.VIDEO:
        rgb = _floats(context, "mean_rgb", RGB_DIM, ref)
        audio = _floats(context, "mean_audio", AUDIO_DIM, ref)
    else:
        rgb = _frames(lists, "rgb", RGB_DIM, ref)
        audio = _frames(lists, "audio", AUDIO_DIM, ref)
    return Yt8mVideo(yt8m_id, video.labels, layout, rgb, audio)


def _id(context: dict[str, FeatureValue], ref: str) -> str:
    for key in ID_KEYS:
        value = context.get(key)
        if isinstance(value, list) and len(value) == 1:
            try:
                return value[0].decode("ascii")
            except UnicodeDecodeError:
                raise RecordError(f"{ref}: '{key}' is not ASCII") from None
    raise RecordError(
        f"{ref}: unknown layout: no 'id' (2018+) or 'video_id' (2017) feature; "
        f"the record has {sorted(context) or 'no features'}"
    )


def _floats(
    context: dict[str, FeatureValue], key: str, dim: int, ref: str
) -> npt.NDArray[np.float32]:
    value = context.get(key)
    if not isinstance(value, np.ndarray) or value.dtype != np.float32 or value.shape != (dim,):
        found = "missing" if value is None else f"{getattr(value, 'shape', len(value))}"
        raise RecordError(f"{ref}: video-level '{key}' must be {dim} floats ({found})")
    return value.astype(np.float32, copy=False)


def _frames(
    lists: dict[str, list[FeatureValue]], key: str, dim: int, ref: str
) -> npt.NDArray[np.float32]:
    frames = lists.get(key)
    if frames is None:
        raise RecordError(
            f"{ref}: frame-level record has no '{key}' feature list (has {sorted(lists)})"
        )
    chunks = []
    for second, frame in enumerate(frames):
        if not isinstance(frame, list) or len(frame) != 1 or len(frame[0]) != dim:
            raise RecordError(
                f"{ref}: '{key}' second {second} is not one byte string of {dim} bytes"
            )
        chunks.append(frame[0])
    quantised = np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(len(chunks), dim)
    return dequantize(quantised)
