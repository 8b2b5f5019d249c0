"""A loopback HTTP server (port 0) that serves a folder of media with failure routes.

Each :class:`Route` is a path prefix; the rest of the path names a file in the folder::

    with LoopbackServer(folder) as server:
        server.url(Route.MEDIA, "clip.mp4")      # 200, with Range support
        server.url(Route.BOT_CHECK, "clip.mp4")  # 403 with YouTube's bot-check wording
        server.url(Route.REDIRECT, "ftp://example.com/x.mp4")  # 302 to any URL

yt-dlp's generic extractor downloads these URLs like any site's, so downloader tests exercise
the real yt-dlp code path without leaving the machine.
"""

from __future__ import annotations

import html
import logging
import time
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from svm_toolkit.testing.http import BackgroundServer

logger = logging.getLogger(__name__)

#: The wording YouTube uses when it asks for a sign-in (yt-dlp surfaces it in its error).
BOT_CHECK_TEXT: Final = (
    "Sign in to confirm you\u2019re not a bot. This helps protect our community."
)

#: What S3 answers when it sheds load (503 Slow Down): an XML error document.
XML_SLOW_DOWN: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    "<Message>Please reduce your request rate.</Message>"
    "<RequestId>4442587FB7D0A2F9</RequestId></Error>"
)
#: A web server's 404 page: a whole HTML document, most of it markup.
NOT_FOUND_PAGE: Final = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    "<title>404 Not Found</title><style>body{font-family:sans-serif;margin:4em}"
    "h1{color:#c00}</style></head>\n<body>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on this server.</p>\n"
    + "<!-- padding so the page is as long as real ones -->\n" * 20
    + "<hr><address>Apache/2.4.57 (Debian) Server at 127.0.0.1</address>\n</body></html>\n"
)
#: What a captive portal or a soft-error site sends as "the video": an HTML page.
SOFT_ERROR_PAGE: Final = (
    "<!DOCTYPE html><html><head><title>Video not available</title></head>"
    "<body><h1>Sorry, this video is not available.</h1>"
    + "<p>lorem ipsum</p>" * 50
    + "</body></html>"
)

#: A livestream's HLS media playlist: segments so far, no ``#EXT-X-ENDLIST`` (yt-dlp's generic
#: extractor reads that as ``live_status: is_live``).
LIVE_PLAYLIST: Final = (
    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1041\n"
    "#EXTINF:2.000,\nsegment1041.ts\n#EXTINF:2.000,\nsegment1042.ts\n"
)

_CONTENT_TYPES: Final = {
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mov": "video/quicktime",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".m3u8": "application/vnd.apple.mpegurl",
}


class Route(StrEnum):
    """What the server does for a path under each prefix."""

    MEDIA = "media"  # 200 with the file (Range requests honoured)
    MISSING = "missing"  # 404 Not Found
    BOT_CHECK = "bot"  # 403 with BOT_CHECK_TEXT
    RATE_LIMITED = "ratelimit"  # 429 Too Many Requests, Retry-After: 1
    SERVER_ERROR = "error"  # 500 Internal Server Error
    SLOW = "slow"  # waits `slow_s` before answering, then 200
    TRUNCATED = "truncated"  # promises the whole file, sends half, closes
    PAGE = "page"  # an HTML page with a <video> tag pointing at /media/<name>
    # Hostile servers (the name is a file unless said otherwise):
    TRICKLE = "trickle"  # headers at once, then the body one byte every `trickle_s`
    TRICKLE_HEADERS = "trickleheaders"  # even the status line and headers one byte at a time
    ENDLESS = "endless"  # video/mp4 with no length, zeros for as long as the client reads
    REDIRECT = "redirect"  # 302 to <name>, any URL (another scheme, port or address)
    PAGE_TO = "pageto"  # an HTML page whose <video> points at <name>, any URL (file:///...)
    # What real platforms and storage answer (see the constants above the class):
    FORBIDDEN = "forbidden"  # 403 Forbidden, empty body (an expired signed media URL)
    PAGE_FORBIDDEN = "pageforbidden"  # a page that extracts fine; its <video> is /forbidden/<name>
    XML_ERROR = "xmlerror"  # 503 with a storage XML error body (S3's SlowDown)
    MISSING_PAGE = "missingpage"  # 404 with a whole HTML error page, as web servers send
    HTML_AS_MEDIA = "htmlasmedia"  # 200 video/mp4 whose body is an HTML page (a soft error)
    LIVE = "live"  # an HLS playlist with no end (#EXT-X-ENDLIST): a livestream in progress
    STATUS = "status"  # <name> is an HTTP status code (401, 451...): that code and its phrase


