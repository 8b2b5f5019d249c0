from __future__ import annotations

import pytest

from svm_toolkit.ids import InvalidUrl, canonicalize, clip_id
from svm_toolkit.schema import Source

VIDEO = "dQw4w9WgXcQ"
YOUTUBE_FORMS = [
    f"https://www.youtube.com/watch?v={VIDEO}",
    f"https://youtube.com/watch?v={VIDEO}&t=42s&list=PL123",
    f"http://m.youtube.com/watch?feature=share&v={VIDEO}",
    f"https://music.youtube.com/watch?v={VIDEO}&si=abc",
    f"https://youtu.be/{VIDEO}",
    f"https://youtu.be/{VIDEO}?si=xyz&t=10",
    f"https://www.youtube.com/shorts/{VIDEO}",
    f"https://youtube.com/shorts/{VIDEO}?feature=share",
    f"https://www.youtube.com/embed/{VIDEO}?autoplay=1",
    f"https://www.youtube-nocookie.com/embed/{VIDEO}",
    f"https://www.youtube.com/live/{VIDEO}?feature=shared",
    f"https://www.youtube.com/v/{VIDEO}",
    f"HTTPS://WWW.YOUTUBE.COM/watch?v={VIDEO}#comments",
    f"  https://www.youtube.com/watch?v={VIDEO}  ",
]


@pytest.mark.parametrize("url", YOUTUBE_FORMS)
def test_youtube_forms_give_one_id(url: str) -> None:
    canonical = canonicalize(url)
    assert canonical.video_id == VIDEO
    assert canonical.source is Source.YOUTUBE
    assert canonical.url == f"https://www.youtube.com/watch?v={VIDEO}"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.tiktok.com/@travel.cam/video/7301234567890123456",
        "https://www.tiktok.com/@travel.cam/video/7301234567890123456?is_from_webapp=1&sender_device=pc",
        "https://tiktok.com/@travel.cam/video/7301234567890123456/",
        "https://m.tiktok.com/v/7301234567890123456.html",
    ],
)
def test_tiktok_forms(url: str) -> None:
    canonical = canonicalize(url)
    assert canonical.video_id == "7301234567890123456"
    assert canonical.source is Source.TIKTOK


def test_tiktok_author_and_canonical_url() -> None:
    canonical = canonicalize("https://www.tiktok.com/@travel.cam/video/7301234567890123456?lang=en")
    assert canonical.author == "travel.cam"
    assert canonical.url == "https://www.tiktok.com/@travel.cam/video/7301234567890123456"


@pytest.mark.parametrize(
    "url", ["https://vm.tiktok.com/ZMabc123/", "https://www.tiktok.com/t/ZTRabc123/"]
)
def test_tiktok_short_links_keep_a_url_hash(url: str) -> None:
    canonical = canonicalize(url)
    assert canonical.source is Source.URL
    assert canonical.video_id.startswith("u") and len(canonical.video_id) == 17
    assert canonical.url == url


def test_generic_urls_hash_their_normalised_form() -> None:
    a = canonicalize("http://Example.com:80/v/clip.mp4?b=2&a=1#frag").video_id
    b = canonicalize("http://example.com/v/clip.mp4?a=1&b=2&utm_source=x").video_id
    c = canonicalize("http://example.com/v/other.mp4?a=1&b=2").video_id
    d = canonicalize("http://example.com:8080/v/clip.mp4?a=1&b=2").video_id
    assert a == b
    assert len({a, c, d}) == 3


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=short",  # not 11 characters: not a video id
        "https://www.youtube.com/channel/UC123",
        "https://www.youtube.com/@someone",
    ],
)
def test_youtube_pages_that_are_not_videos_hash(url: str) -> None:
    assert canonicalize(url).source is Source.URL


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("ftp://example.com/a.mp4", "only http"),
        ("file:///etc/passwd", "only http"),
        ("javascript:alert(1)", "only http"),
        ("www.youtube.com/watch?v=dQw4w9WgXcQ", "only http"),
        ("../../etc/passwd", "only http"),
        ("http://", "no host"),
        ("http://exa mple.com/x", "whitespace"),
        ("http://example.com/\x00x", "control"),
        ("http://example.com:99999/x", "unparsable"),
        ("http://[::1/x", "unparsable"),
        ("http://example.com/" + "a" * 5000, "characters long"),
    ],
)
def test_invalid_urls(text: str, why: str) -> None:
    with pytest.raises(InvalidUrl, match=why):
        canonicalize(text)


def test_clip_ids() -> None:
    assert clip_id(VIDEO, None, None) == VIDEO
    assert clip_id(VIDEO, 1.5, 9.0) == f"{VIDEO}_00001500_00009000"
    assert clip_id(VIDEO, None, 3.0) == f"{VIDEO}_00000000_00003000"
    assert clip_id(VIDEO, 2.0, None) == f"{VIDEO}_00002000_end"


A, B = "AAAAAAAAAAA", "BBBBBBBBBBB"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"v={A}&v={B}", A),
        (f"x=1&v={A}&v={B}", A),
        (f"v={A};v={B}", A),
        (f"feature=share&v={A}&v={B}&t=3", A),
        (f"v=short&v={B}", B),
        (f"v=&v={B}", B),
        (f"xv={B}&v={A}", A),
    ],
)
def test_the_first_v_wins_as_in_yt_dlp(query: str, expected: str) -> None:
    """``watch?v=A&v=B`` is video A for YouTube and for yt-dlp's own URL pattern."""
    from yt_dlp.extractor.youtube import YoutubeIE

    url = f"https://www.youtube.com/watch?{query}"
    assert YoutubeIE._match_id(url) == expected  # the reference
    canonical = canonicalize(url)
    assert canonical.video_id == expected
    assert canonical.url == f"https://www.youtube.com/watch?v={expected}"


def test_a_v_longer_than_an_id_is_not_guessed() -> None:
    """yt-dlp would take the first 11 characters; the id stays a URL hash, as before."""
    canonical = canonicalize(f"https://www.youtube.com/watch?v={A}xyz&v={B}")
    assert canonical.source is Source.URL
