from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yt_dlp

from svm_toolkit.testing import BOT_CHECK_TEXT, LoopbackServer, Route


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_media_route_serves_the_file_with_ranges(server: LoopbackServer, media_dir: Path) -> None:
    data = (media_dir / "clip.mp4").read_bytes()
    status, headers, body = fetch(server.url(Route.MEDIA, "clip.mp4"))
    assert (status, headers["Content-Type"], body) == (200, "video/mp4", data)
    status, headers, body = fetch(server.url(Route.MEDIA, "clip.mp4"), {"Range": "bytes=10-19"})
    assert (status, body, headers["Content-Range"]) == (
        206,
        data[10:20],
        f"bytes 10-19/{len(data)}",
    )
    status, _, body = fetch(server.url(Route.MEDIA, "clip.mp4"), {"Range": "bytes=-5"})
    assert (status, body) == (206, data[-5:])


@pytest.mark.parametrize(
    ("route", "status", "text"),
    [
        (Route.MISSING, 404, "File not found"),
        (Route.BOT_CHECK, 403, BOT_CHECK_TEXT),
        (Route.RATE_LIMITED, 429, "Too Many Requests"),
        (Route.SERVER_ERROR, 500, "Internal Server Error"),
    ],
)
def test_failure_routes(server: LoopbackServer, route: Route, status: int, text: str) -> None:
    got, headers, body = fetch(server.url(route, "clip.mp4"))
    assert (got, body.decode()) == (status, text)
    if route is Route.RATE_LIMITED:
        assert headers["Retry-After"] == "1"


def test_unknown_files_and_escapes_are_404(server: LoopbackServer) -> None:
    assert fetch(server.url(Route.MEDIA, "nope.mp4"))[0] == 404
    assert fetch(f"{server.base_url}/media/..%2F..%2Fetc%2Fpasswd")[0] == 404
    assert fetch(f"{server.base_url}/whatever/clip.mp4")[0] == 404


def test_slow_route_waits(server: LoopbackServer, media_dir: Path) -> None:
    started = time.perf_counter()
    status, _, body = fetch(server.url(Route.SLOW, "clip.mp4"))
    assert status == 200 and body == (media_dir / "clip.mp4").read_bytes()
    assert time.perf_counter() - started >= server.slow_s


def test_truncated_route_breaks_its_promise(server: LoopbackServer) -> None:
    with pytest.raises(http.client.IncompleteRead):
        fetch(server.url(Route.TRUNCATED, "clip.mp4"))


def test_page_route_embeds_a_video_tag(server: LoopbackServer) -> None:
    status, headers, body = fetch(server.url(Route.PAGE, "clip.mp4"))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<video controls src="/media/clip.mp4">' in body.decode()


def test_stop_does_not_wait_for_slow_requests(media_dir: Path) -> None:
    srv = LoopbackServer(media_dir, slow_s=30).start()
    started = time.perf_counter()
    srv.stop()
    assert time.perf_counter() - started < 5


class _Quiet:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...
    def error(self, msg: str) -> None:
        self.errors.append(msg)


def ytdlp(url: str, out: Path) -> dict[str, object]:
    options = {
        "outtmpl": str(out / "%(id)s.%(ext)s"),
        "logger": _Quiet(),
        "quiet": True,
        "noprogress": True,
        "socket_timeout": 10,
        "retries": 0,
        "extractor_retries": 0,
    }
    with yt_dlp.YoutubeDL(options) as ydl:
        return ydl.extract_info(url)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("route", "extractor"), [(Route.MEDIA, "generic"), (Route.PAGE, "html5")])
def test_ytdlp_generic_extractor_downloads_from_loopback(
    server: LoopbackServer, media_dir: Path, tmp_path: Path, route: Route, extractor: str
) -> None:
    info = ytdlp(server.url(route, "clip.mp4"), tmp_path)
    assert (
        info["extractor"] == extractor
    )  # the generic extractor; HTML5 <video> pages report 'html5'
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == (media_dir / "clip.mp4").read_bytes()


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route.MISSING, "HTTP Error 404"),
        (Route.BOT_CHECK, "HTTP Error 403"),
        (Route.RATE_LIMITED, "HTTP Error 429"),
    ],
)
def test_ytdlp_sees_failure_routes(
    server: LoopbackServer, tmp_path: Path, route: Route, message: str
) -> None:
    with pytest.raises(yt_dlp.utils.DownloadError, match=message):
        ytdlp(server.url(route, "clip.mp4"), tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".part"]
