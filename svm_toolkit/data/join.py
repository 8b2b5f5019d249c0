"""One or more extractors' features joined by sample, with each sample's split and song.

This is the one loading path of the toolkit's training data: :class:`FeatureDataset`
(:mod:`svm_toolkit.data.dataset`) and the bundled trainer (``svm_toolkit.train.data.load_pairs``)
are both built on :func:`join_features`. Features are read with
:meth:`svm_toolkit.train.bank.FeatureBank.from_shards`, which applies the dataset's rules: only
committed shards count, and a sample extracted twice (``svm extract --retry``) keeps its newest
row. Splits come from ``splits.parquet`` (else the manifest's ``split`` column) and songs from
the manifest's ``music_id``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.evaluate.protocol import song_groups
from svm_toolkit.io.checked import read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.manifest import read_manifest
from svm_toolkit.manifest.values import parse_split
from svm_toolkit.names import check_feature_sets
from svm_toolkit.schema import COL, Split
from svm_toolkit.train.bank import FeatureBank

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JoinedFeatures:
    """``N`` samples that have every requested feature and a split, in sample-id order.

    The banks stay as they were read (a memory-mapped bank is never copied): sample i's steps of
    feature ``f`` are row ``rows[f][i]`` of ``banks[f]``.

    Attributes:
        sample_ids: the ``N`` sample ids, sorted.
        banks: each feature's :class:`~svm_toolkit.train.bank.FeatureBank` (float16 steps).
        rows: int64, shape (N,), per feature: each sample's row in its bank.
        splits: ``N`` split names (``train``, ``val``, ``test``).
        music_ids: ``N`` songs (``None`` when the manifest gives none).
        groups: int64, shape (N,): samples sharing a song share a value (the index of the song's
            first sample); a sample without a song is alone. The positives of a multi-positive
            loss.
        dropped: why samples with a split were left out, e.g. ``{"no vggish": 3}``.
    """

    sample_ids: tuple[str, ...]
    banks: Mapping[str, FeatureBank]
    rows: Mapping[str, npt.NDArray[np.int64]]
    splits: tuple[str, ...]
    music_ids: tuple[str | None, ...]
    groups: npt.NDArray[np.int64]
    dropped: Mapping[str, int]

    @property
    def features(self) -> tuple[str, ...]:
        """The feature names, in the order asked for."""
        return tuple(self.banks)

    def split_rows(self, split: str | None) -> npt.NDArray[np.int64]:
        """int64 indices (into ``sample_ids``) of one split, in sample order; all for ``None``."""
        if split is None:
            return np.arange(len(self.sample_ids), dtype=np.int64)
        return np.flatnonzero(np.asarray(self.splits) == split).astype(np.int64)


def join_features(
    dataset: Path | str, features: Sequence[str], *, cache: Path | None = None
) -> JoinedFeatures:
    """Join extractors' features by sample id and attach splits, songs and song groups.

    Args:
        dataset: the dataset root.
        features: one or more extractor names (``DATASET/features/<name>``), e.g.
            ``("efficientnet_lite0", "vggish")``.
        cache: a folder for memory-mapped copies of the features (``None``: in memory).

    Returns:
        The samples that have every feature and a split, sorted by sample id.

    Raises:
        ConfigError: no feature, or one named twice.
        InputError: a feature never extracted, no splits, a bad split value, or no sample with
            every feature and a split (each message says which command to run).
    """
    names = tuple(features)
    if not names or len(set(names)) != len(names):
        raise ConfigError(
            f"features {list(names)}: name one or more extractors, each once "
            "(e.g. ('efficientnet_lite0', 'vggish'))"
        )
    check_feature_sets(Path(dataset), names)  # a typo: suggestions, not "run svm extract"
    layout = DatasetLayout(Path(dataset))
    banks = {
        name: FeatureBank.from_shards(layout.features_dir(name), cache=cache) for name in names
    }
    manifest = read_manifest(layout.root)  # read once: songs, and splits without splits.parquet
    split_of = read_splits(layout, manifest)
    songs = _music_ids(manifest)
    index = {name: {s: i for i, s in enumerate(bank.sample_ids)} for name, bank in banks.items()}
    # sample-id order: the shards' row order depends on which worker finished first
    sample_ids = tuple(sorted(s for s in split_of if all(s in index[n] for n in names)))
    dropped: Counter[str] = Counter()
    for sample_id in split_of:
        missing = [n for n in names if sample_id not in index[n]]
        if missing:
            dropped[f"no {' or '.join(missing)}"] += 1
    if not sample_ids:
        have = " features, ".join(names)
        raise InputError(
            f"{dataset}: no sample has {have} features and a split; "
            f"run `svm extract {dataset} --extractor {','.join(names)}` and "
            f"`svm splits make {dataset}`"
        )
    if dropped:
        logger.warning("left out (samples with a split): %s", dict(dropped))
    music_ids = tuple(songs.get(s) for s in sample_ids)
    return JoinedFeatures(
        sample_ids=sample_ids,
        banks=banks,
        rows={n: np.asarray([index[n][s] for s in sample_ids], dtype=np.int64) for n in names},
        splits=tuple(split_of[s] for s in sample_ids),
        music_ids=music_ids,
        groups=song_groups(music_ids),
        dropped=dict(dropped),
    )


def read_splits(layout: DatasetLayout, manifest: pa.Table) -> dict[str, str]:
    """``sample_id -> split`` from ``splits.parquet``, else the manifest's split column.

    Args:
        layout: the dataset.
        manifest: its manifest (read once by the caller, which also needs its songs).

    Returns:
        ``sample_id -> "train" | "val" | "test"`` for every sample with a split (a sample
        without one is left out).

    Raises:
        InputError: a split value that is not a split, or no split at all (the message says how
            to make them).
    """
    if layout.splits.exists():
        table = read_table(layout.splits, columns=[COL.sample_id, COL.split])
        pairs = zip(*(table.column(c).to_pylist() for c in (COL.sample_id, COL.split)), strict=True)
        return {s: v for s, v in pairs if v is not None}
    out = {}
    pairs = zip(*(manifest.column(c).to_pylist() for c in (COL.sample_id, COL.split)), strict=True)
    for row, (sample_id, value) in enumerate(pairs):
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
