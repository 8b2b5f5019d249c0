"""The one classifier: raw messages from yt-dlp, ffmpeg and HTTP -> a :class:`Status`.

Three steps, in this order:

1. The toolkit's own refusals (the network policy, the size cap): their wording is ours.
2. An HTTP status in the message decides before any body text: 5xx is ``network_error``
   (retried) whatever its body says (an XML error document included), 429 ``rate_limited``,
   404/410 ``unavailable``, 451 ``geo_blocked`` (blocked for legal reasons where the request came
   from; a proxy elsewhere may get it), 401 ``login_required``, 408 ``timeout``. A 403 is a
   refusal only when its wording says which (a bot check, a blocked IP, a region, an age gate,
   a login); otherwise a 403 on the media bytes after the page extracted fine (an expired signed
   URL, a missing proof-of-origin token, throttling) is ``media_forbidden``, retried with a fresh
   extraction, and a 403 on the page itself is ``unavailable``.
3. Ordered wording rules, specific before generic; the first that matches wins.

Unknown messages give ``None``; the caller picks its default and keeps the message as the row's
detail. The table of real messages behind these rules, each with the yt-dlp file it comes from,
is ``tests/download/test_messages.py``.
"""

from __future__ import annotations

import re
from typing import Final

from svm_toolkit.schema import Status


def _rules(*rules: tuple[str, Status]) -> tuple[tuple[re.Pattern[str], Status], ...]:
    return tuple((re.compile(pattern, re.IGNORECASE), status) for pattern, status in rules)


#: Step 1: the toolkit's own refusals, whatever else the message holds.
_OURS: Final = _rules(
    (
        r"refused by the network policy|file:// URLs are disabled|unsupported url scheme",
        Status.REFUSED_HOST,
    ),
    (r"larger than max-filesize|larger than the size cap", Status.TOO_LARGE),
)

#: Step 2: an HTTP status: yt-dlp's and ours ("HTTP Error 403: Forbidden"), ffmpeg's ("HTTP error
#: 403 Forbidden", "Server returned 403 Forbidden (access denied)", "Server returned 5XX ...").
_HTTP_STATUS: Final = re.compile(
    r"\bHTTP Error (?P<code>[1-5]\d\d)\b|\bServer returned (?P<ffmpeg>[45](?:\d\d|XX))\b",
    re.IGNORECASE,
)
_BY_CODE: Final = {
    401: Status.LOGIN_REQUIRED,
    404: Status.UNAVAILABLE,
    408: Status.TIMEOUT,
    410: Status.UNAVAILABLE,
    429: Status.RATE_LIMITED,
    451: Status.GEO_BLOCKED,
}
#: A 403 while fetching the media bytes (yt-dlp's downloaders and ffmpeg), not the page.
_MEDIA_BYTES: Final = re.compile(
    r"unable to download video data|\bfragment\b|Server returned 403|HTTP error 403 Forbidden",
    re.IGNORECASE,
)
#: A platform's own extractor: there a 403 on a page or API call is the platform refusing this
#: client (a flagged IP, a missing proof-of-origin token, throttling), never a deleted video,
#: which those platforms answer with 200 and a playability reason.
_PLATFORM: Final = re.compile(r"\[(youtube|tiktok)[^\]]*\]", re.IGNORECASE)
#: What a 403's wording may say instead of "forbidden".
_REFUSALS: Final = frozenset(
    {
        Status.BOT_CHECK,
        Status.IP_BLOCKED,
        Status.RATE_LIMITED,
        Status.GEO_BLOCKED,
        Status.AGE_RESTRICTED,
        Status.LOGIN_REQUIRED,
    }
)

