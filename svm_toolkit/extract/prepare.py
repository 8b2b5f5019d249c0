"""Decode workers of ``svm extract``: read each video once and prepare every extractor's units.

A :class:`Decoder` turns an :class:`ExtractJob` into a :class:`Prepared`: frames through one
ffmpeg filter graph (crop + fps + scale) for all visual extractors, the soundtrack at 16 kHz for
all audio extractors, then each extractor's
:meth:`~svm_toolkit.extract.base.Extractor.prepare`. It holds no model, so it is cheap to build
in every worker process (local) or CPU task (Ray).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import SampleError, SvmError
from svm_toolkit.extract.base import Extractor, Media, Units
from svm_toolkit.extract.decode import FramePlan, read_video_frames
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.io.checked import read_schema
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import committed_shards
from svm_toolkit.preprocess.audio import CHANNELS, MEAN, Take, load_takes
from svm_toolkit.preprocess.crop import CropBox
from svm_toolkit.preprocess.recipes import MEL_RECIPES, MelChannels, get_recipes
from svm_toolkit.schema import Status, read_provenance

logger = logging.getLogger(__name__)

SAMPLE_RATE: Final = 16_000


@dataclass(frozen=True, slots=True)
class ExtractJob:
    """One video and the extractors it still needs.

    Attributes:
        sample_id: the sample.
        media_path: media file relative to the dataset root.
        extractors: names of the extractors to run on it.
        crop: crop box on the picture as shown (``None``: no picture or no crop).
        size: shown width and height, pixels (0, 0 without a picture).
        mel: extractor -> its units read from ``svm preprocess``'s Mel shards (those
            extractors need no audio decoded).
    """

    sample_id: str
    media_path: str
    extractors: tuple[str, ...]
    crop: CropBox | None = None
    size: tuple[int, int] = (0, 0)
    mel: Mapping[str, Units] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A decode worker's answer: units per extractor, or a status for those it could not serve."""

    sample_id: str
    units: Mapping[str, Units] = field(default_factory=dict)
    failed: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (status, detail)
    seconds: float = 0.0


