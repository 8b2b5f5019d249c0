"""Links between samples that must share a split, and the groups they form.

Each link kind is a registered function from the dataset's :class:`SplitInputs` to the pairs
of sample indices it ties, each with a score (:class:`Matches`). ``--group-by`` names families
of kinds (:data:`GROUP_BY`); the groups are the connected components of the chosen links.
:func:`links_table` turns the links into the rows of ``splits_links.parquet``,
:func:`links_belong_to_splits` tells whether that file was written with today's
``splits.parquet``, and :func:`largest_groups` names the largest groups for the ``splits make``
summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from svm_toolkit.errors import ConfigError, SchemaMismatchError
from svm_toolkit.io.checked import read_schema
from svm_toolkit.io.digest import file_sha256
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.schema import COL, SPLIT_LINKS_SCHEMA, read_provenance
from svm_toolkit.splits.inputs import SplitInputs
from svm_toolkit.splits.matching import MatchConfig, Matches, audio_matches, picture_matches

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Links:
    """Pairs of samples (by index) that a link kind ties together.

    Attributes:
        kind: the link kind, a key of :data:`LINK_KINDS`.
        a, b: sample indices, int64, shape (pairs,).
        what: what the linked samples share, for reports (e.g. ``"the same song"``).
        score: float64, shape (pairs,): the share of matching bits or frames for fingerprint
            kinds, 1.0 for same-value kinds (``None`` given: all 1.0).
        offset_s: float64, shape (pairs,): the time shift of ``b`` against ``a`` in seconds
            where the matcher knows it (NaN elsewhere); ``None`` when it never does.
    """

    kind: str
    a: IntArray
    b: IntArray
    what: str
    score: FloatArray | None = None
    offset_s: FloatArray | None = None

    def __post_init__(self) -> None:
        if self.score is None:
            object.__setattr__(self, "score", np.ones(len(self.a), np.float64))

    def __len__(self) -> int:
        return len(self.a)

    @property
    def scores(self) -> FloatArray:
        """:attr:`score`, never ``None``."""
        assert self.score is not None  # set in __post_init__
        return self.score


LinkFn = Callable[[SplitInputs, MatchConfig], Matches]


@dataclass(frozen=True, slots=True)
class LinkKind:
    """A registered link kind.

    Attributes:
        find: its function.
        what: a phrase for reports.
        column: for same-value kinds, the manifest column whose value linked samples share.
    """

    find: LinkFn
    what: str
    column: str | None = None


LINK_KINDS: dict[str, LinkKind] = {}

#: ``--group-by`` families and the link kinds each one adds.
GROUP_BY: Final[dict[str, tuple[str, ...]]] = {
    "video": ("video_id", "url", "picture"),
    "music": ("music_id", "audio"),
    "uploader": ("uploader",),
}


def link_kind(name: str, what: str, column: str | None = None) -> Callable[[LinkFn], LinkFn]:
    """Register a link kind under ``name`` (``column``: the shared manifest column, if any)."""

    def register(fn: LinkFn) -> LinkFn:
        LINK_KINDS[name] = LinkKind(fn, what, column)
        return fn

    return register


def same_value(values: Sequence[object]) -> tuple[IntArray, IntArray]:
    """Link each sample to the first sample with the same non-empty value.

    Returns:
        ``(a, b)``, int64: ``a`` is the first sample (by index) with ``b``'s value, so
        ``a < b``; a value shared by ``n`` samples gives ``n - 1`` pairs.
    """
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


def _same(values: Sequence[object]) -> Matches:
    """:func:`same_value` pairs, each scored 1.0."""
    a, b = same_value(values)
    return Matches(a, b, np.ones(len(a), np.float64))


@link_kind("video_id", "the same video id", COL.video_id)
def _video_id(inputs: SplitInputs, config: MatchConfig) -> Matches:
    return _same(inputs.samples[COL.video_id].tolist())


@link_kind("url", "the same canonical URL", COL.url)
def _url(inputs: SplitInputs, config: MatchConfig) -> Matches:
    return _same(inputs.samples[COL.url].tolist())


@link_kind("music_id", "the same music id", COL.music_id)
def _music_id(inputs: SplitInputs, config: MatchConfig) -> Matches:
    return _same(inputs.samples[COL.music_id].tolist())


@link_kind("audio", "the same soundtrack (audio fingerprint)")
def _audio(inputs: SplitInputs, config: MatchConfig) -> Matches:
    return audio_matches(inputs.chromaprint, config)


@link_kind("picture", "a near-duplicate picture (perceptual hash)")
def _picture(inputs: SplitInputs, config: MatchConfig) -> Matches:
    return picture_matches(inputs.phash, config)


@link_kind("uploader", "the same uploader", COL.author)
def _uploader(inputs: SplitInputs, config: MatchConfig) -> Matches:
    return _same(inputs.samples[COL.author].tolist())


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
        pairs = LINK_KINDS[kind].find(inputs, config)
        what = LINK_KINDS[kind].what
        found.append(Links(kind, pairs.a, pairs.b, what, pairs.score, pairs.offset_s))
    return found


def components(n: int, links: Sequence[Links]) -> IntArray:
    """The connected component of each of ``n`` samples under ``links``, int64, shape (n,)."""
    a = np.concatenate([x.a for x in links]) if links else np.zeros(0, np.int64)
    b = np.concatenate([x.b for x in links]) if links else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, np.int64)


def links_belong_to_splits(dataset: Path) -> bool:
    """Whether ``splits_links.parquet`` was written with the dataset's ``splits.parquet``.

    ``svm splits make`` writes the links file second, with the SHA-256 of the splits file in its
    provenance (``splits_sha256``). A run killed between the two writes, or a links file from an
    older toolkit, leaves one that does not match: its links may not be those of the splits.

    Returns:
        ``False`` when either file is missing, the links file has no provenance of this
        toolkit's schema version or damaged provenance, or the digests differ (the next
        ``svm splits make`` rewrites it in each case).

    Raises:
        InputError: the links file is not Parquet (truncated, damaged), named with the fix.
        OSError: ``splits.parquet`` cannot be read.
    """
    layout = DatasetLayout(Path(dataset))
    if not (layout.split_links.is_file() and layout.splits.is_file()):
        return False
    try:
        written = read_provenance(read_schema(layout.split_links), where=layout.split_links.name)
    except SchemaMismatchError:  # not ours, or from another schema version: not these splits'
        return False
    return written.get("splits_sha256") == file_sha256(layout.splits)


def links_table(
    samples: pd.DataFrame,
    links: Sequence[Links],
    included: npt.NDArray[np.bool_],
    group: npt.NDArray[np.object_],
) -> pa.Table:
    """The rows of ``splits_links.parquet`` (:data:`~svm_toolkit.schema.SPLIT_LINKS_SCHEMA`).

    One row per link, ``sample_id_a < sample_id_b`` (``offset_s`` negated where the pair is
    swapped to get there), sorted by ``(sample_id_a, sample_id_b, kind)``; a pair tied by two
    kinds has two rows. Links touching samples left out of the splits are kept
    (``in_splits`` false): they can tie two samples of the splits together through a third.

    Args:
        samples: the dataset's samples (:attr:`SplitInputs.samples`), row ``i`` is index ``i``.
        links: every link kind's pairs.
        included: which samples are in the splits.
        group: each sample's group id in ``splits.parquet`` (``""``: none).

    Returns:
        The table, without provenance metadata.
    """
    ids = samples.index.to_numpy(dtype=object)
    parts: dict[str, list[npt.NDArray[np.generic]]] = {
        name: [] for name in SPLIT_LINKS_SCHEMA.names
    }
    for x in links:
        a, b = ids[x.a], ids[x.b]
        swap = (a > b).astype(bool) if len(a) else np.zeros(0, bool)
        offset = np.full(len(x), np.nan) if x.offset_s is None else np.asarray(x.offset_s, float)
        column = LINK_KINDS[x.kind].column if x.kind in LINK_KINDS else None
        value = (
            samples[column].to_numpy(dtype=object)[x.a] if column else np.full(len(x), None, object)
        )
        parts[COL.sample_id_a].append(np.where(swap, b, a))
        parts[COL.sample_id_b].append(np.where(swap, a, b))
        parts[COL.kind].append(np.full(len(x), x.kind, object))
        parts[COL.what].append(np.full(len(x), x.what, object))
        parts[COL.value].append(np.asarray([None if v is None else str(v) for v in value], object))
        parts[COL.score].append(np.asarray(x.scores, np.float64))
        parts[COL.offset_s].append(np.where(swap, -offset, offset))
        parts[COL.in_splits].append(included[x.a] & included[x.b])
        parts[COL.group].append(group[x.a])
    empty = {COL.score: np.float64, COL.offset_s: np.float64, COL.in_splits: np.bool_}
    columns = {
        name: np.concatenate(chunks) if chunks else np.zeros(0, empty.get(name, object))
        for name, chunks in parts.items()
    }
    offset_s = columns[COL.offset_s].astype(np.float64)
    columns[COL.offset_s] = pa.array(offset_s, pa.float64(), mask=np.isnan(offset_s))
    columns[COL.group] = pa.array([g or None for g in columns[COL.group].tolist()], pa.string())
    table = pa.table(columns, schema=SPLIT_LINKS_SCHEMA)
    return table.sort_by([(COL.sample_id_a, "ascending"), (COL.sample_id_b, "ascending"),
                          (COL.kind, "ascending")])  # fmt: skip


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """One group of linked samples, for the ``splits make`` summary.

    Attributes:
        size: samples of the group in the splits.
        group: its id in ``splits.parquet`` (the smallest sample id).
        label: what ties it most, e.g. ``music_id 'm12'`` or ``audio``.
        kinds: links per kind inside the group.
        samples: every sample id of the group in the splits, sorted.
        split: the split the group is in (set by ``splits make``).
    """

    size: int
    group: str
    label: str
    kinds: dict[str, int]
    samples: tuple[str, ...]
    split: str | None = None

    def describe(self, *, shown: int = 2) -> str:
        """``9 (music_id 'm12': demo003, demo017, …; also audio)``."""
        ids = ", ".join(self.samples[:shown]) + (", …" if self.size > shown else "")
        dominant = self.label.split(" ", 1)[0]
        others = [k for k in self.kinds if k != dominant]
        also = f"; also {', '.join(others)}" if others else ""
        return f"{self.size:,} ({self.label}: {ids}{also})"


def largest_groups(
    samples: pd.DataFrame,
    links: Sequence[Links],
    component: IntArray,
    included: npt.NDArray[np.bool_],
    *,
    top: int = 10,
) -> list[GroupInfo]:
    """The ``top`` largest groups of more than one sample in the splits, largest first.

    Ties go to the group met first in manifest order. A group's label is the kind with most
    links inside it (the first in ``links`` on a tie); for same-value kinds, with the value
    most of those links share (the smallest on a tie).

    Args:
        samples: the dataset's samples (:attr:`SplitInputs.samples`).
        links: every link kind's pairs.
        component: each sample's connected component (:func:`components`).
        included: which samples are in the splits.
        top: how many groups to describe.
    """
    if not included.any():
        return []
    ids = samples.index.to_numpy(dtype=object)
    sizes = np.bincount(component[included], minlength=int(component.max(initial=0)) + 1)
    candidates = np.flatnonzero(sizes > 1)
    candidates = candidates[np.argsort(-sizes[candidates], kind="stable")][:top]
    out = []
    for g in candidates.tolist():
        kinds: dict[str, int] = {}
        label = ""
        best = 0
        for x in links:
            inside = component[x.a] == g
            n = int(inside.sum())
            if not n:
                continue
            kinds[x.kind] = n
            if n > best:
                best, label = n, x.kind
                column = LINK_KINDS[x.kind].column if x.kind in LINK_KINDS else None
                if column:
                    values = Counter(map(str, samples[column].to_numpy(dtype=object)[x.a[inside]]))
                    value = min(values, key=lambda v: (-values[v], v))
                    shown = value if len(value) <= 32 else value[:31] + "…"
                    label = f"{x.kind} {shown!r}"
        members = tuple(sorted(ids[included & (component == g)].tolist()))
        out.append(GroupInfo(int(sizes[g]), members[0], label, kinds, members))
    return out
