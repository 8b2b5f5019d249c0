"""Real-format media for the truncation and bad-audio tests: stereo, cut short, damaged audio.

Every file is made by ffmpeg from ``lavfi`` sources: a moving test picture and a stereo
soundtrack with different content in each channel (left: a rising chirp over noise; right: a
330 Hz tone beating twice a second), in the codecs real downloads come in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from svm_toolkit import ffmpeg

#: Each kind: (video codec args, audio codec args, muxer, extra muxer args).
KINDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...], str, tuple[str, ...]]]] = {
    # x264 "veryfast" codes B-frames (3 between references): pts and dts differ
    "mkv": (("-c:v", "libx264", "-preset", "veryfast"), ("-c:a", "libvorbis"), "matroska", ()),
    "mp4": (
        ("-c:v", "libx264", "-preset", "veryfast"),
        ("-c:a", "aac"),
        "mp4",
        ("-movflags", "+faststart"),  # the index (moov) first: a cut file still opens
    ),
    "mp4_moov_last": (("-c:v", "libx264", "-preset", "veryfast"), ("-c:a", "aac"), "mp4", ()),
    "ogg": (("-c:v", "libtheora", "-g", "10"), ("-c:a", "libvorbis"), "ogg", ()),
    "webm": (
        ("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"),
        ("-c:a", "libopus"),
        "webm",
        (),
    ),
    "flv": (("-c:v", "flv1"), ("-c:a", "libmp3lame"), "flv", ()),
    "avi": (("-c:v", "mpeg4"), ("-c:a", "libmp3lame"), "avi", ()),
}
SUFFIX: Final = {"mp4_moov_last": ".mp4"}


def stereo(seconds: float) -> str:
    """The lavfi source of a 44.1 kHz stereo soundtrack, a different sound in each channel."""
    left = "0.3*sin(2*PI*(220+200*t)*t)+0.1*(random(0)-0.5)"
    right = "0.2*sin(2*PI*330*t)*sin(2*PI*2*t)"
    return f"aevalsrc={left}|{right}:s=44100:d={seconds:g}"


def real_media(
    folder: Path,
    kind: str,
    seconds: float = 6.0,
    *,
    audio_s: float | None = None,
    vfr: bool = False,
    live: bool = False,
    name: str | None = None,
) -> Path:
    """Write a real-format file of ``kind`` (a key of :data:`KINDS`) and return its path.

    Args:
        folder: where to write it.
        kind: container and codecs.
        seconds: picture length, seconds.
        audio_s: soundtrack length, seconds (``None``: as long as the picture).
        vfr: a variable frame rate (every third frame dropped in the first half).
        live: written as to a pipe (Matroska: no segment size, no duration, no index).
        name: file name (default: ``<kind>.<suffix>``).
    """
    video, audio, muxer, extra = KINDS[kind]
    suffix = SUFFIX.get(kind, f".{kind}")
    path = folder / (name or f"{kind}{suffix}")
    folder.mkdir(parents=True, exist_ok=True)
    picture = f"testsrc=size=160x120:rate=25:d={seconds:g}"
    args = ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", picture]
    args += ["-f", "lavfi", "-i", stereo(audio_s or seconds), *video, *audio]
    if vfr:
        half = seconds / 2
        args += ["-vf", f"select='gt(t\\,{half:g})+mod(n\\,3)'", "-fps_mode", "vfr"]
    args += [*extra, "-f", muxer]
    if live:
        path.write_bytes(ffmpeg.run([*args, "pipe:1"]))
    else:
        ffmpeg.run([*args, str(path)])
    return path


def cut_in_half(path: Path, folder: Path | None = None) -> Path:
    """A copy of ``path`` holding its first half, as ``head -c`` leaves a stopped download.

    Args:
        path: the whole file.
        folder: where the copy goes, under the same name (default: beside it, ``half_<name>``).
    """
    data = path.read_bytes()
    cut = path.with_name(f"half_{path.name}") if folder is None else folder / path.name
    cut.write_bytes(data[: len(data) // 2])
    return cut


def bad_vorbis(path: Path, name: str | None = None) -> Path:
    """A copy of an Ogg file whose Vorbis packets ffmpeg rejects, its picture untouched.

    ffmpeg's ``noise`` bitstream filter damages every audio packet after the first ten in the
    copy (stream copy: nothing is re-encoded); the Vorbis headers stay whole, so the file
    opens and states its audio stream as before.
    """
    bad = path.with_name(name or f"badaudio_{path.name}")
    ffmpeg.run(
        ["-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-c", "copy",
         "-bsf:a", "noise=amount=if(lt(n\\,10)\\,0\\,3)", str(bad)]
    )  # fmt: skip
    return bad
