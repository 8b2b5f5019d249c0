"""``svm preprocess`` settings: filters, crop, speech, Mel recipes, workers; with presets."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

from svm_toolkit.errors import ConfigError
from svm_toolkit.preprocess.filters import FILTER_PRESETS, FILTERS, FilterConfig
from svm_toolkit.preprocess.recipes import LibrosaMel, MelChannels, get_recipes
from svm_toolkit.preprocess.speech import SpeechConfig
from svm_toolkit.schema import check_retry


@dataclass(frozen=True, slots=True)
class PreprocessConfig:
    """How ``svm preprocess`` treats each downloaded video.

    Attributes:
        filters: filter thresholds (a preset's by default).
        mel: Mel recipes to compute for videos that pass (``imagebind``, ``vggish``, ``librosa``).
        librosa: parameters of the ``librosa`` recipe.
        channels: which channels each Mel recipe reads, ``mean`` or ``first`` (defaults: each
            reference's; ``imagebind: first``, ``vggish: mean``, ``librosa: mean``).
        speech: how the speech ratio is measured.
        frames: keyframes sampled per video for the crop box (the hashes and the motion and
            darkness scores come from the picture track, every 0.5 s of the timeline).
        picture_track: hash the picture every 0.5 s of the timeline, in one pass over the
            reference frames (the split stage's picture links need it). ``false`` skips that
            pass, which costs about one full decode of the video (``benchmarks/preprocess.py``,
            one core: 58 s per video-hour at 360p and 123 s at 720p on x264 ultrafast clips,
            41 s at 360p on x264 medium ones; most of preprocessing): no picture hashes then
            (no picture links), and the motion and darkness scores come from the keyframes.
        crop_limit: brightest 8-bit luma still counted as a black border (cropdetect's 24).
        fingerprint_s: audio fingerprinted from the start, seconds (fpcalc's 120).
        write_cropped: also write each passing video, cropped, to ``preprocess/cropped/``.
        workers: parallel processes (1: in this process).
        retry: statuses whose samples this run redoes (``--retry``); empty: only new ones.
        commit_every_s: commit the outputs at least this often, seconds.
        max_media_s: longest video or soundtrack read, seconds (``None``: no bound, memory then
            grows with the file). Longer ones get the status ``too_long`` from their stated
            duration, without decoding; a file that states none (or lies) stops decoding
            there. The soundtrack takes 64 KB per second in memory per mono signal (16 kHz
            float32: the channel mean, plus one per Mel recipe that mixes or resamples its own,
            so up to three) and its analysis about twice one signal again: an hour-long video
            peaked at 1.3 GB in one process here with one signal, 0.8 GB of it torch and Silero.
    """

    filters: FilterConfig = FilterConfig()
    mel: tuple[str, ...] = ()
    librosa: LibrosaMel = LibrosaMel()
    channels: MelChannels = MelChannels()
    speech: SpeechConfig = SpeechConfig()
    frames: int = 8
    picture_track: bool = True
    crop_limit: int = 24
    fingerprint_s: float = 120.0
    write_cropped: bool = False
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    retry: tuple[str, ...] = ()
    commit_every_s: float = 10.0
    max_media_s: float | None = 3600.0

    def __post_init__(self) -> None:
        get_recipes(self.mel)  # unknown names fail here, before any work
        if self.frames < 2 or self.workers < 1 or self.fingerprint_s <= 0:
            raise ConfigError(
                f"preprocess needs frames >= 2, workers >= 1 and fingerprint_s > 0; got "
                f"frames={self.frames}, workers={self.workers}, fingerprint_s={self.fingerprint_s}"
            )
        if self.max_media_s is not None and self.max_media_s <= 0:
            raise ConfigError(
                f"max_media_s must be > 0 seconds (or null for no bound), got {self.max_media_s}"
            )
        if not 0 <= self.crop_limit < 255:
            raise ConfigError(f"crop_limit is an 8-bit luma level, got {self.crop_limit}")
        check_retry(self.retry, "preprocess", list(FILTERS))


#: Presets: the papers' filters, and the Mel recipe each paper's audio model takes. Each bounds
#: the length read (``max_media_s``): an hour for ``generic``, five times the longest video the
#: filters keep for the papers' presets (longer ones get every score but ``filtered:duration``).
PREPROCESS_PRESETS: Final = {
    "generic": PreprocessConfig(),
    "svm10k": PreprocessConfig(
        filters=FILTER_PRESETS["svm10k"], mel=("imagebind",), max_media_s=900.0
    ),
    "yt8m_music": PreprocessConfig(
        filters=FILTER_PRESETS["yt8m_music"], mel=("vggish",), max_media_s=3000.0
    ),
}
