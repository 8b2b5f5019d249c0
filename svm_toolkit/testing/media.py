"""Synthetic media files from ffmpeg ``lavfi`` sources, described by a typed spec.

Example:
    >>> spec = MediaSpec(seconds=2, size=(160, 120), content=(160, 88), audio="sine")
    >>> make_media(tmp_path / "clip.mp4", spec)  # doctest: +SKIP

The clip has 16 px black bars top and bottom (content centred), a 440 Hz tone and lasts 2 s,
so a test can assert the crop box ``(0, 16, 160, 88)``, the mel peak and the duration.
Geometry must be even: yuv420p rounds odd offsets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from svm_toolkit import ffmpeg

VideoPattern = Literal["testsrc2", "bars", "noise", "black"]
AudioPattern = Literal["sine", "noise", "silence"]
Container = Literal["mp4", "webm", "mkv", "mov", "m4a", "mp3", "ogg", "wav"]

#: lavfi source of each picture pattern ({w}x{h} at {fps} for {s} seconds).
_VIDEO_SOURCES: Final[dict[str, str]] = {
    "testsrc2": "testsrc2=size={w}x{h}:rate={fps}:duration={s}",
    "bars": "smptebars=size={w}x{h}:rate={fps}:duration={s}",  # a static picture
    "noise": "color=c=gray:size={w}x{h}:rate={fps}:duration={s},noise=alls=80:allf=t+u",
    "black": "color=c=black:size={w}x{h}:rate={fps}:duration={s}",
}

#: lavfi source of each sound pattern.
_AUDIO_SOURCES: Final[dict[str, str]] = {
    "sine": "sine=frequency={hz}:sample_rate={sr}:duration={s}",
    "noise": "anoisesrc=color=pink:amplitude=0.3:sample_rate={sr}:duration={s}",
    "silence": "anullsrc=channel_layout=mono:sample_rate={sr},atrim=duration={s}",
}


@dataclass(frozen=True, slots=True)
class _Codecs:
    video: tuple[str, ...] | None  # None: the container holds no video
    audio: tuple[str, ...]


_CONTAINERS: Final[dict[str, _Codecs]] = {
    "mp4": _Codecs(
        ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"), ("-c:a", "aac")
    ),
    "mov": _Codecs(
        ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"), ("-c:a", "aac")
    ),
    "mkv": _Codecs(
        ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"), ("-c:a", "libvorbis")
    ),
    "webm": _Codecs(
        ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"),
        ("-c:a", "libopus"),
    ),
    "m4a": _Codecs(None, ("-c:a", "aac")),
    "mp3": _Codecs(None, ("-c:a", "libmp3lame")),
    "ogg": _Codecs(None, ("-c:a", "libvorbis")),
    "wav": _Codecs(None, ("-c:a", "pcm_s16le")),
}


#: ffmpeg muxer names that differ from the file suffix.
_MUXERS: Final = {"mkv": "matroska", "m4a": "ipod"}


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """What a generated media file contains.

    Attributes:
        seconds: duration, seconds.
        size: frame (width, height) in pixels, even numbers.
        content: picture (width, height) centred inside black bars; ``None`` fills the frame.
        fps: frames per second.
        video: picture pattern, or ``None`` for an audio-only file.
        audio: sound pattern, or ``None`` for a file without an audio stream.
        tone_hz: frequency of the ``sine`` pattern, Hz.
        sample_rate: audio sample rate, Hz.
        container: file format; audio-only formats (m4a, mp3, ogg, wav) need ``video=None``.
        audio_file: a sound file to use as the soundtrack instead of ``audio``'s pattern.
        gop: frames between keyframes (``None``: the encoder's default, 250 for x264).
    """

    seconds: float = 2.0
    size: tuple[int, int] = (160, 120)
    content: tuple[int, int] | None = None
    fps: int = 10
    video: VideoPattern | None = "testsrc2"
    audio: AudioPattern | None = "sine"
    tone_hz: float = 440.0
    sample_rate: int = 44_100
    container: Container = "mp4"
    audio_file: Path | None = None
    gop: int | None = None

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.fps <= 0 or self.sample_rate <= 0:
            raise ValueError(f"seconds, fps and sample_rate must be > 0: {self}")
        dims = [*self.size, *(self.content or ())]
        if any(d <= 0 or d % 2 for d in dims):
            raise ValueError(f"frame and content sizes must be even and > 0 (yuv420p), got {dims}")
        if self.content and (self.content[0] > self.size[0] or self.content[1] > self.size[1]):
            raise ValueError(f"content {self.content} does not fit in frame {self.size}")
        codecs = _CONTAINERS[self.container]
        if self.video is None and self.audio is None:
            raise ValueError("a media file needs a video or an audio stream")
        if self.video is not None and codecs.video is None:
            raise ValueError(
                f"{self.container} holds audio only; set video=None or pick mp4/webm/mkv/mov"
            )

    @property
    def bars(self) -> tuple[int, int, int, int] | None:
        """The content box ``(x, y, w, h)`` in frame pixels when there are bars, else ``None``."""
        if self.content is None or self.content == self.size:
            return None
        (fw, fh), (cw, ch) = self.size, self.content
        return ((fw - cw) // 2 // 2 * 2, (fh - ch) // 2 // 2 * 2, cw, ch)


def ffmpeg_args(spec: MediaSpec, path: Path) -> list[str]:
    """Return the ffmpeg arguments that write ``spec`` to ``path``."""
    args = ["-hide_banner", "-loglevel", "error", "-y"]
    codecs = _CONTAINERS[spec.container]
    if spec.video is not None:
        w, h = spec.content or spec.size
        args += [
            "-f",
            "lavfi",
            "-i",
            _VIDEO_SOURCES[spec.video].format(w=w, h=h, fps=spec.fps, s=spec.seconds),
        ]
    if spec.audio_file is not None:
        args += ["-i", str(spec.audio_file)]
    elif spec.audio is not None:
        source = _AUDIO_SOURCES[spec.audio].format(
            hz=spec.tone_hz, sr=spec.sample_rate, s=spec.seconds
        )
        args += ["-f", "lavfi", "-i", source]
    if spec.video is not None:
        if spec.bars is not None:
            x, y, _, _ = spec.bars
            args += ["-vf", f"pad={spec.size[0]}:{spec.size[1]}:{x}:{y}:black"]
        args += list(codecs.video or ())
        if spec.gop is not None:
            args += ["-g", str(spec.gop)]
    if spec.audio is not None or spec.audio_file is not None:
        args += list(codecs.audio)
    args += [
        "-t",
        f"{spec.seconds:g}",
        "-f",
        _MUXERS.get(spec.container, spec.container),
        str(path),
    ]
    return args


def make_media(path: Path, spec: MediaSpec = MediaSpec()) -> Path:
    """Write a media file described by ``spec`` atomically and return its path.

    Raises:
        svm_toolkit.ffmpeg.FFmpegError: ffmpeg failed.
        svm_toolkit.errors.MissingToolError: ffmpeg is not installed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        ffmpeg.run(ffmpeg_args(spec, tmp), timeout_s=120)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
