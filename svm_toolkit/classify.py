"""The one classifier: raw messages from yt-dlp, ffmpeg and HTTP -> a :class:`Status`.

An ordered table of patterns; the first that matches wins, so more specific patterns come first
(a bot check is a 403 and must not read as ``unavailable``). Unknown messages give ``None``; the
caller picks its default and keeps the message as the row's detail.
"""

from __future__ import annotations

import re
from typing import Final

from svm_toolkit.schema import Status

_RULES: Final[tuple[tuple[re.Pattern[str], Status], ...]] = tuple(
    (re.compile(pattern, re.IGNORECASE), status)
    for pattern, status in (
        (
            r"refused by the network policy|file:// URLs are disabled|unsupported url scheme",
            Status.REFUSED_HOST,
        ),
        (r"larger than max-filesize|larger than the size cap", Status.TOO_LARGE),
        (r"confirm you.?re not a bot", Status.BOT_CHECK),
        (r"HTTP Error 429|too many requests", Status.RATE_LIMITED),
        (r"available in your country|geo.?restrict", Status.GEO_BLOCKED),
        (r"age.?restrict|confirm your age|inappropriate for some users", Status.AGE_RESTRICTED),
        (
            r"private video|video unavailable|has been removed|HTTP Error 40[34]|HTTP Error 410"
            r"|NoSuchKey|AccessDenied|<\?xml",
            Status.UNAVAILABLE,
        ),
        (r"timed? ?out", Status.TIMEOUT),
        (
            r"HTTP Error 5\d\d|connection (refused|reset|aborted)|name or service not known"
            r"|temporary failure in name resolution|network is unreachable|IncompleteRead"
            r"|remote end closed|unexpected answer",
            Status.NETWORK_ERROR,
        ),
        (r"unsupported URL|no video formats found", Status.NOT_MEDIA),
        (r"invalid data found when processing input|moov atom not found", Status.DECODE_ERROR),
        (r"no space left on device|permission denied|read-only file system", Status.IO_ERROR),
    )
)

#: Statuses worth another attempt in the same run, after a pause (a 403 on the media bytes
#: re-extracts: a fresh page gives a fresh signed URL).
RETRYABLE: Final = frozenset(
    {Status.RATE_LIMITED, Status.TIMEOUT, Status.NETWORK_ERROR, Status.MEDIA_FORBIDDEN}
)
#: Not a verdict on the video and not worth an attempt now: worth one later, by a re-run with
#: ``--retry`` (a premiere or live event after its start, a livestream after it ended).
RETRY_LATER: Final = frozenset({Status.NOT_YET_AVAILABLE, Status.LIVE})


def classify(message: str) -> Status | None:
    """Return the status of a raw error message, or ``None`` when no rule matches.

    Example:
        >>> classify("ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found")
        <Status.UNAVAILABLE: 'unavailable'>
    """
    for pattern, status in _RULES:
        if pattern.search(message):
            return status
    return None