class LoopbackServer(BackgroundServer):
    """Serve ``root`` on ``127.0.0.1`` at a free port, on a daemon thread.

    Args:
        root: folder whose files are served (names only; no path escapes it).
        slow_s: how long the ``slow`` route waits before answering, seconds.
        trickle_s: the pause between two bytes of the ``trickle`` routes, seconds.
    """

    def __init__(self, root: Path, *, slow_s: float = 5.0, trickle_s: float = 1.0) -> None:
        self.root = Path(root).resolve()
        self.slow_s = slow_s
        self.trickle_s = trickle_s
        self.requests: list[str] = []
        #: The ``Authorization`` header of each request, in the order of :attr:`requests`.
        self.authorization: list[str | None] = []
        super().__init__(_make_handler(self))

    def url(self, route: Route, name: str) -> str:
        """Return the URL of file ``name`` under ``route``."""
        return f"{self.base_url}/{route.value}/{quote(name)}"

    def _file(self, name: str) -> Path | None:
        path = (self.root / name).resolve()
        if path.parent != self.root and self.root not in path.parents:
            return None
        return path if path.is_file() else None


def _status(name: str) -> HTTPStatus:
    """The error status a ``status`` route names (``451``, ``451.mp4``); 400 for anything else."""
    try:
        code = HTTPStatus(int(name)) if name.isdigit() else HTTPStatus.BAD_REQUEST
    except ValueError:
        return HTTPStatus.BAD_REQUEST
    return code if code >= 400 else HTTPStatus.BAD_REQUEST


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("loopback: " + format, *args)

        def do_HEAD(self) -> None:
            self._handle(body=False)

        def do_GET(self) -> None:
            self._handle(body=True)

        def _handle(self, *, body: bool) -> None:
            server.requests.append(self.path)
            server.authorization.append(self.headers.get("Authorization"))
            prefix, _, name = urlsplit(self.path).path.lstrip("/").partition("/")
            name = unquote(name)
            try:
                route = Route(prefix)
            except ValueError:
                self._text(HTTPStatus.NOT_FOUND, f"unknown route {prefix!r}", body=body)
                return
            if route is Route.MISSING:
                self._text(HTTPStatus.NOT_FOUND, "File not found", body=body)
            elif route is Route.BOT_CHECK:
                self._text(HTTPStatus.FORBIDDEN, BOT_CHECK_TEXT, body=body)
            elif route is Route.RATE_LIMITED:
                self._text(
                    HTTPStatus.TOO_MANY_REQUESTS, "Too Many Requests", body=body, retry_after=1
                )
            elif route is Route.SERVER_ERROR:
                self._text(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error", body=body)
            elif route is Route.FORBIDDEN:
                self._text(HTTPStatus.FORBIDDEN, "", body=body)
            elif route is Route.PAGE_FORBIDDEN:
                self._page(name, body=body, media=Route.FORBIDDEN)
            elif route is Route.XML_ERROR:
                self._text(HTTPStatus.SERVICE_UNAVAILABLE, XML_SLOW_DOWN, body=body, kind="xml")
            elif route is Route.MISSING_PAGE:
                self._text(HTTPStatus.NOT_FOUND, NOT_FOUND_PAGE, body=body, kind="html")
            elif route is Route.HTML_AS_MEDIA:
                self._text(HTTPStatus.OK, SOFT_ERROR_PAGE, body=body, kind="mp4")
            elif route is Route.LIVE:
                self._text(HTTPStatus.OK, LIVE_PLAYLIST, body=body, kind="m3u8")
            elif route is Route.STATUS:
                code = _status(Path(name).stem)
                self._text(code, code.phrase, body=body)
            elif route is Route.PAGE:
                self._page(name, body=body)
            elif route is Route.PAGE_TO:
                self._html(f'<video controls src="{html.escape(name)}"></video>', body=body)
            elif route is Route.REDIRECT:
                self.send_response(HTTPStatus.FOUND)
                self.send_header("Location", name)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif route is Route.ENDLESS:
                self._endless(body=body)
            elif route is Route.TRICKLE_HEADERS:
                self._trickle_headers(name)
            else:
                self._media(route, name, body=body)

        def _text(
            self,
            status: HTTPStatus,
            text: str,
            *,
            body: bool,
            retry_after: int | None = None,
            kind: str = "txt",
        ) -> None:
            data = text.encode()
            self.send_response(status)
            content_type = "application/xml" if kind == "xml" else _CONTENT_TYPES[f".{kind}"]
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _page(self, name: str, *, body: bool, media: Route = Route.MEDIA) -> None:
            if server._file(name) is None:
                self._text(HTTPStatus.NOT_FOUND, "File not found", body=body)
                return
            src = html.escape(f"/{media.value}/{quote(name)}")
            self._html(f'<video controls src="{src}"></video>', body=body)

        def _html(self, inner: str, *, body: bool) -> None:
            title = html.escape(Path(urlsplit(self.path).path).stem or "page")
            page = (
                f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
                f"{inner}</body></html>"
            ).encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", _CONTENT_TYPES[".html"])
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            if body:
                self.wfile.write(page)

        def _endless(self, *, body: bool) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            zeros = bytes(64 * 1024)
            while body and not server.stopping.is_set():
                self.wfile.write(zeros)  # until the client hangs up (BrokenPipeError)

        def _trickle_headers(self, name: str) -> None:
            path = server._file(name)
            size = path.stat().st_size if path is not None else 0
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {size}\r\n"
                "X-Padding: " + "x" * 4096 + "\r\n\r\n"
            ).encode()
            self.close_connection = True
            for i in range(len(head)):
                if server.stopping.wait(server.trickle_s):
                    return
                self.wfile.write(head[i : i + 1])
                self.wfile.flush()

        def _trickle(self, data: bytes) -> None:
            self.close_connection = True
            for i in range(len(data)):
                if server.stopping.wait(server.trickle_s):
                    return
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()

        def _media(self, route: Route, name: str, *, body: bool) -> None:
            path = server._file(name)
            if path is None:
                self._text(HTTPStatus.NOT_FOUND, "File not found", body=body)
                return
            if route is Route.SLOW and server.stopping.wait(server.slow_s):
                return  # shutting down
            data = path.read_bytes()
            start, end = 0, len(data) - 1
            status = HTTPStatus.OK
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and route is not Route.TRUNCATED:
                first, _, last = ranged[6:].partition("-")
                if first:
                    start, end = int(first), min(int(last), end) if last else end
                else:  # a suffix range: the last N bytes
                    start = max(0, len(data) - int(last or 0))
                if start > end:
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = HTTPStatus.PARTIAL_CONTENT
            self.send_response(status)
            self.send_header(
                "Content-Type", _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
            )
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status is HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            if route is Route.TRUNCATED:
                self.send_header("Connection", "close")
            self.end_headers()
            if not body:
                return
            if route is Route.TRICKLE:
                self.wfile.flush()
                self._trickle(data[start : end + 1])
                return
            if route is Route.TRUNCATED:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                time.sleep(0.05)
                self.close_connection = True
                return
            self.wfile.write(data[start : end + 1])

    return Handler
