"""Store each download under a name that tells its real container, MP4 wherever a copy allows.

A server's URL and ``Content-Type`` say nothing reliable about what it sends: ``clip.mp4`` may
be Matroska, Ogg or a QuickTime file. The stored file is named after the container FFmpeg
reads in it (PyAV's ``container.format.name``), never after the URL:

* An MP4 whose codecs MP4 holds (``mov,mp4,m4a,3gp,3g2,mj2`` with an MP4 brand) is kept
  byte for byte as ``.mp4`` (``.m4a`` without video).
* Any other file whose video and audio codecs FFmpeg's ``mp4`` muxer takes (H.264, HEVC, AV1,
  VP9, MPEG-4 Part 2; AAC, MP3, Opus, AC-3, E-AC-3, ALAC) is remuxed to MP4 by stream copy
  (``ffmpeg -c copy -movflags +faststart``): no pixel or sample changes, about the cost of
  copying the file once. Subtitle and data streams are dropped.
* A file with a codec MP4 cannot hold (VP8, Theora, Cinepak, Vorbis, FLAC, PCM...) keeps its
  container under its real extension: ``.webm`` (Matroska holding only WebM codecs), ``.mkv``,
  ``.ogg``, ``.mov``, ``.avi``...
* With ``DownloadConfig.transcode`` every file that is not already H.264 + AAC MP4 at most
  ``max_height`` is re-encoded to it (libx264 ``veryfast`` CRF 23, AAC 128 kb/s), for users who
  need one format; it costs a full decode and encode of the video.

Which codecs each muxer takes was checked with real ffmpeg runs (FFmpeg 5.1): the ``mp4`` muxer
refuses VP8, Theora and Cinepak ("codec not currently supported in container") and FLAC
without ``-strict -2``; it writes Vorbis under a private object type that other players do not
read, so Vorbis is not remuxed.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import av

from svm_toolkit import ffmpeg
from svm_toolkit.download.config import DownloadConfig
from svm_toolkit.download.request import Deadline
from svm_toolkit.errors import SampleError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.schema import Status

logger = logging.getLogger(__name__)

#: PyAV's name of FFmpeg's ISO base media demuxer (MP4, QuickTime, 3GP, M4A).
MP4_FAMILY: Final = "mov,mp4,m4a,3gp,3g2,mj2"
#: PyAV's name of FFmpeg's Matroska demuxer (Matroska and WebM).
MATROSKA: Final = "matroska,webm"
#: Video codecs FFmpeg's ``mp4`` muxer writes by stream copy (FFmpeg names).
MP4_VIDEO: Final = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"})
#: Audio codecs FFmpeg's ``mp4`` muxer writes by stream copy.
MP4_AUDIO: Final = frozenset({"aac", "mp3", "opus", "ac3", "eac3", "alac"})
#: Codecs a WebM file may hold; Matroska with anything else is ``.mkv``.
_WEBM_CODECS: Final = frozenset({"vp8", "vp9", "av1", "vorbis", "opus"})
#: Suffixes of the other demuxers (their first name when FFmpeg lists several).
_SUFFIXES: Final = {
    "ogg": ".ogg",
    "mp3": ".mp3",
    "wav": ".wav",
    "flac": ".flac",
    "aac": ".aac",
    "avi": ".avi",
    "flv": ".flv",
    "mpegts": ".ts",
    "mpeg": ".mpg",
    "asf": ".asf",
}
#: Short names of stored containers recorded in the ledger, by suffix.
_SHORT: Final = {".ts": "mpegts", ".mpg": "mpeg"}
_SUFFIX_OK: Final = re.compile(r"\.[a-z0-9]{1,8}")
#: The seconds a remux or transcode may take at least, whatever the sample's deadline says.
_MIN_FFMPEG_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Layout:
    """What container a file is and which codecs its streams hold.

    Attributes:
        format_name: PyAV's ``container.format.name`` (e.g. ``matroska,webm``).
        brand: the ISO ``major_brand`` (``isom``, ``qt  ``, ``3gp4``...), ``""`` for others.
        video: codecs of the video streams (attached cover pictures not counted).
        audio: codecs of the audio streams.
        height: the first video stream's coded height, pixels (``None`` without video).
    """

    format_name: str
    brand: str
    video: tuple[str, ...]
    audio: tuple[str, ...]
    height: int | None = None

    @property
    def mp4_codecs(self) -> bool:
        """Every video and audio stream is a codec the ``mp4`` muxer takes by stream copy."""
        return set(self.video) <= MP4_VIDEO and set(self.audio) <= MP4_AUDIO

    @property
    def is_mp4(self) -> bool:
        """An MP4 (not QuickTime or 3GP) holding only MP4 codecs: kept as it is."""
        iso = self.format_name == MP4_FAMILY and not self.brand.startswith(("qt", "3g"))
        return iso and self.mp4_codecs

    @property
    def suffix(self) -> str:
        """The extension that names this container truthfully (``.mp4``, ``.mkv``...)."""
        if self.format_name == MP4_FAMILY:
            if self.brand.startswith("qt"):
                return ".mov"
            if self.brand.startswith("3g"):
                return ".3gp"
            return ".mp4" if self.video else ".m4a"
        if self.format_name == MATROSKA:
            return ".webm" if set(self.video) | set(self.audio) <= _WEBM_CODECS else ".mkv"
        name = self.format_name.split(",")[0]
        suffix = _SUFFIXES.get(name, f".{name}")
        return suffix if _SUFFIX_OK.fullmatch(suffix) else ".media"


@dataclass(frozen=True, slots=True)
class Stored:
    """A download made ready to place: its file (true suffix) and what was done to it.

    Attributes:
        path: the file in the scratch folder, named ``media<suffix>``.
        container: the stored container's short name (``mp4``, ``m4a``, ``webm``, ``mkv``,
            ``ogg``, ``mov``...), its suffix without the dot.
        served: the container as served, PyAV's name (``matroska,webm``...).
        action: ``kept`` (bytes as served), ``remuxed`` (stream copy to MP4) or ``transcoded``.
    """

    path: Path
    container: str
    served: str
    action: str

    @property
    def note(self) -> str | None:
        """The ledger detail of an ``ok`` row: what was done to the served file, if anything."""
        if self.action == "remuxed":
            return f"remuxed to mp4 from {self.served} (stream copy)"
        if self.action == "transcoded":
            return f"transcoded to H.264 + AAC mp4 from {self.served}"
        return None


def read_layout(path: Path) -> Layout:
    """Read a file's container and codecs (headers only).

    Raises:
        SampleError: ``decode_error`` when FFmpeg cannot open the file.
    """
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            video = [
                s
                for s in container.streams.video
                if not s.disposition & av.stream.Disposition.attached_pic
            ]
            return Layout(
                format_name=container.format.name,
                brand=str(container.metadata.get("major_brand", "")),
                video=tuple(str(s.codec_context.name) for s in video),
                audio=tuple(str(s.codec_context.name) for s in container.streams.audio),
                height=video[0].codec_context.height if video else None,
            )
    except av.error.FFmpegError as exc:
        raise SampleError(Status.DECODE_ERROR.value, f"unreadable media: {exc}") from None


def stored_container(suffix: str) -> str:
    """The ledger's short container name of a stored suffix (``.mkv`` -> ``mkv``)."""
    return _SHORT.get(suffix, suffix.lstrip("."))


