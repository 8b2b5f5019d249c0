"""What real platforms answer, on loopback, through the real `svm download`.

Each answer gets its status, its retries (retryable ones up to --attempts, permanent ones once)
and a detail a person can use.

The routes (svm_toolkit/testing/server.py) stand for: an expired signed media URL (a page that
extracts fine, then 403 on the media bytes), a storage service shedding load (503 with an XML
body), a web server's whole 404 page, an HTML page served as ``video/mp4``, a livestream in
progress (an HLS playlist with no end). yt-dlp's generic extractor has no notion of an upcoming
live event (only YouTube's and a few sites' extractors report ``is_upcoming``), so that verdict
is tested on yt-dlp's own messages in tests/download/test_messages.py, not here.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest

from svm_toolkit.classify import RETRYABLE
from svm_toolkit.download.details import MAX_DETAIL, http_detail, short_detail, sniff_page
from svm_toolkit.schema import Status
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from svm_toolkit.testing.server import NOT_FOUND_PAGE, SOFT_ERROR_PAGE, XML_SLOW_DOWN
from svm_toolkit.testing.yt8m import FLAKY_YOUTUBE_ID, Answer, Yt8mLookupStub
from svm_toolkit.yt8m.config import ResolveConfig
from svm_toolkit.yt8m.resolve import resolve_ids
from tests.faults.download_helpers import dataset, ledger, leftovers, svm_download

ATTEMPTS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    root = tmp_path_factory.mktemp("served")
    make_media(root / "clip.mp4", MediaSpec(seconds=1, size=(96, 64)))
    (root / "page.mp4").write_text(SOFT_ERROR_PAGE)  # a page under a media name
    with LoopbackServer(root) as srv:
        yield srv


def _fast(tmp_path: Path) -> str:
    config = tmp_path / "fast.yaml"
    config.write_text("backoff_s: 0.01\nbackoff_max_s: 0.05\n")
    return str(config)


def test_each_platform_answer_is_its_status_retried_as_it_should_be(
    tmp_path: Path, server: LoopbackServer
) -> None:
    urls = {
        "expired": server.url(Route.PAGE_FORBIDDEN, "clip.mp4"),  # 403 on the media bytes
        "shedding": server.url(Route.XML_ERROR, "clip.mp4"),  # 503 + XML body
        "missing": server.url(Route.MISSING_PAGE, "clip.mp4"),  # 404 + a whole HTML page
        "soft404": server.url(Route.HTML_AS_MEDIA, "clip.mp4"),  # HTML as video/mp4
        "page_named_mp4": server.url(Route.MEDIA, "page.mp4"),  # HTML from a .mp4 file
        "live": server.url(Route.LIVE, "stream.m3u8"),  # a livestream in progress
        "ok": server.url(Route.PAGE, "clip.mp4"),
    }
    ds = dataset(tmp_path, urls)
    result = svm_download(ds, "--attempts", str(ATTEMPTS), "--config", _fast(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = ledger(ds)
    expected = {
        "expired": Status.MEDIA_FORBIDDEN,  # an expired signed URL: re-extracted, not "gone"
        "shedding": Status.NETWORK_ERROR,  # the 503 decides, not the XML after it
        "missing": Status.UNAVAILABLE,
        "soft404": Status.NOT_MEDIA,
        "page_named_mp4": Status.NOT_MEDIA,
        "live": Status.LIVE,  # not recorded until the deadline: a verdict at once
        "ok": Status.OK,
    }
    assert {k: r["status"] for k, r in rows.items()} == {k: s.value for k, s in expected.items()}
    for sid, status in expected.items():  # retryable ones up to --attempts, the others once
        want = ATTEMPTS if status in RETRYABLE else 1
        assert rows[sid]["attempts"] == want, (sid, rows[sid])
    # A re-extraction per attempt: the page is asked again (by the direct try, then by
    # yt-dlp), and its (expired) media URL.
    assert server.requests.count("/pageforbidden/clip.mp4") == 2 * ATTEMPTS
    assert server.requests.count("/forbidden/clip.mp4") == ATTEMPTS
    assert server.requests.count("/xmlerror/clip.mp4") == ATTEMPTS
    assert server.requests.count("/missingpage/clip.mp4") == 1
    assert leftovers(ds) == [] and sorted(p.name for p in (ds / "media").rglob("*.mp4")) == [
        "ok.mp4"
    ]
    # Details: one short line, the server's reason, no path into a scratch folder that is gone.
    details = {k: str(r["detail"]) for k, r in rows.items() if k != "ok"}
    for sid, detail in details.items():
        assert "\n" not in detail and len(detail) <= MAX_DETAIL, (sid, detail)
        assert ".tmp" not in detail and str(tmp_path) not in detail, (sid, detail)
    assert details["missing"] == "HTTP Error 404: Not Found"
    assert details["shedding"] == (
        "HTTP Error 503: Service Unavailable (SlowDown: Please reduce your request rate.)"
    )
    assert "HTTP Error 403: Forbidden" in details["expired"]
    assert details["soft404"] == "the server sent a web page, not media: Video not available"
    assert details["page_named_mp4"] == details["soft404"]
    assert details["live"] == (
        "a live stream in progress, not recorded (yt-dlp: does not pass filter (!is_live));"
        " retry after it ends"
    )
    # A re-run does nothing; --retry live asks the stream again (it may have ended by then).
    again = svm_download(ds, "--config", _fast(tmp_path))
    assert again.returncode == 0 and "0 videos (7 done before)" in again.stdout, again.stdout
    before = server.requests.count("/live/stream.m3u8")
    later = svm_download(ds, "--config", _fast(tmp_path), "--retry", "live")
    assert later.returncode == 0 and server.requests.count("/live/stream.m3u8") > before
    assert ledger(ds)["live"]["status"] == "live"


@pytest.mark.parametrize("behind_a_page", [False, True], ids=["direct", "yt-dlp"])
def test_each_http_status_decides_the_verdict_and_the_retries(
    tmp_path: Path, server: LoopbackServer, behind_a_page: bool
) -> None:
    """The HTTP status decides, for a direct file (our fetcher) and for media bytes behind a page
    that extracted fine (yt-dlp's "unable to download video data: HTTP Error <code>")."""
    expected = {
        401: Status.LOGIN_REQUIRED,  # cookies
        408: Status.TIMEOUT,
        410: Status.UNAVAILABLE,
        451: Status.GEO_BLOCKED,  # a legal block where the request came from: a proxy elsewhere
        502: Status.NETWORK_ERROR,
        504: Status.NETWORK_ERROR,
    }
    urls = {}
    for code in expected:
        url = server.url(Route.STATUS, f"{code}.mp4")
        urls[f"s{code}"] = server.url(Route.PAGE_TO, url) if behind_a_page else url
    ds = dataset(tmp_path, urls)
    result = svm_download(ds, "--attempts", str(ATTEMPTS), "--config", _fast(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = ledger(ds)
    got = {int(k[1:]): (r["status"], r["attempts"]) for k, r in rows.items()}
    want = {
        code: (status.value, ATTEMPTS if status in RETRYABLE else 1)
        for code, status in expected.items()
    }
    assert got == want
    for code in expected:  # every attempt asked the server (yt-dlp may ask twice)
        asked = server.requests.count(f"/status/{code}.mp4")
        assert asked >= want[code][1], (code, asked)
        phrase = HTTPStatus(code).phrase
        detail = str(rows[f"s{code}"]["detail"])
        assert f"HTTP Error {code}: {phrase}" in detail and len(detail) <= MAX_DETAIL


def test_a_broken_file_is_still_a_decode_error_with_a_short_detail(
    tmp_path: Path, server: LoopbackServer
) -> None:
    (server.root / "broken.mp4").write_bytes(bytes(range(256)) * 16)  # binary, not a container
    ds = dataset(tmp_path, {"broken": server.url(Route.MEDIA, "broken.mp4")})
    result = svm_download(ds, "--attempts", str(ATTEMPTS), "--config", _fast(tmp_path))
    assert result.returncode == 0, result.stderr
    row = ledger(ds)["broken"]
    assert (row["status"], row["attempts"]) == ("decode_error", 1)
    detail = str(row["detail"])
    assert detail.startswith("unreadable media: ") and "Invalid data found" in detail
    assert ".tmp" not in detail and str(tmp_path) not in detail and "[Errno" not in detail
    assert len(detail) <= MAX_DETAIL


def test_details_keep_the_reason_and_drop_the_page() -> None:
    assert http_detail(404, "Not Found", NOT_FOUND_PAGE) == "HTTP Error 404: Not Found"
    assert http_detail(404, "Not Found", "File not found") == (
        "HTTP Error 404: Not Found (File not found)"
    )
    assert http_detail(403, "Forbidden", "") == "HTTP Error 403: Forbidden"
    page = "<html><head><script>var x = '<b>';</script></head><body><h1>Gone</h1></body></html>"
    assert http_detail(410, "Gone", page) == "HTTP Error 410: Gone"
    assert http_detail(500, "Internal Server Error", "<html><p>db down</p></html>") == (
        "HTTP Error 500: Internal Server Error (db down)"
    )
    # yt-dlp's messages: one line, without its report-a-bug appendix and "caused by".
    raw = (
        "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found (caused by "
        "<HTTPError 404: 'Not Found'>); please report this issue on  https://github.com/yt-dlp"
        "/yt-dlp/issues?q= , filling out the appropriate issue template."
    )
    assert (
        short_detail(raw)
        == "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found"
    )
    scratch = Path("/data/ds/media/.tmp/abc")
    assert short_detail(
        f"writing media.mp4: [Errno 28] No space left: '{scratch}/media.mp4'", scratch
    ) == ("writing media.mp4: No space left: 'media.mp4'")
    long = short_detail("x" * 1000 + "\n" + "y")
    assert len(long) == MAX_DETAIL and long.endswith("\u2026")
    assert (
        short_detail("HTTP Error 404: Not Found. " + NOT_FOUND_PAGE) == "HTTP Error 404: Not Found"
    )
    assert short_detail("HTTP Error 503: Service Unavailable. " + XML_SLOW_DOWN).endswith(
        "(SlowDown: Please reduce your request rate.)"
    )


def test_sniffing_tells_pages_and_text_from_media(tmp_path: Path) -> None:
    page, text, clip, noise = (tmp_path / n for n in ("p.mp4", "t.mp4", "c.mp4", "n.mp4"))
    page.write_text("\ufeff\n  " + NOT_FOUND_PAGE)
    text.write_text("Access denied\nby the proxy\n")
    make_media(clip, MediaSpec(seconds=1, size=(32, 32)))
    noise.write_bytes(bytes(range(256)) * 4)
    assert sniff_page(page) == "the server sent a web page, not media: 404 Not Found"
    assert sniff_page(text) == "the server sent text, not media: Access denied"
    assert sniff_page(clip) is None and sniff_page(noise) is None
    assert sniff_page(tmp_path / "absent.mp4") is None


def test_a_503_with_an_xml_body_never_makes_a_lookup_gone(tmp_path: Path) -> None:
    answers = {"XmlF": Answer.XML_FLAKY, "XmlD": Answer.XML_DOWN, "Gone": Answer.DELETED}
    with Yt8mLookupStub(answers) as stub:
        config = ResolveConfig(
            lookup_base=stub.base_url, timeout_s=2, max_attempts=3, backoff_s=0.01, concurrency=3
        )
        got = resolve_ids([*answers, "Unkn"], tmp_path, config)
        assert {pid: (r.status, r.youtube_id, r.attempts) for pid, r in got.items()} == {
            "XmlF": ("ok", FLAKY_YOUTUBE_ID, 2),  # retried after one 503 with an XML body
            "XmlD": ("network_error", None, 3),  # every attempt spent, never "unavailable"
            "Gone": ("unavailable", None, 1),  # 403 AccessDenied: gone, asked once
            "Unkn": ("unavailable", None, 1),  # 404 NoSuchKey
        }
        assert got["XmlD"].detail == (
            "HTTP Error 503: Service Unavailable (ServiceUnavailable: Reduce your request rate.)"
        )
        assert got["Unkn"].detail == (
            "HTTP Error 404: Not Found (NoSuchKey: The specified key does not exist.)"
        )
        # The next run asks the one that is still down again, and only that one.
        before = dict(stub.requests)
        stub.answers["XmlD"] = "dQw4w9WgXcQ"
        again = resolve_ids([*answers, "Unkn"], tmp_path, config)
        assert again["XmlD"].status == "ok" and again["XmlD"].youtube_id == "dQw4w9WgXcQ"
        asked = {pid: stub.requests[pid] - before.get(pid, 0) for pid in [*answers, "Unkn"]}
        assert asked == {"XmlF": 0, "XmlD": 1, "Gone": 0, "Unkn": 0}


def test_a_200_whose_body_is_not_a_gone_document_is_retried(tmp_path: Path) -> None:
    with Yt8mLookupStub({"Junk": Answer.GARBAGE}) as stub:
        config = ResolveConfig(
            lookup_base=stub.base_url, timeout_s=2, max_attempts=2, backoff_s=0.01
        )
        (got,) = resolve_ids(["Junk"], tmp_path, config).values()
    assert (got.status, got.attempts) == ("network_error", 2)
    assert got.detail is not None and "\n" not in got.detail and len(got.detail) <= MAX_DETAIL


def test_the_served_pages_are_what_they_claim(server: LoopbackServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url(Route.XML_ERROR, "clip.mp4"), timeout=5)
    assert err.value.code == 503 and err.value.read().startswith(b"<?xml")
    with urllib.request.urlopen(server.url(Route.HTML_AS_MEDIA, "x.mp4"), timeout=5) as answer:
        assert answer.headers.get_content_type() == "video/mp4"
        assert answer.read().startswith(b"<!DOCTYPE html>")
