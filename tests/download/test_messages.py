"""Real messages from yt-dlp, ffmpeg and HTTP servers -> their status, and whether it is retried.

Each row is (message, status, where the text comes from). yt-dlp paths are relative to the
installed package (``.venv/lib/python3.11/site-packages/yt_dlp``); YouTube's own playability
reasons reach the user through ``yt_dlp/extractor/youtube/_video.py`` (``raise_no_formats(reason)``,
which adds the login hint to a reason that says "sign in"), so those rows cite that file too. The
``ERROR: [extractor] id:`` prefixes are how ``YoutubeDL.report_error`` and ``ExtractorError`` print.
"""

from __future__ import annotations

import pytest

from svm_toolkit.classify import RETRY_LATER, RETRYABLE, classify
from svm_toolkit.schema import Status

# extractor/common.py _login_hint(method="cookies"); extractor/youtube/_base.py _youtube_login_hint.
COOKIES_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  "
    "for how to manually pass cookies"
)
YT_HINT = (
    f"{COOKIES_HINT}. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube"
    "-cookies  for tips on effectively exporting YouTube cookies"
)
YT = "ERROR: [youtube] dQw4w9WgXcQ: "
TT = "ERROR: [TikTok] 7106594312292453675: "
GEN = "ERROR: [generic] clip: "

VIDEO = "yt_dlp/extractor/youtube/_video.py"
YT_BASE = "yt_dlp/extractor/youtube/_base.py"
COMMON = "yt_dlp/extractor/common.py"
TIKTOK = "yt_dlp/extractor/tiktok.py"
YDL = "yt_dlp/YoutubeDL.py"
HTTP_DL = "yt_dlp/downloader/http.py"
FRAGMENT = "yt_dlp/downloader/fragment.py"
HLS = "yt_dlp/downloader/hls.py"
DASH = "yt_dlp/downloader/dash.py"
UTILS = "yt_dlp/utils/_utils.py"
NET = "yt_dlp/networking/exceptions.py (HTTPError: 'HTTP Error {status}: {reason}')"
FFMPEG = "ffmpeg (libavutil/error.c, libavformat/http.c) stderr"
OURS = "svm_toolkit/download/request.py HTTPStatusError / yt8m/resolve.py"

