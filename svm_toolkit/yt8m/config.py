"""Configuration of ``svm manifest yt8m``: label selection, pseudo-id lookup, features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from svm_toolkit.download.netpolicy import NetPolicy
from svm_toolkit.download.pacing import DEFAULT_MAX_CONNECT_FAILURES
from svm_toolkit.errors import ConfigError
from svm_toolkit.yt8m.vocabulary import LABEL_PRESETS

#: Where YT8M's pseudo-id lookup files live (the bucket behind data.yt8m.org:
#: ``http://data.yt8m.org/2/j/i/<id[:2]>/<id>.js``, research.google.com/youtube8m/download.html).
OFFICIAL_LOOKUP_BASE: Final = "https://storage.googleapis.com/data.yt8m.org"


@dataclass(frozen=True, slots=True)
class ResolveConfig:
    """How pseudo ids are looked up.

    Attributes:
        lookup_base: base URL; ``<base>/2/j/i/<id[:2]>/<id>.js`` answers
            ``i("<id>","<youtube id>");``.
        concurrency: lookups in flight at once.
        timeout_s: per-request timeout, seconds.
        max_attempts: tries per id for retryable failures (timeouts, 429, 5xx, garbage answers).
        backoff_s: first pause between tries, seconds; doubled each try, with +-50 % jitter.
        backoff_max_s: longest pause, seconds.
        allow_private_hosts: allow a lookup mirror on loopback or a private network (also
            ``SVM_ALLOW_PRIVATE_HOSTS=1``); link-local and metadata addresses stay refused.
        deny_hosts: host names (with their subdomains) and CIDRs never contacted.
        max_connect_failures: lookups in a row that could not connect at all (connection
            refused, DNS failure, unreachable network) before the run stops with a message,
            the answers so far kept (0: never stop).
    """

    lookup_base: str = OFFICIAL_LOOKUP_BASE
    concurrency: int = 8
    timeout_s: float = 10.0
    max_attempts: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    allow_private_hosts: bool = False
    deny_hosts: tuple[str, ...] = ()
    max_connect_failures: int = DEFAULT_MAX_CONNECT_FAILURES

    def __post_init__(self) -> None:
        if not self.lookup_base.startswith(("http://", "https://")):
            raise ConfigError(f"lookup base {self.lookup_base!r} must be an http(s) URL")
        if (
            self.concurrency < 1
            or self.max_attempts < 1
            or self.timeout_s <= 0
            or self.backoff_s < 0
            or self.max_connect_failures < 0
        ):
            raise ConfigError(
                "concurrency and max_attempts must be >= 1, timeout_s > 0, backoff_s and "
                f"max_connect_failures >= 0: {self}"
            )
        try:
            NetPolicy.create(deny=self.deny_hosts)
        except ValueError as exc:
            raise ConfigError(
                f"--deny-host: {exc} (give host names like example.com or CIDRs like 10.0.0.0/8)"
            ) from None


@dataclass(frozen=True, slots=True)
class Yt8mConfig:
    """Which YT8M records become samples, and what else is written.

    Attributes:
        preset: a named label set from :data:`LABEL_PRESETS` (used when ``labels`` is empty).
        labels: label names or vocabulary indices; overrides the preset. Each value is one
            label or a comma list (a value that is itself a label name, like "Nike, Inc.", is
            taken whole); a name the vocabulary lists more than once selects all its indices.
            A single string is one value.
        match: keep a video with ``any`` of the labels, or only with ``all`` of them.
        resolve: look pseudo ids up (``None``: leave them ``unresolved``).
        features: write YT8M's own rgb/audio features as feature shards.
        skip_bad_records: skip a record that does not decode (its frame is intact: the next
            record is found) and go on; on a broken frame (CRC, cut short) keep the file's
            records before it and go on with the next file (default: stop with an error naming
            the file, record and byte offset).
    """

    preset: str = "music_video"
    labels: tuple[str, ...] = ()
    match: Literal["any", "all"] = "any"
    resolve: ResolveConfig | None = None
    features: bool = False
    skip_bad_records: bool = False

    def __post_init__(self) -> None:
        labels: object = self.labels
        if isinstance(labels, str):  # `labels: Concert` in a YAML file: one value, not letters
            object.__setattr__(self, "labels", (labels,))
        elif not all(isinstance(x, str | int) for x in self.labels):
            raise ConfigError(f"labels must be label names or indices, got {self.labels!r}")
        else:
            object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        if self.preset not in LABEL_PRESETS:
            raise ConfigError(
                f"unknown label preset {self.preset!r}; use one of {sorted(LABEL_PRESETS)}"
            )
        if self.match not in ("any", "all"):
            raise ConfigError(f"match must be 'any' or 'all', got {self.match!r}")
