"""YouTube-8M records: ``tf.train.Example`` (video level) and ``SequenceExample`` (frame level).

Both layouts are read: 2018+ records name the video ``id`` (a 4-character pseudo id), 2017
records ``video_id``. Video-level records carry ``mean_rgb`` (1024 float32) and ``mean_audio``
(128 float32); frame-level records carry per-second ``rgb`` (1024 uint8) and ``audio`` (128 uint8)
byte strings, dequantised here exactly as the official code does (:func:`dequantize`).
(schemas: ``google/youtube-8m``, ``readers.py``; dequantisation: ``utils.py``)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.yt8m.messages import decode_full, feature_list
from svm_toolkit.yt8m.proto import (
    FeatureValue,
    ProtoError,
    decode_sequence_example,
    has_feature_lists,
    one_bytes_frames,
)
from svm_toolkit.yt8m.tfrecord import RecordError

RGB_DIM: Final = 1024  # PCA'd Inception pool_3 features
AUDIO_DIM: Final = 128  # VGGish-like audio features
ID_KEYS: Final = ("id", "video_id")  # 2018+, 2017
VIDEO_KEYS: Final = frozenset({"mean_rgb", "mean_audio"})  # only video-level records have these


class Layout(StrEnum):
    """Which kind of YT8M record."""

    VIDEO = "video"  # tf.train.Example with mean_rgb / mean_audio
    FRAME = "frame"  # tf.train.SequenceExample with per-second rgb / audio


#: How a record shows its layout, for messages.
_LOOKS: Final = {
    Layout.VIDEO: "a tf.train.Example with mean_rgb/mean_audio",
    Layout.FRAME: "a tf.train.SequenceExample with feature lists",
}


@dataclass(frozen=True, slots=True)
class Yt8mVideo:
    """One decoded record.

    Attributes:
        yt8m_id: the record's id: a 4-character pseudo id (2018+) or the 2017 ``video_id``.
        labels: vocabulary indices.
        layout: video or frame level.
        stored_rgb: the rgb features as the record stores them: float32, shape (1024,), for
            video level; uint8 quantised, shape (T, 1024) (T seconds), for frame level;
            ``None`` when features were not requested.
        stored_audio: likewise, shape (128,) or (T, 128).
        layout_shown: the record itself shows its layout (``False``: a context-only record,
            whose layout came from its file).
    """

    yt8m_id: str
    labels: tuple[int, ...]
    layout: Layout
    stored_rgb: npt.NDArray[np.float32] | npt.NDArray[np.uint8] | None = None
    stored_audio: npt.NDArray[np.float32] | npt.NDArray[np.uint8] | None = None
    layout_shown: bool = True

    @property
    def rgb(self) -> npt.NDArray[np.float32] | None:
        """float32 rgb features, (1024,) or (T, 1024), frame level dequantised; ``None``: none."""
        return _float32(self.stored_rgb)

    @property
    def audio(self) -> npt.NDArray[np.float32] | None:
        """float32 audio features, (128,) or (T, 128), frame level dequantised; ``None``: none."""
        return _float32(self.stored_audio)


def _float32(
    stored: npt.NDArray[np.float32] | npt.NDArray[np.uint8] | None,
) -> npt.NDArray[np.float32] | None:
    if stored is None or stored.dtype == np.float32:
        return stored  # type: ignore[return-value]
    return dequantize(stored)  # type: ignore[arg-type]


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


def record_layout(context: Mapping[str, object], has_lists: bool) -> Layout | None:
    """What one record shows of its layout; ``None`` when it cannot tell.

    A ``SequenceExample`` with feature lists is frame level; an ``Example`` with ``mean_rgb`` or
    ``mean_audio`` is video level. A record with neither is consistent with a frame-level record of
    0 seconds (TensorFlow leaves an empty ``feature_lists`` field out: on the wire it is then an
    ``Example`` of id and labels), so it decides nothing.
    """
    if has_lists:
        return Layout.FRAME
    if VIDEO_KEYS & context.keys():
        return Layout.VIDEO
    return None


def parse_record(
    data: bytes, *, ref: str, features: bool = False, layout: Layout | None = None
) -> Yt8mVideo:
    """Decode one record of either layout.

    Args:
        data: the record payload.
        ref: how messages name the record (``<path>: record N (byte offset B)``).
        features: also decode and dequantise the rgb/audio features (slower).
        layout: the file's layout, as its records show it (:func:`record_layout`): a
            context-only record is decoded as that (without it: as a frame-level record of 0
            seconds); a record that shows the other layout is an error.

    Raises:
        RecordError: not a tf.train message, or not a YT8M layout (the message says what is
            missing), or a record of the other layout than ``layout``.
    """
    try:
        has_lists = has_feature_lists(data)
        if features:  # protobuf's C parser (upb); the feature lists as bytes, read below
            context, lists = decode_full(data)
        else:  # the context only: the hand-written decoder is faster for that
            context, lists = decode_sequence_example(data, lists=False)[0], {}
    except ProtoError as exc:
        raise RecordError(f"{ref}: not a tf.train.Example or SequenceExample ({exc})") from None
    own = record_layout(context, has_lists)
    if layout is not None and own is not None and own is not layout:
        raise RecordError(
            f"{ref}: a {own.value}-level record ({_LOOKS[own]}) in a file of {layout.value}-level "
            "records; a file holds one layout"
        )
    layout = own or layout or Layout.FRAME
    yt8m_id = _id(context, ref)
    labels = context.get("labels", np.zeros(0, dtype=np.int64))
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
        raise RecordError(f"{ref}: 'labels' must be an int64 list")
    video = Yt8mVideo(yt8m_id, tuple(int(x) for x in labels), layout, layout_shown=own is not None)
    if not features:
        return video
    if layout is Layout.FRAME and not has_lists:  # 0 seconds, as TensorFlow writes it
        empty = np.zeros((0, RGB_DIM), np.uint8), np.zeros((0, AUDIO_DIM), np.uint8)
        return Yt8mVideo(yt8m_id, video.labels, layout, *empty, layout_shown=False)
    if layout is Layout.VIDEO:
        rgb = _floats(context, "mean_rgb", RGB_DIM, ref)
        audio = _floats(context, "mean_audio", AUDIO_DIM, ref)
        return Yt8mVideo(yt8m_id, video.labels, layout, rgb, audio)
    quantised_rgb = _frames(lists, "rgb", RGB_DIM, ref)
    quantised_audio = _frames(lists, "audio", AUDIO_DIM, ref)
    return Yt8mVideo(yt8m_id, video.labels, layout, quantised_rgb, quantised_audio)


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


def _frames(lists: dict[str, bytes], key: str, dim: int, ref: str) -> npt.NDArray[np.uint8]:
    """One feature list's quantised values, uint8 (T, dim): one row per second."""
    data = lists.get(key)
    if data is None:
        raise RecordError(
            f"{ref}: frame-level record has no '{key}' feature list (has {sorted(lists)})"
        )
    fast = one_bytes_frames(data, dim)
    if fast is not None:
        return fast
    try:
        frames = feature_list(data)
    except ProtoError as exc:
        raise RecordError(f"{ref}: '{key}' is not a tf.train.FeatureList ({exc})") from None
    chunks = []
    for second, frame in enumerate(frames):
        if not isinstance(frame, list) or len(frame) != 1 or len(frame[0]) != dim:
            raise RecordError(
                f"{ref}: '{key}' second {second} is not one byte string of {dim} bytes"
            )
        chunks.append(frame[0])
    return np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(len(chunks), dim)