class Decoder:
    """Decode jobs of one run: the extractor objects (no models) and where the media are.

    Args:
        root: the dataset root.
        names: the run's extractors.
        fps: frames per second for the visual extractors, frames/s.
    """

    def __init__(self, root: Path, names: tuple[str, ...], fps: float) -> None:
        self.root, self.fps = root, fps
        self.extractors: dict[str, Extractor] = {
            name: get_extractor(name)(weights=None) for name in names
        }
        self.takes: dict[str, Take] = {
            name: _take(extractor, root)
            for name, extractor in self.extractors.items()
            if extractor.contract.modality == "audio"
        }

    def __call__(self, job: ExtractJob) -> Prepared:
        """Decode one video once and prepare every extractor's units; failures become statuses."""
        started = time.perf_counter()
        wanted = {name: self.extractors[name] for name in job.extractors}
        visual = [e for e in wanted.values() if e.contract.modality == "visual"]
        audible = [
            e for n, e in wanted.items() if e.contract.modality == "audio" and n not in job.mel
        ]
        path = self.root / job.media_path
        frames = times = None
        takes: dict[Take, npt.NDArray[np.float32]] = {}
        failed: dict[str, tuple[str, str]] = {}
        try:
            if visual:
                if job.size == (0, 0):
                    raise SampleError(Status.DECODE_ERROR.value, f"{job.media_path}: no picture")
                short = max(e.contract.resize or e.contract.image_size or 224 for e in visual)
                frames, times = read_video_frames(
                    path, FramePlan(self.fps, short, job.crop, job.size)
                )
                if not len(frames):
                    raise SampleError(Status.DECODE_ERROR.value, f"{job.media_path}: no frames")
            if audible:
                try:
                    takes = load_takes(
                        path, {self.takes[e.name] for e in audible}, sample_rate=SAMPLE_RATE
                    )  # the recipe's channels and resampler, else the channel mean
                except SampleError as exc:
                    failed.update({e.name: (exc.status, exc.detail) for e in audible})
        except SampleError as exc:
            failed.update({name: (exc.status, exc.detail) for name in wanted})
        except OSError as exc:
            detail = f"{exc.strerror or exc} ({exc.filename or job.media_path})"
            failed.update({name: (Status.IO_ERROR.value, detail) for name in wanted})
        media = Media(frames, times, takes.get(MEAN), SAMPLE_RATE)
        units = {name: mel for name, mel in job.mel.items() if name not in failed}
        for name, extractor in wanted.items():
            if name in failed or name in units:
                continue
            try:
                audio = takes.get(self.takes.get(name, MEAN), media.audio)
                units[name] = extractor.prepare(dataclasses.replace(media, audio=audio))
            except SampleError as exc:  # e.g. no_audio, or too short for the model
                failed[name] = (exc.status, exc.detail)
        return Prepared(job.sample_id, units, failed, time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class DecoderSpec:
    """How to build a :class:`Decoder` in a worker (picklable and hashable).

    Attributes:
        root: the dataset root.
        names: the run's extractors.
        fps: frames per second for the visual extractors, frames/s.
        own_process: the decoder has a worker process of its own, whose torch then uses one
            thread (workers are the parallelism); ``False`` leaves this process's threads alone.
    """

    root: Path
    names: tuple[str, ...]
    fps: float
    own_process: bool = True

    def __call__(self) -> Decoder:
        """A decoder for this worker."""
        if self.own_process:
            one_thread()
        return Decoder(self.root, self.names, self.fps)


def one_thread() -> None:
    """Keep this worker process's torch to one thread, without importing torch for it.

    Torch reads ``OMP_NUM_THREADS`` when it is imported; a torch already imported is told.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = "1"
    else:
        torch.set_num_threads(1)


_decoder: Decoder | None = None


def init_worker(spec: DecoderSpec) -> None:
    """Worker process set-up: its decoder."""
    global _decoder
    _decoder = spec()


def prepare(job: ExtractJob) -> Prepared:
    """Decode one job in a worker process set up by :func:`init_worker`."""
    assert _decoder is not None, "prepare() before init_worker()"
    return _decoder(job)


def crashed(job: ExtractJob, detail: str) -> Prepared:
    """A job whose decode worker died decoding it alone: ``decode_error`` for every extractor.

    Args:
        job: the video.
        detail: how the worker died, e.g. ``worker crashed (signal 11: SIGSEGV)``.
    """
    status = (
        Status.DECODE_ERROR.value,
        f"{job.media_path}: {detail}; delete or re-encode the file and re-run with "
        "--retry decode_error",
    )
    return Prepared(job.sample_id, failed=dict.fromkeys(job.extractors, status))


def _take(extractor: Extractor, root: Path) -> Take:
    """The mono signal an audio extractor reads: its Mel recipe's, else the channel mean.

    A recipe's take is its channels and its reference's resampler. The channels are those
    ``svm preprocess`` ran the recipe with (its shards' provenance, so a sample without a Mel row
    gets the units its neighbours got), else the recipe's default policy. The extractors read
    mono audio, so the take ``all`` (every channel of a short recording, ImageBind's) is channel
    0 here, which differs from the reference only on stereo recordings under 8 s (the Mel shards
    of ``svm preprocess`` have it exactly).
    """
    recipe = extractor.contract.recipe
    if recipe is None or recipe not in MEL_RECIPES:
        return MEAN
    channels = recorded_channels(root, recipe)
    if channels is None:
        take = MEL_RECIPES[recipe].take
    else:
        policy: dict[str, Any] = {recipe: channels}
        (made,) = get_recipes((recipe,), channels=dataclasses.replace(MelChannels(), **policy))
        take = made.take
    return Take("first", take.resampler) if take.channels == "all" else take


def recorded_channels(root: Path, recipe: str) -> str | None:
    """The channel policy (``mean``, ``first``) the dataset's Mel shards of ``recipe`` hold.

    Read from the newest committed shard's provenance (``recipe_config.channels``).

    Returns:
        The policy, or ``None`` when the recipe has no shards yet (or they record none).
    """
    shards = committed_shards(DatasetLayout(root).mel_dir(recipe), "part")
    if not shards:
        return None
    try:
        meta = read_provenance(read_schema(shards[-1]), where=str(shards[-1]))
    except SvmError as exc:  # damaged: the Mel rows' own read says how to repair it
        logger.warning("%s: no channel policy read (%s); using the default", shards[-1], exc)
        return None
    config = meta.get("recipe_config")
    value = config.get("channels") if isinstance(config, dict) else None
    if value == "all":  # ImageBind's take of its default policy, as recorded by older runs
        return "first"
    return value if value in CHANNELS else None