MESSAGES: list[tuple[str, Status, str]] = [
    # --- YouTube playability reasons (YouTube's words, raised by _video.py) ---------------------
    (f"{YT}Sign in to confirm you\u2019re not a bot. {YT_HINT}", Status.BOT_CHECK, VIDEO),
    (
        f"{YT}Video unavailable. YouTube is requiring a captcha challenge before playback",
        Status.BOT_CHECK,
        VIDEO,
    ),
    (
        f"{YT}Sign in to confirm your age. This video may be inappropriate for some users. "
        f"{YT_HINT}",
        Status.AGE_RESTRICTED,
        VIDEO,
    ),
    (f"{YT}Age-restricted; requires authentication", Status.AGE_RESTRICTED, VIDEO),
    (
        f"{YT}Private video. Sign in if you've been granted access to this video. {YT_HINT}",
        Status.LOGIN_REQUIRED,
        VIDEO,
    ),
    (f"{YT}Private video", Status.LOGIN_REQUIRED, VIDEO),
    (
        f"{YT}Join this channel to get access to members-only content like this video, and "
        "other exclusive perks.",
        Status.LOGIN_REQUIRED,
        VIDEO,
    ),
    (
        f"{YT}This video is available to this channel's members on level: Member (or any higher "
        "level). Join this channel to get access to members-only content and other exclusive "
        "perks.",
        Status.LOGIN_REQUIRED,
        VIDEO,
    ),
    (f"{YT}This video requires payment to watch.", Status.LOGIN_REQUIRED, VIDEO),
    (
        f"{YT}Login details are needed to download this content. {YT_HINT}",
        Status.LOGIN_REQUIRED,
        YT_BASE,
    ),
    (f"{YT}This live event will begin in 3 hours.", Status.NOT_YET_AVAILABLE, VIDEO),
    (f"{YT}This live event will begin in a few moments.", Status.NOT_YET_AVAILABLE, VIDEO),
    (f"{YT}Premieres in 2 hours", Status.NOT_YET_AVAILABLE, VIDEO),
    (f"{YT}Premiere will begin shortly", Status.NOT_YET_AVAILABLE, VIDEO),
    (f"{YT}This video is unavailable", Status.UNAVAILABLE, VIDEO),
    (f"{YT}Video unavailable", Status.UNAVAILABLE, VIDEO),
    (f"{YT}This video is not available.", Status.UNAVAILABLE, VIDEO),
    (f"{YT}This video does not exist.", Status.UNAVAILABLE, VIDEO),
    (
        f"{YT}Video unavailable. This video has been removed by the uploader",
        Status.UNAVAILABLE,
        VIDEO,
    ),
    (
        f"{YT}This video has been removed for violating YouTube's policy on hate speech.",
        Status.UNAVAILABLE,
        VIDEO,
    ),
    (
        f"{YT}Video unavailable. This video is no longer available because the YouTube account "
        "associated with this video has been terminated.",
        Status.UNAVAILABLE,
        VIDEO,
    ),
    (
        f"{YT}Video unavailable. The uploader has not made this video available in your country",
        Status.GEO_BLOCKED,
        VIDEO,
    ),
    (
        f"{YT}This content isn't available, try again later. The current session has been "
        "rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to add a "
        "delay between video requests to avoid exceeding the rate limit. For more information, "
        "refer to  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#this-content-isnt-available-"
        "try-again-later",
        Status.RATE_LIMITED,
        VIDEO,
    ),
    (
        f"{YT}All player responses are invalid. Your IP is likely being blocked by Youtube",
        Status.IP_BLOCKED,
        VIDEO,
    ),
    (f"{YT}Incomplete data received", Status.NETWORK_ERROR, YT_BASE),
    # --- yt-dlp's generic extractor messages (extractor/common.py) -------------------------------
    (
        f"{GEN}This video is only available for registered users. {COOKIES_HINT}",
        Status.LOGIN_REQUIRED,
        COMMON,
    ),
    (
        f"{GEN}This video is not available from your location due to geo restriction",
        Status.GEO_BLOCKED,
        COMMON,
    ),
    (
        f"{GEN}Access to this webpage has been blocked by Indian censorship. Use a VPN or proxy "
        "server (with --proxy) to route around it.",
        Status.GEO_BLOCKED,
        COMMON,
    ),
    (f"{YT}This video is DRM protected", Status.NOT_MEDIA, COMMON),
    (
        f"{GEN}Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404: "
        "Not Found>)",
        Status.UNAVAILABLE,
        COMMON,
    ),
    (f"{GEN}Unable to download webpage: HTTP Error 410: Gone", Status.UNAVAILABLE, COMMON),
    (
        f"{GEN}Unable to download webpage: HTTP Error 403: Forbidden (caused by <HTTPError 403: "
        "Forbidden>)",
        Status.UNAVAILABLE,  # the page itself is forbidden: nothing was extracted
        COMMON,
    ),
    (
        f"{GEN}Unable to download webpage: HTTP Error 503: Service Unavailable (caused by "
        "<HTTPError 503: Service Unavailable>)",
        Status.NETWORK_ERROR,
        COMMON,
    ),
    (
        f"{GEN}Unable to download webpage: HTTP Error 503: Service Unavailable. <?xml version='1.0'"
        " encoding='UTF-8'?><Error><Code>NoSuchKey</Code><Message>Video unavailable</Message>",
        Status.NETWORK_ERROR,  # the status decides before the body's words
        COMMON,
    ),
    (
        f"{YT}Unable to download API JSON: HTTP Error 500: Internal Server Error",
        Status.NETWORK_ERROR,
        COMMON,
    ),
    (
        f"{GEN}Unable to download webpage: HTTP Error 429: Too Many Requests",
        Status.RATE_LIMITED,
        COMMON,
    ),
    (
        f"{GEN}Unable to download webpage: HTTP Error 451: Unavailable For Legal Reasons",
        Status.GEO_BLOCKED,
        COMMON,
    ),
    (f"{GEN}Unable to download webpage: HTTP Error 401: Unauthorized", Status.LOGIN_REQUIRED, NET),
    (f"{GEN}Unable to download webpage: HTTP Error 408: Request Timeout", Status.TIMEOUT, NET),
    (
        f"{GEN}Unable to download webpage: [Errno 111] Connection refused (caused by "
        "TransportError('[Errno 111] Connection refused'))",
        Status.NETWORK_ERROR,
        COMMON,
    ),
    (
        f"{GEN}Unable to download webpage: [Errno -2] Name or service not known",
        Status.NETWORK_ERROR,
        COMMON,
    ),
    (
        f"{GEN}Unable to download webpage: The read operation timed out (caused by "
        "TransportError('The read operation timed out'))",
        Status.TIMEOUT,
        COMMON,
    ),
    ("ERROR: Unsupported URL: http://example.com/page", Status.NOT_MEDIA, COMMON),
    # --- TikTok (extractor/tiktok.py) -------------------------------------------------------------
    (f"{TT}Your IP address is blocked from accessing this post", Status.IP_BLOCKED, TIKTOK),
    (
        f"{TT}You do not have permission to view this post. Log into an account that has access. "
        f"{COOKIES_HINT}",
        Status.LOGIN_REQUIRED,
        TIKTOK,
    ),
    (
        f"{TT}TikTok is requiring login for access to this content. {COOKIES_HINT}",
        Status.LOGIN_REQUIRED,
        TIKTOK,
    ),
    (
        f"{TT}This post may not be comfortable for some audiences. Log in for access. "
        f"{COOKIES_HINT}",
        Status.AGE_RESTRICTED,
        TIKTOK,
    ),
    (
        "ERROR: [tiktok:user] someone: This user's account is private. Log into an account that "
        "has access",
        Status.LOGIN_REQUIRED,
        TIKTOK,
    ),
    (f"{TT}Video not available, status code 10231", Status.UNAVAILABLE, TIKTOK),
    (
        f"{TT}Fresh cookies (not necessarily logged in) are needed",
        Status.BOT_CHECK,
        TIKTOK,
    ),
    ("ERROR: [tiktok:live] someone: This livestream has ended", Status.UNAVAILABLE, TIKTOK),
    (
        "ERROR: [tiktok:live] someone: The channel is not currently live",
        Status.NOT_YET_AVAILABLE,
        UTILS,
    ),
    # --- Fetching the media bytes after extraction (YoutubeDL.py, downloader/*) ------------------
    (
        "ERROR: unable to download video data: HTTP Error 403: Forbidden",
        Status.MEDIA_FORBIDDEN,
        YDL,
    ),
    (
        "[download] Got error: HTTP Error 403: Forbidden. Retrying fragment 3 (1/1)...",
        Status.MEDIA_FORBIDDEN,
        FRAGMENT,
    ),
    (
        "ERROR: unable to download video data: HTTP Error 503: Service Unavailable",
        Status.NETWORK_ERROR,
        YDL,
    ),
    ("ERROR: unable to download video data: HTTP Error 404: Not Found", Status.UNAVAILABLE, YDL),
    (
        "ERROR: unable to download video data: [Errno 104] Connection reset by peer",
        Status.NETWORK_ERROR,
        YDL,
    ),
    (
        "ERROR: content too short (expected 1048576 bytes and served 524288)",
        Status.NETWORK_ERROR,
        YDL,
    ),
    ("ERROR: fragment 3 not found, unable to continue", Status.NETWORK_ERROR, FRAGMENT),
    ("ERROR: The downloaded file is empty", Status.NETWORK_ERROR, FRAGMENT),
    ("ERROR: Did not get any data blocks", Status.NETWORK_ERROR, HTTP_DL),
    (
        "ERROR: unable to write data: [Errno 28] No space left on device",
        Status.IO_ERROR,
        HTTP_DL,
    ),
    (
        "WARNING: Live HLS streams are not supported by the native downloader. If this is a "
        'livestream, please add "--downloader ffmpeg --hls-use-mpegts" to your command',
        Status.LIVE,
        HLS,
    ),
    ("ERROR: Live DASH videos are not supported", Status.LIVE, DASH),
    ("Some Stream does not pass filter (!is_live), skipping ..", Status.LIVE, UTILS),
    ("ERROR: [generic] clip: No video formats found!", Status.NOT_MEDIA, YDL),
    # --- ffmpeg fetching media (yt-dlp's ffmpeg downloader, sections) -----------------------------
    (
        "[https @ 0x55d0c8] HTTP error 403 Forbidden\n"
        "https://rr1.example/videoplayback: Server returned 403 Forbidden (access denied)",
        Status.MEDIA_FORBIDDEN,
        FFMPEG,
    ),
    (
        "https://cdn.example/v.mp4: Server returned 5XX Server Error reply",
        Status.NETWORK_ERROR,
        FFMPEG,
    ),
    ("https://cdn.example/v.mp4: Server returned 404 Not Found", Status.UNAVAILABLE, FFMPEG),
    # --- our own HTTP client (direct media, the YT8M lookup) ------------------------------------
    (
        "HTTP Error 503: Service Unavailable. <?xml version='1.0' encoding='UTF-8'?><Error>"
        "<Code>ServiceUnavailable</Code></Error>",
        Status.NETWORK_ERROR,
        OURS,
    ),
    (
        "HTTP Error 404: <?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code>"
        "<Message>The specified key does not exist.</Message></Error>",
        Status.UNAVAILABLE,
        OURS,
    ),
    (
        "HTTP Error 403: Forbidden. <?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
        Status.UNAVAILABLE,
        OURS,
    ),
]


