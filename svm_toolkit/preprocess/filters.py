"""Filters: registered, configurable predicates over a video's facts and signals.

Every filter gives a :class:`Verdict` with its score, so all verdicts can be stored and users
can re-filter with other thresholds without decoding anything again. A video fails with the
status ``filtered:<name>`` of the first filter it fails, in registry order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from svm_toolkit.errors import ConfigError
from svm_toolkit.preprocess.signals import Signals
from svm_toolkit.probe import MediaFacts
from svm_toolkit.schema import filtered


@dataclass(frozen=True, slots=True)
class FilterConfig:
    """Filter thresholds; ``None`` switches a bound off.

    Attributes:
        min_duration_s, max_duration_s: allowed length, seconds.
        min_short_side: smallest allowed short side of the picture, pixels.
        min_aspect, max_aspect: allowed width / height (portrait < 1 < landscape).
        require_audio: drop videos without an audio stream.
        min_loudness_dbfs: drop soundtracks quieter than this RMS level, dBFS.
        max_silence_ratio: drop soundtracks silent for more than this share of 100 ms windows.
        min_motion: drop still pictures (mean luma change between sampled frames, 8-bit levels).
        max_black_ratio: drop pictures darker than this share of black pixels.
        max_speech_ratio: drop soundtracks that are speech for more than this share of the time
            (MVBind drops speech-dominated videos).
    """

    min_duration_s: float | None = None
    max_duration_s: float | None = None
    min_short_side: int | None = None
    min_aspect: float | None = None
    max_aspect: float | None = None
    require_audio: bool = True
    min_loudness_dbfs: float | None = -50.0
    max_silence_ratio: float | None = 0.8
    min_motion: float | None = 0.5
    max_black_ratio: float | None = 0.95
    max_speech_ratio: float | None = 0.5

    def __post_init__(self) -> None:
        for low, high in (
            (self.min_duration_s, self.max_duration_s),
            (self.min_aspect, self.max_aspect),
        ):
            if low is not None and high is not None and low > high:
                raise ConfigError(f"filter bounds are inverted: {low} > {high}")


#: Presets: SVM-10K's short videos; TIVM's YouTube-8M music videos (YT8M keeps 120-500 s videos).
FILTER_PRESETS: Final = {
    "svm10k": FilterConfig(min_duration_s=3.0, max_duration_s=180.0, min_short_side=144),
    "yt8m_music": FilterConfig(min_duration_s=30.0, max_duration_s=600.0, min_short_side=144),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One filter's judgement of one video."""

    name: str
    passed: bool
    score: float | None
    detail: str


Filter = Callable[[MediaFacts, Signals, FilterConfig], Verdict | None]
FILTERS: dict[str, Filter] = {}


def register(name: str) -> Callable[[Filter], Filter]:
    """Add a filter to the registry under ``name`` (its ``filtered:<name>`` reason)."""

    def add(fn: Filter) -> Filter:
        if name in FILTERS:
            raise ValueError(f"filter {name!r} registered twice")
        FILTERS[name] = fn
        return fn

    return add


def _bounds(
    name: str, value: float | None, low: float | None, high: float | None, unit: str
) -> Verdict | None:
    if value is None or (low is None and high is None):
        return None
    if low is not None and value < low:
        return Verdict(name, False, value, f"{value:g} {unit} < {low:g}")
    if high is not None and value > high:
        return Verdict(name, False, value, f"{value:g} {unit} > {high:g}")
    return Verdict(name, True, value, "")


@register("duration")
def _duration(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    return _bounds("duration", facts.duration_s, config.min_duration_s, config.max_duration_s, "s")


@register("resolution")
def _resolution(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    size = facts.display_size
    side = min(size) if size else None
    return _bounds("resolution", side, config.min_short_side, None, "px short side")


@register("aspect")
def _aspect(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    size = facts.display_size
    ratio = size[0] / size[1] if size else None
    return _bounds("aspect", ratio, config.min_aspect, config.max_aspect, "width/height")


@register("audio")
def _audio(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    if not config.require_audio:
        return None
    return Verdict(
        "audio",
        facts.has_audio,
        float(facts.has_audio),
        "" if facts.has_audio else "no audio stream",
    )


@register("loudness")
def _loudness(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    return _bounds("loudness", signals.loudness_dbfs, config.min_loudness_dbfs, None, "dBFS")


@register("silence")
def _silence(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    return _bounds(
        "silence", signals.silence_ratio, None, config.max_silence_ratio, "of the time silent"
    )


@register("static")
def _static(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    return _bounds("static", signals.motion, config.min_motion, None, "levels of motion")


@register("black")
def _black(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    return _bounds("black", signals.black_ratio, None, config.max_black_ratio, "of pixels black")


@register("speech")
def _speech(facts: MediaFacts, signals: Signals, config: FilterConfig) -> Verdict | None:
    return _bounds(
        "speech", signals.speech_ratio, None, config.max_speech_ratio, "of the time speech"
    )


def judge(
    facts: MediaFacts, signals: Signals, config: FilterConfig
) -> tuple[str | None, list[Verdict]]:
    """Run every filter.

    Returns:
        The status of the first failure (``filtered:<name>``, or ``None`` when all pass) and
        every verdict, passed or not.
    """
    verdicts = [v for fn in FILTERS.values() if (v := fn(facts, signals, config)) is not None]
    failed = next((v for v in verdicts if not v.passed), None)
    return (filtered(failed.name) if failed else None), verdicts
