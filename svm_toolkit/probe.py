"""What a media file holds: streams, size, frame rate, duration; and whether it is whole.

Read in-process with PyAV (FFmpeg's libraries): about 3 ms a file here, against about 120 ms
of process start-up for each ``ffprobe`` call, which would cap verification at ~16 files/s on
2 cores.

A file cut short (a download that stopped, a copy that did not finish) still opens, and its
header still states the whole duration: half of a 13.04 s Matroska file says 13.04 s while
6.4 s decode. :func:`probe_media` checks that the file is whole before it answers:

- **MP4/MOV**: the top-level boxes (``ftyp``, ``moov``, ``mdat``...) must fit in the file: a box
  that runs past its end was cut (a truncated MP4 whose index ``moov`` was at the end does not
  open at all: ``truncated`` too, nothing decodes).
- **Matroska/WebM**: the Segment's stated size must fit in the file.
- **AVI, WAV**: the top-level RIFF chunks must fit in the file.
- **Ogg**: the file must end with a whole page carrying the end-of-stream flag (an Ogg file has
  no duration in a header: FFmpeg reads it from the last page, so a cut one looks consistent).
- **Other containers that state their duration** (FLV, ASF, an MP3 with a Xing/Info/VBRI
  frame count): every packet is read (demuxed, not decoded) and the last packet's end time is
  compared with the stated duration; streams normally end up to about a second apart, so only
  a gap of more than :data:`END_SLACK_S` (or :data:`END_SLACK_FRACTION` of the duration, if
  longer) counts. A file that states no duration (Matroska written to a pipe) is demuxed too,
  for its duration: a cut one cannot be told from a short one. An MP3 without a frame count
  has a duration FFmpeg guessed from its size: nothing to check.

The structure checks cost a few header reads (the probe of a 200 MB, 10 min 480p MP4 or
Matroska file takes as long as before, ~8 ms); demuxing a file to the end costs about reading
it (0.1-0.5 s for that file). A file cut short is demuxed to measure what decodes, which its
``truncated`` status reports ("13.04 s in the header, 6.40 s decode") and which becomes its
facts' duration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import av

from svm_toolkit.errors import SampleError
from svm_toolkit.schema import Status

#: A file whose packets end more than this before its stated duration is cut short, seconds.
END_SLACK_S: Final = 2.0
#: ... or more than this share of the stated duration, when that is longer (10 min: 12 s).
END_SLACK_FRACTION: Final = 0.02
#: FFmpeg demuxers whose duration is stated by the file (not guessed from its size and bit
#: rate, which would make the timing check lie): checked by timing when no structure check
#: vouches for the file.
_STATED_DURATION: Final = frozenset(
    {"matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "avi", "flv", "asf", "mp3"}
)
_MP4_BOXES: Final = 100_000  # top-level boxes walked at most (a fragmented MP4 has 2 a fragment)
_OGG_PAGE_MAX: Final = 27 + 255 + 255 * 255  # the largest Ogg page, bytes
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_SEGMENT_ID: Final = b"\x18\x53\x80\x67"


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """The facts of one media file.

    Attributes:
        duration_s: container duration, seconds (``None`` if unknown); for a file cut short,
            the duration of what decodes.
        has_video: a video stream is present (cover pictures do not count).
        has_audio: an audio stream is present.
        width, height: video frame size, pixels.
        fps: average video frame rate, frames per second.
        video_codec, audio_codec: codec names as FFmpeg reports them.
        audio_rate: audio sample rate, Hz.
        audio_channels: audio channels.
        rotation: display rotation, degrees (read from a decoded frame by preprocessing; the
            probe itself decodes nothing and leaves 0).
    """

    duration_s: float | None
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None
    rotation: int = 0

    @property
    def display_size(self) -> tuple[int, int] | None:
        """(width, height) as shown, pixels: the coded size turned by ``rotation``."""
        if not self.width or not self.height:
            return None
        turned = self.rotation % 180 == 90
        return (self.height, self.width) if turned else (self.width, self.height)


class TruncatedMedia(SampleError):
    """A file cut short: status ``truncated``, with the facts of what the file still holds.

    Attributes:
        facts: the probe facts, ``duration_s`` being what decodes (``None`` when the file
            does not open at all).
    """

    def __init__(self, detail: str, facts: MediaFacts | None) -> None:
        super().__init__(Status.TRUNCATED.value, detail)
        self.facts = facts


def probe_media(path: Path) -> MediaFacts:
    """Read a media file's facts and check that it is whole (nothing is decoded).

    Reads headers, and every packet of a file only the timing check can judge or of one cut
    short (see the module's docstring).

    Raises:
        TruncatedMedia: ``truncated`` for a file cut short (see the module's docstring), with
            its facts and, in the detail, the stated and the decodable duration.
        SampleError: ``decode_error`` for an empty or unreadable file, ``not_media`` for a file
            with neither video nor audio.
    """
    size = path.stat().st_size
    if size == 0:
        raise SampleError(Status.DECODE_ERROR.value, "empty file (0 bytes)")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            facts = _facts(container)
            demuxer = container.format.name
            cut, vouched = _structure(path, size, demuxer)
            decodes = None
            if cut is not None or (not vouched and demuxer in _STATED_DURATION):
                decodes = _packets_end(container)
    except av.error.FFmpegError as exc:
        cut, _ = _structure(path, size, None)
        if cut is not None:
            raise TruncatedMedia(f"{path.name}: cut short: {cut}; nothing decodes", None) from None
        raise SampleError(Status.DECODE_ERROR.value, f"unreadable media: {exc}") from None
    if not facts.has_video and not facts.has_audio:
        raise SampleError(Status.NOT_MEDIA.value, "the file holds no audio or video stream")
    stated = facts.duration_s
    slack = max(END_SLACK_S, END_SLACK_FRACTION * (stated or 0.0))
    if cut is None and stated and decodes is not None and decodes < stated - slack:
        cut = "its packets end early"
    if cut is None:
        if stated is None and decodes:
            facts = dataclasses.replace(facts, duration_s=decodes)
        return facts
    if decodes is not None:
        facts = dataclasses.replace(facts, duration_s=decodes)
    raise TruncatedMedia(f"{path.name}: cut short: {_durations(stated, decodes)} ({cut})", facts)


def _facts(container: av.container.InputContainer) -> MediaFacts:
    video = next((s for s in container.streams.video if not _is_cover(s)), None)
    audio = next(iter(container.streams.audio), None)
    return MediaFacts(
        duration_s=container.duration / av.time_base if container.duration else None,
        has_video=video is not None,
        has_audio=audio is not None,
        width=video.codec_context.width if video else None,
        height=video.codec_context.height if video else None,
        fps=float(video.average_rate) if video and video.average_rate else None,
        video_codec=video.codec_context.name if video else None,
        audio_codec=audio.codec_context.name if audio else None,
        audio_rate=audio.codec_context.sample_rate if audio else None,
        audio_channels=audio.codec_context.channels if audio else None,
    )


def _durations(stated: float | None, decodes: float | None) -> str:
    """The durations of a file cut short ("13.04 s in the header, 6.40 s decode").

    An Ogg file states no duration (FFmpeg reads it from the last page, and scans a cut AVI or
    WAV): then only what decodes.
    """
    if decodes is None:
        return f"{stated:.2f} s in the header" if stated else "no duration in the header"
    if stated is None or decodes > stated - 0.05:  # FFmpeg measured it from the end itself
        return f"{decodes:.2f} s decode"
    return f"{stated:.2f} s in the header, {decodes:.2f} s decode"


def _is_cover(stream: av.video.stream.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _packets_end(container: av.container.InputContainer) -> float | None:
    """Read every packet (no decoding): where the last one ends, seconds from the start.

    A read error stops the walk: what was read before it is what decodes.
    """
    start = (container.start_time or 0) / av.time_base
    end: float | None = None
    try:
        for packet in container.demux():
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None or packet.time_base is None:
                continue
            until = float((stamp + (packet.duration or 0)) * packet.time_base)
            end = until if end is None else max(end, until)
    except av.error.FFmpegError:
        pass
    return None if end is None else max(0.0, end - start)


# --------------------------------------------------------------------------------------------
# Structure checks: each returns (why the file is cut short or None, whether it vouches for
# the file being whole).


def _structure(path: Path, size: int, demuxer: str | None) -> tuple[str | None, bool]:
    """Check the file's structure against its size, by its demuxer or its first bytes.

    Args:
        path: the file.
        size: its size, bytes.
        demuxer: FFmpeg's demuxer name, or ``None`` when the file did not open.

    Returns:
        Why the file is cut short (``None``: no sign of it) and whether that is all there is
        to know: the structure vouches for the file being whole, or (an MP3 without a frame
        count) the stated duration is a guess with nothing to check. ``False`` sends a file
        of a demuxer that states its duration to the timing check.
    """
    with path.open("rb") as f:
        head = f.read(12)
        if demuxer == "ogg" or (demuxer is None and head[:4] == b"OggS"):
            return _ogg(f, size)
        if demuxer == "matroska,webm" or (demuxer is None and head[:4] == _EBML_MAGIC):
            return _matroska(f, size)
        if (demuxer or "").startswith("mov,") or (demuxer is None and head[4:8] == b"ftyp"):
            return _mp4(f, size)
        if demuxer in ("avi", "wav") or (demuxer is None and head[:4] == b"RIFF"):
            return _riff(f, size)
        if demuxer == "mp3":  # a duration guessed from the size has nothing to check
            return None, not _mp3_counts_frames(f)
    return None, False


def _mp3_counts_frames(f: BinaryIO) -> bool:
    """Whether an MP3 states its frame count (a Xing, Info or VBRI header after any ID3 tag).

    Without one FFmpeg guesses the duration from the size and the first frame's bit rate, and
    a cut file is as long as it looks (no timing check: a variable bit rate would fool it).
    """
    f.seek(0)
    head = f.read(10)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:
        start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
    f.seek(start)
    first = f.read(200)  # the first frame's header, side information and tag
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


def _mp4(f: BinaryIO, size: int) -> tuple[str | None, bool]:
    """Walk the top-level boxes: each must end inside the file."""
    offset = 0
    for _ in range(_MP4_BOXES):
        if offset == size:
            return None, True
        f.seek(offset)
        header = f.read(16)
        if len(header) < 8:
            return f"the file ends inside a box header at byte {offset:,}", True
        length, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if not (kind.isascii() and kind.decode("ascii").isprintable()):
            return None, False  # not a box: no verdict
        if length == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                return f"the file ends inside a box header at byte {offset:,}", True
            length = int.from_bytes(header[8:16], "big")
        elif length == 0:  # the box runs to the end of the file
            return None, True
        if length < 8:
            return None, False
        if offset + length > size:
            name = kind.decode("ascii")
            return (
                f"its '{name}' box runs to byte {offset + length:,}, the file ends at byte "
                f"{size:,}",
                True,
            )
        offset += length
    return None, False


def _riff(f: BinaryIO, size: int) -> tuple[str | None, bool]:
    """Walk the top-level RIFF chunks (``RIFF``, then ``AVIX`` past 1 GB): each must fit."""
    offset = 0
    for _ in range(_MP4_BOXES):
        if offset >= size - 1:  # the end, or its pad byte
            return None, True
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            return f"the file ends inside a chunk header at byte {offset:,}", True
        kind, length = header[:4], int.from_bytes(header[4:8], "little")
        if kind not in (b"RIFF", b"LIST", b"JUNK") or length in (0, 0xFFFFFFFF):
            return None, False  # no chunk, or written live with no size: no verdict
        end = offset + 8 + length
        if end > size:
            name = kind.decode("ascii")
            return f"its '{name}' chunk runs to byte {end:,}, the file ends at byte {size:,}", True
        offset = end + (length & 1)
    return None, False


def _vint(data: bytes, at: int) -> tuple[int | None, int]:
    """An EBML variable-size integer at ``at``: (value or ``None`` for "unknown", its length)."""
    if at >= len(data) or data[at] == 0:
        raise ValueError("no EBML number here")
    width = 9 - data[at].bit_length()
    if at + width > len(data):
        raise ValueError("EBML number cut")
    value = int.from_bytes(data[at : at + width], "big") & ((1 << (7 * width)) - 1)
    return (None if value == (1 << (7 * width)) - 1 else value), width


def _matroska(f: BinaryIO, size: int) -> tuple[str | None, bool]:
    """The EBML header, then the Segment: its stated size must fit in the file."""
    f.seek(0)
    data = f.read(4096)
    try:
        if data[:4] != _EBML_MAGIC:
            return None, False
        header_size, width = _vint(data, 4)
        if header_size is None:
            return None, False
        at = 4 + width + header_size
        if data[at : at + 4] != _SEGMENT_ID:
            return None, False
        segment_size, width = _vint(data, at + 4)
    except ValueError:
        return None, False
    if segment_size is None:  # written live, size unknown: the timing check decides
        return None, False
    end = at + 4 + width + segment_size
    if end > size:
        return f"its Matroska segment runs to byte {end:,}, the file ends at byte {size:,}", True
    return None, True


def _ogg(f: BinaryIO, size: int) -> tuple[str | None, bool]:
    """The last page: whole, and flagged end-of-stream (found by chaining pages to the end)."""
    start = max(0, size - 2 * _OGG_PAGE_MAX)
    f.seek(start)
    tail = f.read()
    at = tail.find(b"OggS")
    while at >= 0:
        page, last = at, at
        while page < len(tail):  # follow the chain of pages from this candidate
            if tail[page : page + 4] != b"OggS":
                break  # not a chain of pages: the candidate was inside a packet
            last = page
            if page + 27 > len(tail):
                return "the file ends inside an Ogg page header", True
            segments = tail[page + 27 : page + 27 + tail[page + 26]]
            if len(segments) < tail[page + 26]:
                return "the file ends inside an Ogg page header", True
            page += 27 + len(segments) + sum(segments)
        else:
            if page > len(tail):
                return f"the file ends inside its last Ogg page, at byte {start + last:,}", True
            if not tail[last + 5] & 0x04:
                return "its last Ogg page does not end the stream (no end-of-stream flag)", True
            return None, True
        at = tail.find(b"OggS", at + 1)
    return None, False
