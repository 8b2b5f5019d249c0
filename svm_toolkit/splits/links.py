"""Links between samples that must share a split, and the groups they form.

Each link kind is a registered function from the dataset's :class:`SplitInputs` to pairs of
sample indices. ``--group-by`` names families of kinds (:data:`GROUP_BY`); the groups are the
connected components of the chosen links.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from svm_toolkit.errors import ConfigError
from svm_toolkit.schema import COL
from svm_toolkit.splits.inputs import SplitInputs
from svm_toolkit.splits.matching import MatchConfig, audio_matches, picture_matches

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Links:
    """Pairs of samples (by index) that a link kind ties together.

    Attributes:
        kind: the link kind, a key of :data:`LINK_KINDS`.
        a, b: sample indices, int64, shape (pairs,).
        what: what the linked samples share, for reports (e.g. ``"the same song"``).
    """

    kind: str
    a: IntArray
    b: IntArray
    what: str

    def __len__(self) -> int:
        return len(self.a)


LinkFn = Callable[[SplitInputs, MatchConfig], tuple[IntArray, IntArray]]


@dataclass(frozen=True, slots=True)
class LinkKind:
    """A registered link kind: its function and a phrase for reports."""

    find: LinkFn
    what: str


LINK_KINDS: dict[str, LinkKind] = {}

#: ``--group-by`` families and the link kinds each one adds.
GROUP_BY: Final[dict[str, tuple[str, ...]]] = {
    "video": ("video_id", "url", "picture"),
    "music": ("music_id", "audio"),
    "uploader": ("uploader",),
}


def link_kind(name: str, what: str) -> Callable[[LinkFn], LinkFn]:
    """Register a link kind under ``name``."""

    def register(fn: LinkFn) -> LinkFn:
        LINK_KINDS[name] = LinkKind(fn, what)
        return fn

    return register


def same_value(values: Sequence[object]) -> tuple[IntArray, IntArray]:
    """Link each sample to the first sample with the same non-empty value."""
    series = pd.Series(list(values), dtype=object)
    present = series.notna() & (series.astype(str) != "")
    index = np.flatnonzero(present.to_numpy())
    if not len(index):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    codes, _ = pd.factorize(series[present])
    first = np.full(codes.max() + 1, -1, np.int64)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = index[order]  # the last write for a code is its first sample
    leader = first[codes]
    others = leader != index
    return leader[others].astype(np.int64), index[others].astype(np.int64)


@link_kind("video_id", "the same video id")
def _video_id(inputs: SplitInputs, config: MatchConfig) -> tuple[IntArray, IntArray]:
    return same_value(inputs.samples[COL.video_id].tolist())


@link_kind("url", "the same canonical URL")
def _url(inputs: SplitInputs, config: MatchConfig) -> tuple[IntArray, IntArray]:
    return same_value(inputs.samples[COL.url].tolist())


@link_kind("music_id", "the same music id")
def _music_id(inputs: SplitInputs, config: MatchConfig) -> tuple[IntArray, IntArray]:
    return same_value(inputs.samples[COL.music_id].tolist())


@link_kind("audio", "the same soundtrack (audio fingerprint)")
def _audio(inputs: SplitInputs, config: MatchConfig) -> tuple[IntArray, IntArray]:
    found = audio_matches(inputs.chromaprint, config)
    return found.a, found.b


@link_kind("picture", "a near-duplicate picture (perceptual hash)")
def _picture(inputs: SplitInputs, config: MatchConfig) -> tuple[IntArray, IntArray]:
    found = picture_matches(inputs.phash, config)
    return found.a, found.b


@link_kind("uploader", "the same uploader")
def _uploader(inputs: SplitInputs, config: MatchConfig) -> tuple[IntArray, IntArray]:
    return same_value(inputs.samples[COL.author].tolist())


def kinds_for(group_by: Sequence[str]) -> tuple[str, ...]:
    """The link kinds of ``--group-by`` families, in registry order.

    Raises:
        ConfigError: an unknown family.
    """
    unknown = sorted(set(group_by) - set(GROUP_BY))
    if unknown:
        raise ConfigError(
            f"unknown --group-by {', '.join(unknown)}; choose from {', '.join(GROUP_BY)}"
        )
    chosen = {kind for family in group_by for kind in GROUP_BY[family]}
    return tuple(kind for kind in LINK_KINDS if kind in chosen)


def find_links(inputs: SplitInputs, kinds: Sequence[str], config: MatchConfig) -> list[Links]:
    """Run the link kinds ``kinds`` on the dataset."""
    found = []
    for kind in kinds:
        a, b = LINK_KINDS[kind].find(inputs, config)
        found.append(Links(kind, a, b, LINK_KINDS[kind].what))
    return found


def components(n: int, links: Sequence[Links]) -> IntArray:
    """The connected component of each of ``n`` samples under ``links``, int64, shape (n,)."""
    a = np.concatenate([x.a for x in links]) if links else np.zeros(0, np.int64)
    b = np.concatenate([x.b for x in links]) if links else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, np.int64)
