"""What a media file holds, read with ffprobe: streams, size, frame rate, duration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from svm_toolkit import ffmpeg
from svm_toolkit.errors import SampleError
from svm_toolkit.schema import Status


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """The facts of one media file.

    Attributes:
        duration_s: container duration, seconds (``None`` if unknown).
        has_video: a video stream is present.
        has_audio: an audio stream is present.
        width, height: video frame size, pixels.
        fps: average video frame rate, frames per second.
        video_codec, audio_codec: codec names as ffprobe reports them.
    """

    duration_s: float | None
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None


def probe_media(path: Path, *, timeout_s: float = 60.0) -> MediaFacts:
    """Read a media file's facts.

    Raises:
        SampleError: ``decode_error`` for an empty or unreadable file, ``not_media`` for a file
            with neither video nor audio.
    """
    size = path.stat().st_size
    if size == 0:
        raise SampleError(Status.DECODE_ERROR.value, "empty file (0 bytes)")
    args = ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    try:
        info = json.loads(ffmpeg.run(args, tool="ffprobe", timeout_s=timeout_s))
    except ffmpeg.FFmpegError as exc:
        raise SampleError(Status.DECODE_ERROR.value, f"unreadable media: {exc}") from None
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        raise SampleError(Status.NOT_MEDIA.value, "the file holds no audio or video stream")
    duration = info.get("format", {}).get("duration")
    return MediaFacts(
        duration_s=float(duration) if duration not in (None, "N/A") else None,
        has_video=video is not None,
        has_audio=audio is not None,
        width=video.get("width") if video else None,
        height=video.get("height") if video else None,
        fps=_rate(video.get("avg_frame_rate")) if video else None,
        video_codec=video.get("codec_name") if video else None,
        audio_codec=audio.get("codec_name") if audio else None,
    )


def _is_cover(stream: dict[str, object]) -> bool:
    disposition = stream.get("disposition")
    return isinstance(disposition, dict) and bool(disposition.get("attached_pic"))


def _rate(text: object) -> float | None:
    if not isinstance(text, str) or "/" not in text:
        return None
    num, den = text.split("/", 1)
    try:
        return float(num) / float(den) if float(den) else None
    except ValueError:
        return None
