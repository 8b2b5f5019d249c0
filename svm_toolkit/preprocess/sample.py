"""One video through preprocessing: probe → frames → crop → audio → signals → filters → outputs.

Each file is opened a few times but decoded sparingly: headers (probe), ``frames`` keyframes
(the crop box), the reference frames in one pass for the picture track (a perceptual hash of the
cropped picture every 0.5 s of the timeline, and from the same samples the motion and darkness
scores) and the whole soundtrack at 16 kHz (loudness, speech, Chromaprint, Mel). Files longer
than ``max_media_s`` are ``too_long`` (from the probe, or as soon as the soundtrack runs past
it), so memory is bounded whatever the file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from svm_toolkit import ffmpeg
from svm_toolkit.download.conform import MP4_AUDIO
from svm_toolkit.errors import SampleError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess.audio import MEAN, load_takes
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.crop import (
    CropBox,
    detect_crop,
    read_frames,
)
from svm_toolkit.preprocess.filters import judge
from svm_toolkit.preprocess.fingerprint import PictureTrack, chromaprint, picture_track
from svm_toolkit.preprocess.recipes import MelUnits, get_recipes
from svm_toolkit.preprocess.signals import Signals, audio_signals, video_signals
from svm_toolkit.preprocess.speech import SpeechDetector
from svm_toolkit.probe import MediaFacts, TruncatedMedia, probe_media
from svm_toolkit.schema import Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreprocessJob:
    """A downloaded sample: its id and its media file (relative to the dataset root)."""

    sample_id: str
    media_path: str


@dataclass(frozen=True, slots=True)
class PreprocessResult:
    """What preprocessing found out about one sample.

    Attributes:
        sample_id, media_path: the job's.
        status: ``ok``, ``filtered:<name>``, ``decode_error``, ``truncated``, ``not_media``,
            ``io_error``...
        detail: why, for anything but ``ok``.
        started_at: when the work began (UTC).
        seconds: wall time, seconds.
        facts, signals: probe facts and filter scores (``None`` when the file is unreadable);
            a truncated file keeps the facts of what decodes, a video whose soundtrack fails
            keeps its facts and picture scores.
        failed_filters: every filter the video fails, in registry order.
        crop: the content box in coded pixels (``None`` without a picture).
        phash, phash_times_s: the picture track: 64-bit hashes of the cropped picture every
            ``phash_step_s`` seconds of the timeline (0: a flat picture) and their times, seconds.
        phash_step_s: seconds between two hashes (``None`` without a picture).
        chromaprint: raw audio fingerprint (``None`` without audio).
        mels: recipe name -> units, for videos that pass.
        cropped_path: the cropped copy, relative to the dataset root (``write_cropped``).
    """

    sample_id: str
    media_path: str
    status: str
    detail: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0
    facts: MediaFacts | None = None
    signals: Signals | None = None
    failed_filters: tuple[str, ...] = ()
    crop: CropBox | None = None
    phash: tuple[int, ...] = ()
    phash_times_s: tuple[float, ...] = ()
    phash_step_s: float | None = None
    chromaprint: npt.NDArray[np.uint32] | None = None
    mels: dict[str, MelUnits] = field(default_factory=dict)
    cropped_path: str | None = None


class Preprocessor:
    """Preprocess one sample at a time; holds the speech model, loaded once per process."""

    def __init__(self, layout: DatasetLayout, config: PreprocessConfig) -> None:
        self.layout = layout
        self.config = config
        self.recipes = get_recipes(config.mel, config.librosa, config.channels)
        self.speech = SpeechDetector(config.speech)

    def __call__(self, job: PreprocessJob) -> PreprocessResult:
        """Preprocess one sample; expected failures become statuses, never exceptions."""
        started = datetime.now(UTC)
        clock = time.perf_counter()
        try:
            result = self._run(job)
        except SampleError as exc:
            result = PreprocessResult(job.sample_id, job.media_path, exc.status, exc.detail)
        except OSError as exc:  # the disk, not the video: retryable with --retry io_error
            detail = f"{exc.strerror or exc} ({exc.filename or job.media_path})"
            result = PreprocessResult(job.sample_id, job.media_path, Status.IO_ERROR.value, detail)
        return dataclasses.replace(result, started_at=started, seconds=time.perf_counter() - clock)

    def _run(self, job: PreprocessJob) -> PreprocessResult:
        path = self.layout.root / job.media_path
        if not path.is_file():
            raise SampleError(Status.IO_ERROR.value, f"{job.media_path}: media file is missing")
        try:
            facts = probe_media(path)
        except TruncatedMedia as exc:  # what the probe read is kept beside the reason
            return PreprocessResult(
                job.sample_id, job.media_path, exc.status, exc.detail, facts=exc.facts
            )
        limit = self.config.max_media_s
        if limit is not None and facts.duration_s is not None and facts.duration_s > limit:
            detail = (
                f"{job.media_path}: {facts.duration_s:,.0f} s long, more than max_media_s = "
                f"{limit:g} s (not decoded; raise it with --max-media-s to accept it)"
            )
            return PreprocessResult(
                job.sample_id, job.media_path, Status.TOO_LONG.value, detail, facts=facts
            )
        crop = None
        track: PictureTrack | None = None
        motion = black = None
        if facts.has_video:
            frames = read_frames(path, self.config.frames)
            facts = dataclasses.replace(facts, rotation=frames.rotation)
            crop = detect_crop(frames.luma, limit=self.config.crop_limit)
            if self.config.picture_track:
                track = picture_track(path, crop, max_seconds=limit)
                motion, black = track.motion, track.black_ratio
            else:  # keyframes only: no picture hashes
                box = frames.luma[:, crop.y : crop.y + crop.height, crop.x : crop.x + crop.width]
                motion, black = video_signals(box)
        wanted = {MEAN, *(r.take for r in self.recipes)}  # decoded once, mixed per recipe
        audio_failure = None
        try:
            takes = load_takes(path, wanted, max_seconds=limit) if facts.has_audio else {}
        except SampleError as exc:  # the picture's facts, scores and crop are kept
            takes, audio_failure = {}, exc
        audio = takes.get(MEAN)
        loudness = silence = speech = None
        if audio is not None:
            loudness, silence = audio_signals(audio)
            if self.config.filters.max_speech_ratio is not None:
                speech = self.speech.speech_ratio(audio)
        signals = Signals(loudness, silence, motion, black, speech)
        status, verdicts = judge(facts, signals, self.config.filters)
        reasons = [f"{v.name}: {v.detail}" for v in verdicts if not v.passed]
        if audio_failure is not None:
            status, reasons = _audio_failed(audio_failure, status, reasons, self.config)
        result = PreprocessResult(
            job.sample_id,
            job.media_path,
            status or Status.OK.value,
            "; ".join(reasons),
            facts=facts,
            signals=signals,
            failed_filters=tuple(v.name for v in verdicts if not v.passed),
            crop=crop,
        )
        if status is not None:
            return result  # filtered: nothing more is needed of it
        fingerprint = None
        mels: dict[str, MelUnits] = {}
        if audio is not None:
            fingerprint = chromaprint(audio, max_seconds=self.config.fingerprint_s)
            mels = {recipe.name: recipe.compute(takes[recipe.take]) for recipe in self.recipes}
        cropped = None
        if self.config.write_cropped and crop is not None:
            shown = crop.shown(facts.rotation, facts.width or 0, facts.height or 0)
            cropped = self._write_cropped(job.sample_id, path, shown, facts.audio_codec)
        return dataclasses.replace(
            result,
            phash=tuple(track.hashes.tolist()) if track is not None else (),
            phash_times_s=tuple(track.times_s.tolist()) if track is not None else (),
            phash_step_s=track.step_s if track is not None else None,
            chromaprint=fingerprint,
            mels=mels,
            cropped_path=cropped,
        )

    def _write_cropped(
        self, sample_id: str, source: Path, shown: CropBox, audio_codec: str | None
    ) -> str:
        """Re-encode the video cropped to ``shown`` after ffmpeg turns it upright.

        The audio is copied when MP4 holds its codec (AAC, MP3, Opus, ...), else encoded to AAC
        at 192 kb/s (PCM, FLAC, Vorbis: the mp4 muxer refuses or mislabels them).

        Returns:
            The cropped file, relative to the dataset root.
        """
        target = self.layout.cropped_path(sample_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        copy = audio_codec is None or audio_codec in MP4_AUDIO
        audio_args = ["-c:a", "copy"] if copy else ["-c:a", "aac", "-b:a", "192k"]
        try:
            ffmpeg.run(
                [
                    "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-i", str(source), "-vf", shown.as_ffmpeg(),
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                    *audio_args, "-movflags", "+faststart", "-f", "mp4", str(tmp),
                ]
            )  # fmt: skip
            os.replace(tmp, target)
        except ffmpeg.FFmpegError as exc:
            raise SampleError(Status.DECODE_ERROR.value, f"cropping failed: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return target.relative_to(self.layout.root).as_posix()


def _audio_failed(
    failure: SampleError, status: str | None, reasons: list[str], config: PreprocessConfig
) -> tuple[str | None, list[str]]:
    """The status and reasons of a video whose soundtrack failed while its picture decoded.

    A soundtrack that does not decode is the row's status (``decode_error``; ``too_long`` for
    one past ``max_media_s``) unless the filters do not require audio
    (``require_audio: false``): then the video goes on as one without sound, the reason kept
    in its detail. Either way the row keeps its probe facts, picture scores and crop box.
    """
    reasons = [f"audio: {failure.detail}", *reasons]
    if failure.status == Status.DECODE_ERROR.value and not config.filters.require_audio:
        return status, reasons
    return failure.status, reasons
