"""Fetch one URL into a scratch folder: a lean HTTP path for direct media, yt-dlp for the rest.

Both paths stream to disk (memory stays flat), honour a per-sample deadline and turn every
expected failure into :class:`SampleError` with a status from the one classifier.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yt_dlp
from yt_dlp.utils import DownloadCancelled, DownloadError, download_range_func

from svm_toolkit import __version__, ffmpeg
from svm_toolkit.classify import classify
from svm_toolkit.download.config import DownloadConfig
from svm_toolkit.errors import SampleError
from svm_toolkit.schema import Status

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


@dataclass(frozen=True, slots=True)
class Deadline:
    """When one sample must be done, and the run-wide stop signal (Ctrl-C)."""

    at: float  # time.monotonic() seconds
    timeout_s: float
    stop: threading.Event

    @classmethod
    def after(cls, timeout_s: float, stop: threading.Event) -> Deadline:
        """A deadline ``timeout_s`` seconds from now."""
        return cls(time.monotonic() + timeout_s, timeout_s, stop)

    def passed(self) -> str | None:
        """Why the sample must stop now, or ``None``."""
        if self.stop.is_set():
            return "interrupted"
        if time.monotonic() > self.at:
            return f"timed out after {self.timeout_s:g} s"
        return None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A downloaded file in the scratch folder, and how it was chosen."""

    path: Path
    format: str


class NotDirect(Exception):
    """The URL answered with a page, not media: hand it to yt-dlp."""


def fail(message: str, default: Status = Status.NETWORK_ERROR) -> SampleError:
    """Turn a raw message into a :class:`SampleError` through the classifier."""
    return SampleError((classify(message) or default).value, message[:500])


def fetch_direct(url: str, scratch: Path, config: DownloadConfig, deadline: Deadline) -> Fetched:
    """Stream a direct media URL to ``scratch/media<suffix>``.

    Raises:
        NotDirect: the URL serves a web page (yt-dlp may find media in it).
        SampleError: HTTP errors, timeouts, a body cut short.
    """
    handlers = (
        [urllib.request.ProxyHandler({"http": config.proxy, "https": config.proxy})]
        if config.proxy
        else []
    )
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with _network(config):
        response = opener.open(request, timeout=config.socket_timeout_s)
    with response:
        kind = response.headers.get_content_type()
        suffix = Path(urllib.parse.urlsplit(url).path).suffix.lower()
        is_media = kind.startswith(("video/", "audio/")) or (
            kind == "application/octet-stream" and suffix in _MEDIA_SUFFIXES
        )
        if not is_media:
            raise NotDirect(kind)
        expected = response.headers.get("Content-Length")
        path = scratch / f"media{suffix if suffix in _MEDIA_SUFFIXES else '.mp4'}"
        written = 0
        with path.open("wb") as out:  # disk errors propagate: the caller records io_error
            while True:
                with _network(config):
                    chunk = response.read(_CHUNK)
                if not chunk:
                    break
                if why := deadline.passed():
                    raise SampleError(Status.TIMEOUT.value, why)
                out.write(chunk)
                written += len(chunk)
    if expected is not None and written != int(expected):
        raise SampleError(
            Status.NETWORK_ERROR.value,
            f"got {written} of {expected} bytes (connection closed early)",
        )
    return Fetched(path, "direct")


@contextlib.contextmanager
def _network(config: DownloadConfig) -> Iterator[None]:
    """Turn the errors of a network call into a classified :class:`SampleError`."""
    try:
        yield
    except urllib.error.HTTPError as exc:
        head = exc.read(300).decode(errors="replace").strip()
        raise fail(f"HTTP Error {exc.code}: {exc.reason}. {head}") from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, resets, timeouts, cut bodies
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            raise SampleError(
                Status.TIMEOUT.value, f"no data for {config.socket_timeout_s:g} s"
            ) from None
        raise fail(f"{type(exc).__name__}: {reason}") from None


class _Logger:
    """Route yt-dlp's messages to logging; keep the last error for the ledger."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, message: str) -> None:
        logger.debug("yt-dlp: %s", message)

    def info(self, message: str) -> None:
        logger.debug("yt-dlp: %s", message)

    def warning(self, message: str) -> None:
        logger.debug("yt-dlp warning: %s", message)

    def error(self, message: str) -> None:
        self.errors.append(message)


def ytdlp_options(config: DownloadConfig, scratch: Path, deadline: Deadline) -> dict[str, Any]:
    """Build the ``YoutubeDL`` options for one sample."""

    def check_deadline(_: dict[str, Any]) -> None:
        if why := deadline.passed():
            raise DownloadCancelled(why)

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
        "progress_hooks": [check_deadline],
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
) -> Fetched:
    """Download ``url`` with yt-dlp into ``scratch``; ``section`` fetches only (start, end) s.

    Raises:
        SampleError: the classified yt-dlp error, or ``timeout`` past the deadline.
    """
    log = _Logger()
    options = {**ytdlp_options(config, scratch, deadline), "logger": log}
    if section is not None:
        options["download_ranges"] = download_range_func(None, [section])
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
    except DownloadCancelled as exc:
        raise SampleError(Status.TIMEOUT.value, str(exc)) from None
    except DownloadError as exc:
        message = log.errors[-1] if log.errors else str(exc)
        raise fail(message) from None
    files = [
        p for p in scratch.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))
    ]
    if not files:
        raise SampleError(Status.NOT_MEDIA.value, "yt-dlp finished without writing a file")
    chosen = max(files, key=lambda p: p.stat().st_size)
    return Fetched(chosen, str((info or {}).get("format_id") or "yt-dlp"))


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