def conform(path: Path, config: DownloadConfig, deadline: Deadline | None = None) -> Stored:
    """Give a verified download its true name, remuxing (or transcoding) it to MP4 where due.

    The result lies beside ``path`` in the scratch folder; ``path`` itself may be renamed or
    replaced. A remux that FFmpeg refuses although the codecs allowed it keeps the file as
    served, under its real suffix (logged).

    Args:
        path: the downloaded file (any name).
        config: the run's settings (``transcode``, ``max_height``, ``audio_only``).
        deadline: the sample's deadline; ffmpeg gets the time left (at least 5 s).

    Raises:
        SampleError: ``decode_error`` when the file cannot be read or a transcode fails,
            ``timeout`` when a transcode outlasts the deadline.
    """
    layout = read_layout(path)
    served = layout.format_name
    if config.transcode and not _is_target(layout, config):
        return _transcode(path, layout, config, deadline)
    if layout.is_mp4 or not layout.mp4_codecs:
        return _rename(path, layout.suffix, served, "kept")
    suffix = ".mp4" if layout.video else ".m4a"
    out = path.with_name(f"conformed{suffix}")
    args = ["-v", "error", "-y", "-i", str(path), "-map", "0:V?", "-map", "0:a?",
            "-c", "copy", "-movflags", "+faststart", str(out)]  # fmt: skip
    try:
        ffmpeg.run(args, timeout_s=_seconds(deadline))
    except ffmpeg.FFmpegError as exc:
        logger.warning("download: remuxing %s (%s) to MP4 failed, kept as served: %s",
                       path.name, served, exc)  # fmt: skip
        out.unlink(missing_ok=True)
        return _rename(path, layout.suffix, served, "kept")
    path.unlink()
    return _rename(out, suffix, served, "remuxed")


