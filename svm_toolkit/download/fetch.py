"""Fetch one URL into a scratch folder: a lean HTTP path for direct media, yt-dlp for the rest.

Both paths stream to disk (memory stays flat), end at the per-sample deadline whatever the
server does (a watchdog on the direct path, a killed child process around yt-dlp), write at most
the per-file size cap, connect only where the network policy allows, and turn every expected
failure into :class:`SampleError` with a status from the one classifier.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from svm_toolkit import __version__, ffmpeg
from svm_toolkit.classify import classify
from svm_toolkit.download.config import DownloadConfig
from svm_toolkit.download.details import http_detail, short_detail
from svm_toolkit.download.limits import CHECK_EVERY_BYTES, DiskGuard, largest_file
from svm_toolkit.download.netpolicy import Refused
from svm_toolkit.download.request import Deadline, HTTPStatusError, open_url, to_uri
from svm_toolkit.download.ytdlp_pool import ChildDied, run_in_child
from svm_toolkit.errors import SampleError
from svm_toolkit.schema import Status

__all__ = ["Deadline", "Fetched", "NotDirect", "cut_section", "fetch_direct", "fetch_ytdlp"]

logger = logging.getLogger(__name__)

_CHUNK: Final = 256 * 1024
_MEDIA_SUFFIXES: Final = (
    ".mp4",
    ".m4a",
    ".m4v",
    ".mov",
    ".webm",
    ".mkv",
    ".mp3",
    ".ogg",
    ".wav",
    ".aac",
)
USER_AGENT: Final = f"svm_toolkit/{__version__}"
#: How often the parent looks at the child's deadline, scratch folder and disk, seconds.
_POLL_S: Final = 0.1


@dataclass(frozen=True, slots=True)
class Fetched:
    """A downloaded file in the scratch folder, and how it was chosen."""

    path: Path
    format: str


class NotDirect(Exception):
    """The URL answered with a page, not media: hand it to yt-dlp."""


def fail(
    message: str, default: Status = Status.NETWORK_ERROR, detail: str | None = None
) -> SampleError:
    """Turn a raw message into a :class:`SampleError` through the classifier.

    The classifier reads all of ``message``; the error's detail is ``detail``, or the message
    made short (:func:`~svm_toolkit.download.details.short_detail`).
    """
    status = (classify(message) or default).value
    return SampleError(status, detail or short_detail(message), message)


def _too_large(written: int, cap: int) -> SampleError:
    return SampleError(
        Status.TOO_LARGE.value,
        f"the file is larger than the size cap ({written:,} > {cap:,} bytes; --max-file-mb)",
    )


def fetch_direct(
    url: str,
    scratch: Path,
    config: DownloadConfig,
    deadline: Deadline,
    guard: DiskGuard | None = None,
) -> Fetched:
    """Stream a direct media URL to ``scratch/media<suffix>``.

    Raises:
        NotDirect: the URL serves a web page (yt-dlp may find media in it).
        SampleError: HTTP errors, timeouts, refused hosts, a body cut short or past the cap.
        LowDiskSpace: the disk fell below ``--min-free-gb`` (the run stops).
    """
    cap = config.file_cap_bytes
    with (
        _network(config),
        open_url(
            url,
            policy=config.policy,
            deadline=deadline,
            socket_timeout_s=config.socket_timeout_s,
            proxy=config.proxy,
            headers={"User-Agent": USER_AGENT},
        ) as opened,
    ):
        response = opened.response
        kind = response.headers.get_content_type()
        suffix = Path(urllib.parse.urlsplit(to_uri(url)).path).suffix.lower()
        is_media = kind.startswith(("video/", "audio/")) or (
            kind == "application/octet-stream" and suffix in _MEDIA_SUFFIXES
        )
        if not is_media:
            raise NotDirect(kind)
        expected = response.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) > cap:
            raise _too_large(int(expected), cap)
        path = scratch / f"media{suffix if suffix in _MEDIA_SUFFIXES else '.mp4'}"
        written = checked = 0
        with _disk(path):
            out = path.open("wb")
        with out:
            while chunk := opened.read1(_CHUNK):
                if why := deadline.passed():
                    raise SampleError(Status.TIMEOUT.value, why)
                written += len(chunk)
                if written > cap:
                    raise _too_large(written, cap)
                with _disk(path):
                    out.write(chunk)
                if guard is not None and written - checked >= CHECK_EVERY_BYTES:
                    guard.check()
                    checked = written
            with _disk(path):
                out.flush()
    if expected is not None and expected.isdigit() and written != int(expected):
        raise SampleError(
            Status.NETWORK_ERROR.value,
            f"got {written} of {expected} bytes (connection closed early)",
        )
    return Fetched(path, "direct")


@contextlib.contextmanager
def _disk(path: Path) -> Iterator[None]:
    """Errors of writing ``path`` are ``io_error`` (a full or read-only disk), never network."""
    try:
        yield
    except OSError as exc:
        raise SampleError(Status.IO_ERROR.value, f"writing {path.name}: {exc}"[:500]) from None


@contextlib.contextmanager
def _network(config: DownloadConfig) -> Iterator[None]:
    """Turn the errors of a network call into a classified :class:`SampleError`."""
    try:
        yield
    except HTTPStatusError as exc:
        raise fail(str(exc), detail=http_detail(exc.code, exc.reason, exc.head)) from None
    except Refused as exc:
        raise SampleError(Status.REFUSED_HOST.value, str(exc)[:500]) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, resets, timeouts, cut bodies
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, Refused):
            raise SampleError(Status.REFUSED_HOST.value, str(reason)[:500]) from None
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            why = str(reason) if str(reason).startswith(("timed out after", "interrupted")) else ""
            raise SampleError(
                Status.TIMEOUT.value, why or f"no data for {config.socket_timeout_s:g} s"
            ) from None
        raise fail(f"{type(exc).__name__}: {reason}") from None


def ytdlp_options(config: DownloadConfig, scratch: Path) -> dict[str, Any]:
    """Build the ``YoutubeDL`` options for one sample (the child adds its logger and hooks)."""
    options: dict[str, Any] = {
        "outtmpl": str(scratch / "media.%(ext)s"),
        "format": config.format_selector,
        "quiet": True,
        "noprogress": True,
        "noplaylist": True,
        "socket_timeout": config.socket_timeout_s,
        "retries": 1,
        "fragment_retries": 1,
        "extractor_retries": 0,
        "overwrites": True,
        "continuedl": False,
        "ffmpeg_location": ffmpeg.require(),
    }
    if not config.audio_only:
        options["merge_output_format"] = "mp4"
    optional = {
        "cookiefile": config.cookies,
        "cookiesfrombrowser": (config.cookies_from_browser,)
        if config.cookies_from_browser
        else None,
        "proxy": config.proxy,
        "sleep_interval": config.sleep_interval_s,
        "max_sleep_interval": config.max_sleep_interval_s,
    }
    options.update({k: v for k, v in optional.items() if v is not None})
    options.update(config.ytdlp_options)
    return options


def fetch_ytdlp(
    url: str,
    scratch: Path,
    config: DownloadConfig,
    deadline: Deadline,
    section: tuple[float, float] | None = None,
    guard: DiskGuard | None = None,
) -> Fetched:
    """Download ``url`` with yt-dlp in a child process; ``section`` fetches only (start, end) s.

    The child runs in its own process group; at the deadline, past the size cap or when the disk
    runs low, the group (yt-dlp and its ffmpeg children) is killed (see
    :mod:`~svm_toolkit.download.ytdlp_pool`).

    Raises:
        SampleError: the classified yt-dlp error, ``timeout``, ``too_large``, ``refused_host``.
        LowDiskSpace: the disk fell below ``--min-free-gb`` (the run stops).
    """
    url = to_uri(url)
    policy = config.policy
    if why := policy.url_refusal(url):
        raise SampleError(Status.REFUSED_HOST.value, why[:500])
    cap = config.file_cap_bytes
    request = {
        "url": url,
        "scratch": str(scratch),
        "options": ytdlp_options(config, scratch),
        "section": section,
        "policy": policy.to_dict(),
        "cap_bytes": cap,
        "min_free_bytes": 0 if guard is None else guard.min_free_bytes,
        "seconds": deadline.left(),
    }

    def watch() -> None:  # every 0.1 s while the child works: raising kills it
        if why := deadline.passed():
            raise SampleError(Status.TIMEOUT.value, why)
        if (size := largest_file(scratch)) > cap:
            raise _too_large(size, cap)
        if guard is not None:
            guard.check()

    try:
        result = run_in_child(request, watch, _POLL_S)
    except ChildDied as exc:
        raise SampleError(Status.INTERNAL_ERROR.value, str(exc)[:500]) from None
    return _result(result, scratch, guard)


def _result(result: dict[str, Any], scratch: Path, guard: DiskGuard | None) -> Fetched:
    """The child's answer as a :class:`Fetched`, or the :class:`SampleError` it reported."""
    kind, detail = result.get("kind"), str(result.get("detail") or "")
    if kind == "ok":
        path = Path(result["path"])
        if path.parent != scratch:
            raise SampleError(Status.INTERNAL_ERROR.value, f"yt-dlp wrote outside {scratch}")
        return Fetched(path, str(result.get("format") or "yt-dlp"))
    if kind == "too_large":
        raise SampleError(Status.TOO_LARGE.value, f"{detail} (--max-file-mb)"[:500])
    if kind == "low_disk" and guard is not None:
        raise guard.error(int(result.get("free") or 0))  # the run stops
    if kind == "empty":
        raise SampleError(Status.NOT_MEDIA.value, detail)
    if kind == "crash":
        raise fail(f"yt-dlp failed: {detail}", default=Status.INTERNAL_ERROR)
    raise fail(detail)


def cut_section(path: Path, out: Path, section: tuple[float, float]) -> Path:
    """Copy the (start, end) seconds of ``path`` to ``out`` without re-encoding (cuts at keyframes).

    Raises:
        SampleError: ``decode_error`` when ffmpeg cannot read the file.
    """
    start, end = section
    until = [] if math.isinf(end) else ["-to", f"{end:.3f}"]
    args = ["-v", "error", "-y", "-ss", f"{start:.3f}", *until, "-i", str(path),
            "-map", "0", "-c", "copy", "-movflags", "+faststart", str(out)]  # fmt: skip
    try:
        ffmpeg.run(args, timeout_s=300)
    except ffmpeg.FFmpegError as exc:
        raise SampleError(
            Status.DECODE_ERROR.value, f"cutting {start:g}-{end:g} s failed: {exc}"
        ) from None
    return out
