"""Training and evaluation data: an audio and a visual extractor's features paired by sample.

Pairs are the samples that have both features and a split (``splits.parquet``, else the
manifest's split column). Each sample's song (``music_id``) comes from the manifest and defines
the multi-positive groups. Training batches are random temporal crops of ``window_s`` seconds,
the same span in both modalities; evaluation takes the fixed window centred in each clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from svm_toolkit.data.join import join_features
from svm_toolkit.train.bank import FeatureBank


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch of ``B`` pairs, as float32 arrays ready for the model.

    Attributes:
        rows: int64, shape (B,): the pairs' rows in :class:`PairedData`.
        video: float32, shape (B, Lv, Dv); zero where padded.
        video_mask: bool, shape (B, Lv): True on real steps.
        audio: float32, shape (B, La, Da).
        audio_mask: bool, shape (B, La).
        groups: int64, shape (B,): equal values are each other's positives.
    """

    rows: npt.NDArray[np.int64]
    video: npt.NDArray[np.float32]
    video_mask: npt.NDArray[np.bool_]
    audio: npt.NDArray[np.float32]
    audio_mask: npt.NDArray[np.bool_]
    groups: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PairedData:
    """``N`` pairs: samples with both features and a split, in sample-id order.

    The banks stay as they were read (a memory-mapped bank is never copied); pair i's steps
    are row ``video_rows[i]`` of ``video`` and row ``audio_rows[i]`` of ``audio``.

    Attributes:
        sample_ids: the ``N`` sample ids.
        video: the visual extractor's bank.
        audio: the audio extractor's bank.
        video_rows: int64, shape (N,): each pair's row in ``video``.
        audio_rows: int64, shape (N,): each pair's row in ``audio``.
        splits: ``N`` split names.
        music_ids: ``N`` songs (``None`` when unknown).
        groups: int64, shape (N,): samples sharing a song share a value; others are alone.
        dropped: why samples with a split were left out, e.g. ``{"no efficientnet_lite0": 3}``.
    """

    sample_ids: tuple[str, ...]
    video: FeatureBank
    audio: FeatureBank
    video_rows: npt.NDArray[np.int64]
    audio_rows: npt.NDArray[np.int64]
    splits: tuple[str, ...]
    music_ids: tuple[str | None, ...]
    groups: npt.NDArray[np.int64]
    dropped: dict[str, int]

    def steps(
        self, side: str, pairs: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float16], npt.NDArray[np.int64]]:
        """The ``video`` or ``audio`` steps of ``pairs``, concatenated, and each pair's count.

        Returns:
            ``(steps, lengths)``: float16, shape (sum(lengths), D); int64, shape (len(pairs),).
        """
        bank, rows = (
            (self.video, self.video_rows) if side == "video" else (self.audio, self.audio_rows)
        )
        return bank.gather(rows[pairs])

    def rows(self, split: str) -> npt.NDArray[np.int64]:
        """int64 rows of one split, in sample order."""
        return np.flatnonzero(np.asarray(self.splits) == split).astype(np.int64)

    def durations(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """float64, shape (len(rows),): each pair's time span, the media's length, seconds.

        The span is where both modalities have steps: the earlier of the two modalities' ends.
        A modality with a single step (a clip-level descriptor such as ``vmnet_music``, whose
        one step declares 29.12 s) describes the whole clip, so it is in every window and does
        not bound the span: its declared step says nothing about how long the clip is (an 8 s
        clip's one music step still "ends" at 29.12 s). Only when both sides have one step is
        the span the longer of the two. So crops and centred windows lie inside the video an
        8 s clip really has, and every window holds the steps of that stretch on both sides.
        """
        video_rows, audio_rows = self.video_rows[rows], self.audio_rows[rows]
        ends = []
        for bank, bank_rows in ((self.video, video_rows), (self.audio, audio_rows)):
            end = bank.durations(bank_rows)
            ends.append(np.where(np.diff(bank.offsets)[bank_rows] > 1, end, np.inf))
        span = np.minimum(*ends)
        whole = np.maximum(self.video.durations(video_rows), self.audio.durations(audio_rows))
        return np.asarray(np.where(np.isfinite(span), span, whole), dtype=np.float64)

    def batch(
        self, rows: npt.NDArray[np.int64], start_s: npt.NDArray[np.float64], window_s: float
    ) -> Batch:
        """The pairs ``rows`` cropped to ``[start_s, start_s + window_s)`` in both modalities."""
        video, video_mask = self.video.window(self.video_rows[rows], start_s, window_s)
        audio, audio_mask = self.audio.window(self.audio_rows[rows], start_s, window_s)
        return Batch(rows, video, video_mask, audio, audio_mask, self.groups[rows])

    def random_starts(
        self, rows: npt.NDArray[np.int64], window_s: float, rng: np.random.Generator
    ) -> npt.NDArray[np.float64]:
        """Training crops: a start drawn uniformly so the window fits in the clip, seconds."""
        room = np.maximum(self.durations(rows) - window_s, 0.0)
        return np.asarray(rng.uniform(0.0, 1.0, len(rows)) * room, dtype=np.float64)

    def centre_starts(
        self, rows: npt.NDArray[np.int64], window_s: float
    ) -> npt.NDArray[np.float64]:
        """Evaluation crops: the window centred in the clip (the whole clip when shorter), s."""
        return np.maximum(self.durations(rows) - window_s, 0.0) / 2


def load_pairs(dataset: Path, *, audio: str, video: str, cache: Path | None = None) -> PairedData:
    """Pair two extractors' features by sample id and attach splits and songs.

    The join is :func:`svm_toolkit.data.join_features` (the loading path of the public
    :class:`svm_toolkit.data.FeatureDataset` too); this only names its two features' sides.

    Args:
        dataset: the dataset root.
        audio: the audio extractor (e.g. ``vggish``, ``vmnet_music``).
        video: the visual extractor (e.g. ``resnet50``, ``efficientnet_lite0``).
        cache: a folder for memory-mapped copies of the features (``None``: in memory).

    Raises:
        InputError: missing features, no splits, or no sample with both features and a split.
    """
    joined = join_features(dataset, (video, audio), cache=cache)
    return PairedData(
        joined.sample_ids,
        joined.banks[video],
        joined.banks[audio],
        joined.rows[video],
        joined.rows[audio],
        joined.splits,
        joined.music_ids,
        joined.groups,
        dict(joined.dropped),
    )
