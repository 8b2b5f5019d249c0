"""Canonical, content-derived video ids from URLs.

* YouTube: the 11-character video id, whatever the URL form (``watch?v=``, ``youtu.be/``,
  ``shorts/``, ``embed/``, ``live/``, ``v/``; ``www.``, ``m.``, ``music.``, ``youtube-nocookie``;
  extra query parameters and fragments ignored).
* TikTok: the numeric id of ``/@user/video/<id>`` (and ``m.tiktok.com/v/<id>.html``). Short links
  (``vm.tiktok.com/…``, ``/t/…``) cannot be resolved offline and keep a URL hash.
* Anything else: ``u`` + the first 16 hex digits of SHA-1 of the normalised URL.

The three forms never collide: 11 characters, digits only, or ``u`` + 16 hex digits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from svm_toolkit.schema import Source

_YT_ID: Final = re.compile(r"[A-Za-z0-9_-]{11}")
_QUERY_SPLIT: Final = re.compile(r"[&;]")
_YT_HOSTS: Final = frozenset(
    {
        "youtube.com",
        "m.youtube.com",
        "music.youtube.com",
        "youtube-nocookie.com",
        "gaming.youtube.com",
    }
)
_YT_PATH_PREFIXES: Final = ("shorts", "embed", "live", "v", "e")
_TIKTOK_HOSTS: Final = frozenset({"tiktok.com", "m.tiktok.com"})
_TIKTOK_VIDEO: Final = re.compile(r"/@(?P<user>[^/]+)/(?:video|photo)/(?P<id>\d{6,25})/?")
_TIKTOK_MOBILE: Final = re.compile(r"/v/(?P<id>\d{6,25})(?:\.html)?/?")
_TRACKING_PARAMS: Final = re.compile(r"utm_[a-z]+|fbclid|gclid")
_SPACE_OR_CONTROL: Final = re.compile(r"[\s\x00-\x1f\x7f]")
MAX_URL_LENGTH: Final = 4096


class InvalidUrl(ValueError):
    """The text is not a usable http(s) URL; the message says why."""


@dataclass(frozen=True, slots=True)
class CanonicalUrl:
    """A URL reduced to its identity.

    Attributes:
        video_id: canonical id (see the module docstring).
        source: the kind of id.
        url: the URL to download: canonical for YouTube and TikTok, else the input, trimmed.
        author: the uploader's handle when the URL names it (TikTok ``@user``).
    """

    video_id: str
    source: Source
    url: str
    author: str | None = None


def canonicalize(text: str) -> CanonicalUrl:
    """Return the canonical id and download URL of ``text``.

    Example:
        >>> canonicalize("https://youtu.be/dQw4w9WgXcQ?si=abc").video_id
        'dQw4w9WgXcQ'

    Raises:
        InvalidUrl: not http(s), no host, whitespace or control characters inside, too long.
    """
    url = text.strip()
    if not url:
        raise InvalidUrl("empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidUrl(f"URL is {len(url)} characters long (at most {MAX_URL_LENGTH})")
    if _SPACE_OR_CONTROL.search(url):
        raise InvalidUrl("URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrl(f"unparsable URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidUrl(f"only http(s) URLs can be downloaded, not {scheme or 'a bare path'!r}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise InvalidUrl("URL has no host")
    bare = host.removeprefix("www.")

    if bare in _YT_HOSTS or bare == "youtu.be":
        yt = _youtube_id(bare, parts.path, parts.query)
        if yt:
            return CanonicalUrl(yt, Source.YOUTUBE, f"https://www.youtube.com/watch?v={yt}")
    if bare in _TIKTOK_HOSTS:
        tiktok = _tiktok(parts.path)
        if tiktok:
            user, tid = tiktok
            canonical = (
                f"https://www.tiktok.com/@{user}/video/{tid}"
                if user
                else f"https://www.tiktok.com/video/{tid}"
            )
            return CanonicalUrl(tid, Source.TIKTOK, canonical, author=user)
    normalised = _normalise(scheme, host, port, parts.path, parts.query)
    digest = hashlib.sha1(normalised.encode(), usedforsecurity=False).hexdigest()[:16]
    return CanonicalUrl(f"u{digest}", Source.URL, url)


def _youtube_id(host: str, path: str, query: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    if host == "youtu.be":
        candidate = segments[0] if segments else ""
    elif segments[:1] == ["watch"] or not segments:
        candidate = _first_v(query)
    elif len(segments) >= 2 and segments[0] in _YT_PATH_PREFIXES:
        candidate = segments[1]
    else:
        return None
    return candidate if _YT_ID.fullmatch(candidate) else None


def _first_v(query: str) -> str:
    """Return the ``v`` parameter YouTube and yt-dlp take when a query holds several.

    yt-dlp's ``YoutubeIE._VALID_URL`` matches ``(?:.*?[&;])??v=`` then 11 id characters: the
    first ``v=`` (parameters split on ``&`` or ``;``, not percent-decoded) whose value starts
    with an id. ``watch?v=A&v=B`` is ``A``. A value with more than the 11 characters is
    returned whole, so the caller refuses it as yt-dlp's prefix match would not be exact.
    """
    for param in _QUERY_SPLIT.split(query):
        name, sep, value = param.partition("=")
        if sep and name == "v" and _YT_ID.match(value):
            return value
    return ""


def _tiktok(path: str) -> tuple[str | None, str] | None:
    if m := _TIKTOK_VIDEO.fullmatch(path):
        return m.group("user"), m.group("id")
    if m := _TIKTOK_MOBILE.fullmatch(path):
        return None, m.group("id")
    return None


def _normalise(scheme: str, host: str, port: int | None, path: str, query: str) -> str:
    """Lower-case scheme and host; drop default ports, fragments and tracking parameters."""
    default = {"http": 80, "https": 443}[scheme]
    netloc = host if port in (None, default) else f"{host}:{port}"
    params = sorted(
        (k, v)
        for k, v in parse_qsl(query, keep_blank_values=True)
        if not _TRACKING_PARAMS.fullmatch(k)
    )
    return urlunsplit((scheme, netloc, path or "/", urlencode(params), ""))


def clip_id(video_id: str, start_s: float | None, end_s: float | None) -> str:
    """Return the sample id of a clip: ``<video_id>_<start_ms:08d>_<end_ms:08d>``, or the video id.

    Example:
        >>> clip_id("dQw4w9WgXcQ", 1.5, 9.0)
        'dQw4w9WgXcQ_00001500_00009000'
    """
    if start_s is None and end_s is None:
        return video_id
    start_ms = round((start_s or 0.0) * 1000)
    end = "end" if end_s is None else f"{round(end_s * 1000):08d}"
    return f"{video_id}_{start_ms:08d}_{end}"
