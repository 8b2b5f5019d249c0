"""Configuration of ``svm download``: format, pacing, retries, access options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from svm_toolkit.download.limits import default_file_cap_mb
from svm_toolkit.download.netpolicy import NetPolicy
from svm_toolkit.download.pacing import DEFAULT_MAX_CONNECT_FAILURES
from svm_toolkit.errors import ConfigError
from svm_toolkit.schema import check_retry


@dataclass(frozen=True, slots=True)
class DownloadConfig:
    """How media are fetched: format, pacing, retries, limits and the network policy.

    Attributes:
        max_height: tallest video to fetch, pixels (models see 224 px; 480p decodes ~7x
            faster than 1080p).
        format: a yt-dlp format selector overriding the default (H.264 + AAC in MP4 at most
            ``max_height``).
        audio_only: fetch the audio alone (m4a), e.g. for music-only features.
        transcode: re-encode every stored file that is not already H.264 + AAC MP4 at most
            ``max_height`` to it (``--transcode``). Off by default: files are named by their
            real container and remuxed to MP4 by stream copy where the codecs allow
            (:mod:`~svm_toolkit.download.conform`); a transcode costs a full decode and encode.
        concurrency: downloads in flight at once.
        per_host: downloads in flight per host.
        rate: most downloads started per second, over the whole run (``None``: no limit).
        timeout_s: per-sample deadline, seconds, all attempts and pauses together, counted from
            the first attempt; a download past it is abandoned as ``timeout``.
        socket_timeout_s: longest wait for any single network read, seconds.
        max_attempts: tries per sample for retryable failures (429, timeouts, network errors).
        backoff_s: first pause between tries, seconds; doubled each try, with +-50 % jitter.
        backoff_max_s: longest pause between tries, seconds.
        breaker_threshold: consecutive ``rate_limited``/``bot_check`` outcomes that pause the run.
        breaker_pause_s: how long the run pauses then, seconds.
        breaker_max_pauses: pauses before the run stops with a message (the rest stays to do).
        max_connect_failures: attempts in a row that could not connect at all (connection
            refused, DNS failure, unreachable network) before the run stops with a message,
            finished rows committed, the rest to do (0: never stop). 20 is more than the
            attempts of a few samples, so one dead host among many does not stop the run.
        cookies: a Netscape cookies.txt file, passed to yt-dlp.
        cookies_from_browser: a browser name yt-dlp reads cookies from (``firefox``, ``chrome``...).
        proxy: a proxy URL for every request.
        sleep_interval_s: yt-dlp's sleep before each download, seconds (``max_sleep_interval_s``
            makes it random in between).
        max_sleep_interval_s: upper bound of that random sleep, seconds.
        retry: statuses whose samples this run re-downloads (``--retry``); empty: only new ones.
        commit_every_s: commit the ledger at least this often, seconds (a killed run redoes at
            most this much work).
        max_failure_rate: a run whose share of failed samples exceeds this exits with code 3.
        ytdlp_options: other yt-dlp ``YoutubeDL`` options, passed through as they are.
        max_file_mb: the largest media file one sample may write, MB (``None``: derived from the
            format, :func:`~svm_toolkit.download.limits.default_file_cap_mb`: 2,988 MB up to
            480p, 288 MB audio only); a larger one ends as ``too_large``.
        min_free_gb: the run stops (exit code 4, finished rows committed) when the dataset's
            disk has less free space than this, GB (0: no guard).
        allow_private_hosts: allow loopback and private addresses (also
            ``SVM_ALLOW_PRIVATE_HOSTS=1``); link-local and metadata addresses stay refused.
        deny_hosts: host names (with their subdomains) and CIDRs never connected to.
    """

    max_height: int = 480
    format: str | None = None
    audio_only: bool = False
    transcode: bool = False
    concurrency: int = 8
    per_host: int = 8
    rate: float | None = None
    timeout_s: float = 300.0
    socket_timeout_s: float = 20.0
    max_attempts: int = 3
    backoff_s: float = 2.0
    backoff_max_s: float = 60.0
    breaker_threshold: int = 5
    breaker_pause_s: float = 60.0
    breaker_max_pauses: int = 3
    max_connect_failures: int = DEFAULT_MAX_CONNECT_FAILURES
    cookies: str | None = None
    cookies_from_browser: str | None = None
    proxy: str | None = None
    sleep_interval_s: float | None = None
    max_sleep_interval_s: float | None = None
    retry: tuple[str, ...] = ()
    commit_every_s: float = 10.0
    max_failure_rate: float | None = None
    ytdlp_options: Mapping[str, Any] = field(default_factory=dict)
    max_file_mb: float | None = None
    min_free_gb: float = 2.0
    allow_private_hosts: bool = False
    deny_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = ("max_height", "concurrency", "per_host", "timeout_s", "socket_timeout_s",
                 "max_attempts", "breaker_threshold")  # fmt: skip
        positive = {name: getattr(self, name) for name in names}
        bad = [f"{k}={v}" for k, v in positive.items() if v <= 0]
        if self.rate is not None and self.rate <= 0:
            bad.append(f"rate={self.rate}")
        if self.max_file_mb is not None and self.max_file_mb <= 0:
            bad.append(f"max_file_mb={self.max_file_mb}")
        if bad:
            raise ConfigError(f"download settings must be > 0: {', '.join(bad)}")
        if self.max_connect_failures < 0:
            raise ConfigError(
                "max_connect_failures must be >= 0 (0: never stop), "
                f"got {self.max_connect_failures}"
            )
        if self.min_free_gb < 0:
            raise ConfigError(f"min_free_gb must be >= 0, got {self.min_free_gb}")
        try:
            self.policy  # noqa: B018 (validates the --deny-host entries)
        except ValueError as exc:
            raise ConfigError(
                f"--deny-host: {exc} (give host names like example.com or CIDRs like 10.0.0.0/8)"
            ) from None
        if self.max_failure_rate is not None and not 0 <= self.max_failure_rate <= 1:
            raise ConfigError(f"max_failure_rate must be in [0, 1], got {self.max_failure_rate}")
        check_retry(self.retry, "download")

    @property
    def format_selector(self) -> str:
        """The yt-dlp format selector: H.264 + AAC in MP4 at most ``max_height`` unless overridden.

        ``<=?`` lets formats of unknown height (a plain media URL) pass.
        """
        if self.format:
            return self.format
        if self.audio_only:
            return "ba[acodec^=mp4a]/ba[ext=m4a]/ba/b"
        h = self.max_height
        return (
            f"bv*[height<=?{h}][vcodec^=avc1]+ba[acodec^=mp4a]/b[height<=?{h}][ext=mp4]"
            f"/bv*[height<=?{h}]+ba/b[height<=?{h}]/b"
        )

    @property
    def policy(self) -> NetPolicy:
        """Where this run may connect (reads ``SVM_ALLOW_PRIVATE_HOSTS`` now)."""
        return NetPolicy.create(
            allow_private=self.allow_private_hosts, deny=self.deny_hosts, proxy=self.proxy
        )

    @property
    def file_cap_bytes(self) -> int:
        """The per-file size cap, bytes: ``max_file_mb`` or the format's default."""
        mb = self.max_file_mb
        if mb is None:
            mb = default_file_cap_mb(self.max_height, audio_only=self.audio_only)
        return int(mb * 1e6)

    @property
    def extension(self) -> str:
        """The suffix of a file in the promised format: ``.m4a`` for audio only, else ``.mp4``.

        A stored file's own suffix is its real container's
        (:func:`~svm_toolkit.download.conform.conform`); this is the one it has when it is MP4.
        """
        return ".m4a" if self.audio_only else ".mp4"