@pytest.mark.parametrize(("message", "status", "source"), MESSAGES)
def test_real_message(message: str, status: Status, source: str) -> None:
    assert source
    assert classify(message) is status, f"{message!r} ({source})"


def test_table_is_large_and_covers_every_download_verdict() -> None:
    assert len(MESSAGES) >= 40
    seen = {status for _, status, _ in MESSAGES}
    wanted = {
        Status.UNAVAILABLE,
        Status.GEO_BLOCKED,
        Status.AGE_RESTRICTED,
        Status.LOGIN_REQUIRED,
        Status.NOT_YET_AVAILABLE,
        Status.LIVE,
        Status.IP_BLOCKED,
        Status.RATE_LIMITED,
        Status.BOT_CHECK,
        Status.MEDIA_FORBIDDEN,
        Status.TIMEOUT,
        Status.NETWORK_ERROR,
        Status.NOT_MEDIA,
        Status.IO_ERROR,
    }
    assert wanted <= seen


#: What a run does with each status it gets from the table: retry now, leave for a later
#: ``--retry`` run, or record as a verdict.
RETRIED_NOW = {
    Status.RATE_LIMITED,
    Status.TIMEOUT,
    Status.NETWORK_ERROR,
    Status.MEDIA_FORBIDDEN,
    Status.TRUNCATED,  # a file cut short: fetched again (no message classifies to it)
}
LATER = {Status.NOT_YET_AVAILABLE, Status.LIVE}


