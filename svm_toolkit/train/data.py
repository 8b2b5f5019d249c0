"""Training and evaluation data: an audio and a visual extractor's features paired by sample.

Pairs are the samples that have both features and a split (``splits.parquet``, else the
manifest's split column). Each sample's song (``music_id``) comes from the manifest and defines
the multi-positive groups. Training batches are random temporal crops of ``window_s`` seconds,
the same span in both modalities; evaluation takes the fixed window centred in each clip.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from svm_toolkit.errors import InputError
from svm_toolkit.evaluate.protocol import song_groups
from svm_toolkit.io.checked import read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.manifest import read_manifest
from svm_toolkit.manifest.values import parse_split
from svm_toolkit.schema import COL, Split
from svm_toolkit.train.bank import FeatureBank

logger = logging.getLogger(__name__)


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
        """float64, shape (len(rows),): each pair's length, its longer feature span, seconds."""
        return np.maximum(
            self.video.durations(self.video_rows[rows]), self.audio.durations(self.audio_rows[rows])
        )

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

    Args:
        dataset: the dataset root.
        audio: the audio extractor (e.g. ``vggish``, ``vmnet_music``).
        video: the visual extractor (e.g. ``resnet50``, ``efficientnet_lite0``).
        cache: a folder for memory-mapped copies of the features (``None``: in memory).

    Raises:
        InputError: missing features, no splits, or no sample with both features and a split.
    """
    layout = DatasetLayout(Path(dataset))
    video_bank = FeatureBank.from_shards(layout.features_dir(video), cache=cache)
    audio_bank = FeatureBank.from_shards(layout.features_dir(audio), cache=cache)
    manifest = read_manifest(layout.root)  # read once: songs, and splits without splits.parquet
    split_of = _splits(layout, manifest)
    songs = _music_ids(manifest)
    in_audio = {s: i for i, s in enumerate(audio_bank.sample_ids)}
    dropped: Counter[str] = Counter()
    video_rows, audio_rows = [], []
    # sample-id order: the shards' row order depends on which worker finished first
    for i, sample_id in sorted(enumerate(video_bank.sample_ids), key=lambda pair: pair[1]):
        if sample_id in split_of and sample_id in in_audio:
            video_rows.append(i)
            audio_rows.append(in_audio[sample_id])
    paired = {video_bank.sample_ids[i] for i in video_rows}
    in_video = set(video_bank.sample_ids)
    for sample_id in split_of:
        if sample_id not in paired:
            missing = [n for n, b in ((video, in_video), (audio, in_audio)) if sample_id not in b]
            dropped[f"no {' or '.join(missing)}"] += 1
    if not video_rows:
        raise InputError(
            f"{dataset}: no sample has {video} features, {audio} features and a split; "
            f"run `svm extract {dataset} --extractor {video},{audio}` and "
            f"`svm splits make {dataset}`"
        )
    sample_ids = tuple(video_bank.sample_ids[i] for i in video_rows)
    music_ids = tuple(songs.get(s) for s in sample_ids)
    groups = song_groups(music_ids)
    if dropped:
        logger.warning("left out (samples with a split): %s", dict(dropped))
    return PairedData(
        sample_ids,
        video_bank,
        audio_bank,
        np.asarray(video_rows, dtype=np.int64),
        np.asarray(audio_rows, dtype=np.int64),
        tuple(split_of[s] for s in sample_ids),
        music_ids,
        groups,
        dict(dropped),
    )


def _splits(layout: DatasetLayout, manifest: pa.Table) -> dict[str, str]:
    """``sample_id -> split`` from ``splits.parquet``, else the manifest's split column."""
    if layout.splits.exists():
        table = read_table(layout.splits, columns=[COL.sample_id, COL.split])
        return dict(
            zip(*(table.column(c).to_pylist() for c in (COL.sample_id, COL.split)), strict=True)
        )
    out = {}
    for row, (sample_id, value) in enumerate(
        zip(*(manifest.column(c).to_pylist() for c in (COL.sample_id, COL.split)), strict=True)
    ):
        if value is None:
            continue
        try:
            out[sample_id] = parse_split(value).value
        except ValueError:
            raise InputError(
                f"{layout.manifest}: row {row} ({sample_id}) has split {value!r}; "
                f"use one of {', '.join(s.value for s in Split)}"
            ) from None
    if not out:
        raise InputError(
            f"{layout.root}: no splits; make them with `svm splits make {layout.root}` "
            "or give a split column in the URL list"
        )
    return out


def _music_ids(manifest: pa.Table) -> dict[str, str]:
    ids, songs = (manifest.column(c).to_pylist() for c in (COL.sample_id, COL.music_id))
    return {s: m for s, m in zip(ids, songs, strict=True) if m is not None}
