from __future__ import annotations

import pytest

from svm_toolkit.classify import RETRYABLE, classify
from svm_toolkit.schema import Status
from svm_toolkit.testing import BOT_CHECK_TEXT


@pytest.mark.parametrize(
    ("message", "status"),
    [
        (f"ERROR: [youtube] abc: {BOT_CHECK_TEXT}", Status.BOT_CHECK),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 403: Forbidden ("
            + BOT_CHECK_TEXT
            + ")",
            Status.BOT_CHECK,
        ),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 429: Too Many Requests",
            Status.RATE_LIMITED,
        ),
        (
            "ERROR: [youtube] x: The uploader has not made this video available in your country",
            Status.GEO_BLOCKED,
        ),
        (
            "ERROR: [youtube] x: Sign in to confirm your age. "
            "This video may be inappropriate for some users.",
            Status.AGE_RESTRICTED,
        ),
        (
            "ERROR: [youtube] x: This video may be inappropriate for some users.",
            Status.AGE_RESTRICTED,
        ),
        (
            "ERROR: [youtube] x: Private video. Sign in if you've been granted access",
            Status.LOGIN_REQUIRED,
        ),
        ("ERROR: [youtube] x: Video unavailable", Status.UNAVAILABLE),
        (
            "ERROR: [generic] missing: Unable to download webpage: HTTP Error 404: File not found",
            Status.UNAVAILABLE,
        ),
        (
            "HTTP Error 403: <?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
            Status.UNAVAILABLE,
        ),
        ("ERROR: Unable to download webpage: The read operation timed out", Status.TIMEOUT),
        ("HTTP Error 503: Service Unavailable", Status.NETWORK_ERROR),
        ("URLError: [Errno 111] Connection refused", Status.NETWORK_ERROR),
        ("ERROR: Unsupported URL: http://example.com/page", Status.NOT_MEDIA),
        ("[in#0 @ 0x1] moov atom not found", Status.DECODE_ERROR),
        ("OSError: [Errno 28] No space left on device", Status.IO_ERROR),
        (
            "ERROR: [generic] x: Unable to download webpage: refused by the network policy: "
            "169.254.169.254 is link-local, where cloud metadata lives (never allowed)",
            Status.REFUSED_HOST,
        ),
        (
            "ERROR: file:// URLs are disabled by default in yt-dlp for security reasons. "
            "Use --enable-file-urls to enable at your own risk.",
            Status.REFUSED_HOST,
        ),
        ('Unsupported url scheme: "ftp"', Status.REFUSED_HOST),
        (
            "[download] File is larger than max-filesize (5000 bytes > 100 bytes). Aborting.",
            Status.TOO_LARGE,
        ),
        ("something nobody has seen before", None),
    ],
)
def test_classify(message: str, status: Status | None) -> None:
    assert classify(message) is status


def test_retryable() -> None:
    assert {
        Status.RATE_LIMITED,
        Status.TIMEOUT,
        Status.NETWORK_ERROR,
        Status.MEDIA_FORBIDDEN,
        Status.TRUNCATED,
    } == RETRYABLE