@pytest.mark.parametrize(("message", "status", "source"), MESSAGES)
def test_retried_or_not(message: str, status: Status, source: str) -> None:
    got = classify(message)
    assert got is not None, source
    assert (got in RETRYABLE) == (status in RETRIED_NOW)
    assert (got in RETRY_LATER) == (status in LATER)


def test_transient_failures_are_never_permanent() -> None:
    assert RETRYABLE == RETRIED_NOW
    assert RETRY_LATER == LATER
    assert not RETRYABLE & RETRY_LATER
    for permanent in (Status.UNAVAILABLE, Status.LOGIN_REQUIRED, Status.GEO_BLOCKED):
        assert permanent not in RETRYABLE


@pytest.mark.parametrize(
    "message",
    [
        # the body of a 5xx never decides, whatever words it holds
        "HTTP Error 502: Bad Gateway. <html>This video is unavailable</html>",
        "HTTP Error 500: <?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
        "ERROR: unable to download video data: HTTP Error 504: Gateway Time-out",
    ],
)
def test_server_errors_are_retried_whatever_the_body(message: str) -> None:
    assert classify(message) is Status.NETWORK_ERROR


@pytest.mark.parametrize(
    ("message", "status"),
    [
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 403: Forbidden. "
            "Sign in to confirm you're not a bot",
            Status.BOT_CHECK,
        ),
        (f"{TT}HTTP Error 403: Forbidden. Your IP address is blocked", Status.IP_BLOCKED),
        (
            f"{GEN}Unable to download webpage: HTTP Error 403: Forbidden. The uploader has not "
            "made this video available in your country",
            Status.GEO_BLOCKED,
        ),
        # a 403 whose words say "gone" is still a page refusal, never a media retry
        (
            f"{GEN}Unable to download webpage: HTTP Error 403: Forbidden. Video unavailable",
            Status.UNAVAILABLE,
        ),
    ],
)
def test_a_403_says_which_refusal_by_its_wording(message: str, status: Status) -> None:
    assert classify(message) is status


def test_our_own_refusals_win_over_a_status() -> None:
    message = "Unable to download webpage: HTTP Error 503: refused by the network policy"
    assert classify(message) is Status.REFUSED_HOST


@pytest.mark.parametrize(
    "message",
    [
        # yt-dlp extractor/common.py's page and API download errors, on YouTube and TikTok
        "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 403: Forbidden "
        "(caused by <HTTPError 403: Forbidden>)",
        "ERROR: [TikTok] 7106594312292453675: Unable to download webpage: HTTP Error 403: "
        "Forbidden",
    ],
)
def test_a_platform_page_403_is_a_refusal_retried_never_gone(message: str) -> None:
    assert classify(message) is Status.MEDIA_FORBIDDEN and Status.MEDIA_FORBIDDEN in RETRYABLE


def test_a_country_copyright_block_is_geo_blocked() -> None:
    message = (  # YouTube's playability reason, through extractor/youtube/_video.py
        "ERROR: [youtube] x: Video unavailable. This video contains content from SME, who has "
        "blocked it in your country on copyright grounds"
    )
    assert classify(message) is Status.GEO_BLOCKED