#: Step 3: wording, specific before generic.
_WORDING: Final = _rules(
    # YouTube: "Sign in to confirm you're not a bot", "... requiring a captcha challenge";
    # TikTok: "Fresh cookies (not necessarily logged in) are needed".
    (r"confirm you.?re not a bot|captcha challenge|fresh cookies", Status.BOT_CHECK),
    # TikTok: "Your IP address is blocked ..."; YouTube: "Your IP is likely being blocked".
    (r"IP (address )?is (likely being )?blocked", Status.IP_BLOCKED),
    # YouTube: "This content isn't available, try again later. ... rate-limited by YouTube".
    (r"too many requests|rate.?limited|try again later", Status.RATE_LIMITED),
    (
        r"available in your country|not available (in|from) your (country|location)"
        r"|geo.?restrict|country domain|blocked by \w+ censorship|blocked it in your country",
        Status.GEO_BLOCKED,
    ),
    # Before the login rules: "Sign in to confirm your age", TikTok's "not be comfortable for
    # some audiences. Log in for access".
    (
        r"age.?restrict|confirm your age|inappropriate for some users"
        r"|comfortable for some audiences|age.?verification",
        Status.AGE_RESTRICTED,
    ),
    # Premieres and live events that have not started; a channel that is not live now.
    (
        r"live event will begin|premieres? (in|will begin|starting)|will begin shortly"
        r"|not currently live|is_upcoming|scheduled to start",
        Status.NOT_YET_AVAILABLE,
    ),
    # A livestream going on: yt-dlp's downloaders refuse it, or a !is_live match filter.
    (
        r"Live HLS streams are not supported|Live DASH videos are not supported"
        r"|does not pass filter \(!is_live\)|live stream is in progress",
        Status.LIVE,
    ),
    (
        r"members.only|channel.s members|join this channel|registered users"
        r"|requires payment|purchase|premium members|login (details )?(are )?(needed|required)"
        r"|requiring login|log ?in(to)? (for access|an account|to view)|granted access"
        r"|private video|video is private|account is( likely)? (either )?private"
        r"|do not have permission to view|\bsign in\b",
        Status.LOGIN_REQUIRED,
    ),
    (
        r"video unavailable|(video|post|content) is (currently )?unavailable"
        r"|(video|post) (is )?(no longer|not) available|has been removed|does not exist"
        r"|has been terminated|livestream has ended|NoSuchKey|AccessDenied",
        Status.UNAVAILABLE,
    ),
    (r"timed? ?out", Status.TIMEOUT),
    (
        r"connection (refused|reset|aborted)|name or service not known"
        r"|temporary failure in name resolution|nodename nor servname|getaddrinfo failed"
        r"|network is unreachable|no route to host|IncompleteRead|remote end closed"
        r"|unexpected answer|fragment \d+ not found|did not get any data blocks"
        r"|content too short|downloaded file is empty|incomplete data|unable to open fragment",
        Status.NETWORK_ERROR,
    ),
    (r"unsupported URL|no video formats found|DRM protected", Status.NOT_MEDIA),
    (r"invalid data found when processing input|moov atom not found", Status.DECODE_ERROR),
    (r"no space left on device|permission denied|read-only file system", Status.IO_ERROR),
)

#: Statuses worth another attempt in the same run, after a pause (a 403 on the media bytes
#: re-extracts: a fresh page gives a fresh signed URL; a file cut short is fetched again).
RETRYABLE: Final = frozenset(
    {
        Status.RATE_LIMITED,
        Status.TIMEOUT,
        Status.NETWORK_ERROR,
        Status.MEDIA_FORBIDDEN,
        Status.TRUNCATED,
    }
)
#: Not a verdict on the video and not worth an attempt now: worth one later, by a re-run with
#: ``--retry`` (a premiere or live event after its start, a livestream after it ended).
RETRY_LATER: Final = frozenset({Status.NOT_YET_AVAILABLE, Status.LIVE})


def classify(message: str) -> Status | None:
    """Return the status of a raw error message, or ``None`` when no rule matches.

    Example:
        >>> classify("ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found")
        <Status.UNAVAILABLE: 'unavailable'>
        >>> classify("ERROR: unable to download video data: HTTP Error 403: Forbidden")
        <Status.MEDIA_FORBIDDEN: 'media_forbidden'>
    """
    ours = _first(_OURS, message)
    if ours is not None:
        return ours
    http = _HTTP_STATUS.search(message)
    if http is not None:
        code = http.group("code") or http.group("ffmpeg")
        if code[0] == "5":
            return Status.NETWORK_ERROR
        if code == "403":
            worded = _first(_WORDING, message)
            if worded in _REFUSALS:
                return worded
            refused = _MEDIA_BYTES.search(message) or _PLATFORM.search(message)
            return Status.MEDIA_FORBIDDEN if refused else Status.UNAVAILABLE
        if code.isdigit() and int(code) in _BY_CODE:
            return _BY_CODE[int(code)]
    return _first(_WORDING, message)


def _first(rules: tuple[tuple[re.Pattern[str], Status], ...], message: str) -> Status | None:
    for pattern, status in rules:
        if pattern.search(message):
            return status
    return None
