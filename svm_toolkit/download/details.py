"""Ledger details a person can use: one short line, the server's reason, no scratch paths.

The classifier reads the whole raw message (an error page's wording can decide the status); the
row's ``detail`` gets :func:`short_detail` of it: a 404's 3 kB HTML page becomes
``HTTP Error 404: Not Found (404 Not Found)``, a storage XML error its code and message, and a
path inside the sample's scratch folder (gone once the sample ends) just the file's name.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Final

#: The longest detail kept, characters (one line).
MAX_DETAIL: Final = 200

_TITLE: Final = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_XML_CODE: Final = re.compile(r"<Code>([^<]{1,80})</Code>")
_XML_MESSAGE: Final = re.compile(r"<Message>([^<]{1,200})</Message>")
_HEADING: Final = re.compile(r"<h[1-3][^>]*>(.*?)</h[1-3]", re.IGNORECASE | re.DOTALL)
_SCRIPT: Final = re.compile(r"<(script|style)\b.*?(</\1>|$)", re.IGNORECASE | re.DOTALL)
_COMMENT: Final = re.compile(r"<!--.*?(-->|$)|<!\w[^>]*>|<\?[^>]*\?>", re.DOTALL)
_TAG: Final = re.compile(r"<[^>]*(>|$)")
_SPACE: Final = re.compile(r"\s+")
#: yt-dlp's appendices that say nothing about this sample.
_BOILERPLATE: Final = re.compile(
    r";? *please report this issue on .*$|\s*\(caused by <[^>]*>\)"
    r"|\s*Confirm you are on the latest version using .*$",
    re.IGNORECASE | re.DOTALL,
)
_ERRNO: Final = re.compile(r"\[Errno -?\d+\] ")


def one_line(text: str, limit: int = MAX_DETAIL) -> str:
    """Collapse whitespace (newlines included) and cut to ``limit`` characters with an ellipsis.

    Example:
        >>> one_line("a\\n  b", 10)
        'a b'
    """
    text = _SPACE.sub(" ", "".join(c if c.isprintable() else " " for c in text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def body_gist(body: str, limit: int = 100) -> str:
    """The reason an error body gives, in a few words ('' when it says nothing).

    That is its XML code and message, its HTML title or first heading, or its first text line.

    Example:
        >>> body_gist("<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>")
        'NoSuchKey'
    """
    body = body.strip()
    if not body:
        return ""
    if code := _XML_CODE.search(body):
        message = _XML_MESSAGE.search(body)
        return one_line(code.group(1) + (f": {message.group(1)}" if message else ""), limit)
    if "<" in body and ">" in body:  # markup: its title, else its first heading, else its text
        for pattern in (_TITLE, _HEADING):
            if (found := pattern.search(body)) and (text := _text(found.group(1))):
                return one_line(text, limit)
        return one_line(_text(body), limit)
    first = next((line for line in body.splitlines() if line.strip()), "")
    return one_line(first, limit)


def _text(markup: str) -> str:
    markup = _COMMENT.sub(" ", _SCRIPT.sub(" ", markup))
    return html.unescape(_SPACE.sub(" ", _TAG.sub(" ", markup))).strip()


def http_detail(code: int, reason: str, body: str) -> str:
    """``HTTP Error <code>: <reason>``, with the body's gist when it adds something.

    Example:
        >>> http_detail(403, "Forbidden", "<html><title>403 Forbidden</title>...</html>")
        'HTTP Error 403: Forbidden'
        >>> http_detail(503, "Service Unavailable", "<Error><Code>SlowDown</Code></Error>")
        'HTTP Error 503: Service Unavailable (SlowDown)'
    """
    head = f"HTTP Error {code}: {reason}".strip().rstrip(":")
    gist = body_gist(body)
    same = {reason.lower(), f"{code} {reason}".lower(), ""}
    if gist.lower().rstrip(".") in same:
        return one_line(head)
    return one_line(f"{head} ({gist})")


def short_detail(message: str, scratch: Path | None = None) -> str:
    """A raw error message as a row's detail: one line of at most :data:`MAX_DETAIL` characters.

    ``HTTP Error <code>: <reason>. <body>`` keeps the code, the reason and the body's gist;
    yt-dlp's report-a-bug appendix and ``(caused by <...>)`` are dropped, ``[Errno N]`` too;
    a path inside ``scratch`` becomes the file's name.

    Example:
        >>> short_detail("HTTP Error 404: Not Found. <html><h1>Gone</h1></html>")
        'HTTP Error 404: Not Found (Gone)'
    """
    if scratch is not None:
        for prefix in {str(scratch), str(Path(scratch).resolve())}:
            message = message.replace(prefix + "/", "").replace(prefix, "")
    message = _ERRNO.sub("", _BOILERPLATE.sub("", message))
    if match := re.match(r"(.*?)HTTP Error (\d{3}): ([^.<\n]*)\.? ?(.*)", message, re.DOTALL):
        before, code, reason, body = match.groups()
        if "<" in body or "\n" in body.strip():  # an error page follows the reason
            return one_line(before + http_detail(int(code), reason.strip(), body))
    return one_line(message)


#: How a web page or markup starts (after a byte-order mark and white space), lower case.
_MARKUP: Final = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<!--", b"<script")


def sniff_page(path: Path, head_bytes: int = 4096) -> str | None:
    """Say what ``path`` holds when it is a web page or text rather than media, else ``None``.

    Media containers start with binary headers (NUL bytes, invalid UTF-8); a page or a text
    answer is UTF-8 without NUL bytes.

    Returns:
        A short detail naming the page's reason (its title or first line), or ``None``.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(head_bytes)
    except OSError:
        return None
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not body or b"\x00" in body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:  # cut inside a character at the end is still text
        if exc.start < len(body) - 4:
            return None
        text = body[: exc.start].decode("utf-8")
    gist = body_gist(text, limit=120)
    kind = "a web page" if body.lower().startswith(_MARKUP) else "text"
    return f"the server sent {kind}, not media" + (f": {gist}" if gist else "")