def _is_target(layout: Layout, config: DownloadConfig) -> bool:
    """Already what ``--transcode`` makes: H.264 + AAC MP4 at most ``max_height``."""
    audio_ok = set(layout.audio) <= {"aac"}
    if config.audio_only and not layout.video:
        return layout.is_mp4 and audio_ok
    short = layout.height is not None and layout.height <= config.max_height
    return layout.is_mp4 and audio_ok and set(layout.video) == {"h264"} and short


def _transcode(
    path: Path, layout: Layout, config: DownloadConfig, deadline: Deadline | None
) -> Stored:
    """Re-encode to H.264 + AAC MP4, at most ``max_height`` (M4A without video)."""
    suffix = ".mp4" if layout.video else ".m4a"
    out = path.with_name(f"conformed{suffix}")
    h = config.max_height
    video = (
        ["-map", "0:V:0", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
         "-pix_fmt", "yuv420p", "-vf", f"scale=-2:'min(ih,{h})'"]
        if layout.video
        else []
    )  # fmt: skip
    audio = ["-map", "0:a:0", "-c:a", "aac", "-b:a", "128k"] if layout.audio else []
    args = ["-v", "error", "-y", "-i", str(path), *video, *audio,
            "-movflags", "+faststart", str(out)]  # fmt: skip
    seconds = _seconds(deadline)
    try:
        ffmpeg.run(args, timeout_s=seconds)
    except ffmpeg.FFmpegError as exc:
        out.unlink(missing_ok=True)
        status = Status.TIMEOUT if "timed out" in str(exc) else Status.DECODE_ERROR
        raise SampleError(
            status.value, f"transcoding {layout.format_name} to H.264 + AAC failed: {exc}"[:500]
        ) from None
    path.unlink()
    return _rename(out, suffix, layout.format_name, "transcoded")


def _seconds(deadline: Deadline | None) -> float:
    left = 600.0 if deadline is None else deadline.left()
    return max(_MIN_FFMPEG_S, left)


def _rename(path: Path, suffix: str, served: str, action: str) -> Stored:
    target = path.with_name(f"media{suffix}")
    if target != path:
        os.replace(path, target)
    return Stored(target, stored_container(suffix), served, action)


def stored_problem(layout: Layout, suffix: str, config: DownloadConfig) -> str | None:
    """Why a placed file is not what :func:`conform` stores for ``config``, or ``None``.

    Args:
        layout: the file's container and codecs (:func:`read_layout`).
        suffix: the file's suffix (``.mp4``...).
        config: the run's settings.
    """
    if suffix != layout.suffix:
        return f"named {suffix} but the file is {layout.format_name} ({layout.suffix})"
    if config.transcode and not _is_target(layout, config):
        return f"not H.264 + AAC MP4 at most {config.max_height} px (--transcode)"
    if not config.transcode and not layout.is_mp4 and layout.mp4_codecs:
        return f"{layout.format_name} whose codecs MP4 holds, not remuxed to MP4"
    return None


def is_placed_name(sample_id: str, name: str) -> bool:
    """``name`` is a file name of ``sample_id`` in ``media/``: ``<id>.<suffix>``.

    The suffix is one run of lowercase letters and digits, so a file of ``a`` is never one of
    ``a.b`` (``a.b.mp4``).
    """
    return name.startswith(f"{sample_id}.") and bool(_SUFFIX_OK.fullmatch(name[len(sample_id) :]))


def placed_media(layout: DatasetLayout, sample_id: str) -> list[Path]:
    """The files placed in ``media/`` for ``sample_id``, whatever their suffix."""
    folder = layout.media_path(sample_id, ".mp4").parent
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(
        folder / name
        for name in names
        if is_placed_name(sample_id, name) and (folder / name).is_file()
    )
