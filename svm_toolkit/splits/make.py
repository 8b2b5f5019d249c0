"""``svm splits make``: deterministic grouped splits written to ``splits.parquet``.

Samples tied by a link (same video, song, near-duplicate picture or uploader; see
:mod:`svm_toolkit.splits.links`) form a group, and a group never straddles splits. Groups are
dealt largest first, in an order fixed by the seed, each to the split furthest below its
share (and, with ``stratify``, below its share of the group's YT8M labels). Splits given in
the manifest are kept as they are: their groups follow them.

Beside ``splits.parquet`` it writes ``splits_links.parquet``: every link it found, so a user can
see which samples were tied together and by what (:func:`svm_toolkit.splits.links.links_table`).
The links file is written second and names the SHA-256 of the ``splits.parquet`` it belongs to,
so after a run killed between the two writes readers can tell it is stale
(:func:`svm_toolkit.splits.links.links_belong_to_splits`); the next run rewrites it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from svm_toolkit.config import to_dict
from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.io.checked import READ_ERRORS, read_table
from svm_toolkit.io.digest import file_sha256
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import write_table_atomic
from svm_toolkit.manifest.values import parse_split
from svm_toolkit.schema import (
    COL,
    METADATA_KEY,
    SPLIT_LINKS_SCHEMA,
    SPLITS_SCHEMA,
    Split,
    with_provenance,
)
from svm_toolkit.splits.inputs import SplitInputs, load_inputs
from svm_toolkit.splits.links import (
    GroupInfo,
    components,
    find_links,
    kinds_for,
    largest_groups,
    links_table,
)
from svm_toolkit.splits.matching import MatchConfig

logger = logging.getLogger(__name__)

STAGE = "splits"
SPLITS: tuple[Split, ...] = tuple(Split)  # train, val, test


@dataclass(frozen=True, slots=True)
class SplitConfig:
    """How ``svm splits make`` groups and deals samples.

    Attributes:
        ratios: shares of train, val and test; non-negative, summing to 1.
        seed: fixes the order in which groups of the same size are dealt.
        group_by: families of links that keep samples together: ``video`` (same video id or
            canonical URL, near-duplicate picture), ``music`` (same music id or soundtrack),
            ``uploader`` (same author).
        stratify: also balance YT8M labels across splits.
        match: thresholds of the fingerprint searches.
    """

    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    group_by: tuple[str, ...] = ("video", "music")
    stratify: bool = False
    match: MatchConfig = field(default_factory=MatchConfig)

    def __post_init__(self) -> None:
        if len(self.ratios) != len(SPLITS) or min(self.ratios) < 0:
            raise ConfigError(f"ratios must be 3 shares >= 0 (train, val, test), got {self.ratios}")
        if abs(sum(self.ratios) - 1.0) > 1e-6:
            raise ConfigError(f"ratios must sum to 1, got {self.ratios} (sum {sum(self.ratios):g})")
        kinds_for(self.group_by)  # raises on an unknown family


@dataclass(frozen=True, slots=True)
class MakeSummary:
    """What ``make_splits`` did.

    Attributes:
        by_split: samples per split.
        groups: groups of more than one sample, and the size of the largest group.
        links: pairs found per link kind.
        given: samples whose split came from the manifest.
        left_out: samples that failed or were filtered (not in any split).
        unchanged: ``splits.parquet`` already held exactly these splits.
        seconds: wall time.
        largest_groups: the 10 largest groups, largest first, each with all its samples.
        links_path: the links file written beside ``splits.parquet``.
    """

    by_split: dict[str, int]
    groups: int
    largest: int
    links: dict[str, int]
    given: int
    left_out: int
    unchanged: bool
    seconds: float
    largest_groups: tuple[GroupInfo, ...] = ()
    links_path: Path | None = None

    def describe(self, *, groups: int = 3) -> str:
        """One line: ``120 samples: train 96 · val 12 · test 12; 30 groups kept together …``.

        It names the ``groups`` largest groups, e.g. ``largest groups: 9 (music_id 'm12':
        demo003, demo017, …; also audio), 5 (picture: demo020, demo044, …)``.
        """
        total = sum(self.by_split.values())
        splits = " · ".join(f"{k} {v:,}" for k, v in self.by_split.items())
        links = ", ".join(f"{k} {v:,}" for k, v in self.links.items() if v) or "none"
        notes = [f"{self.given:,} given in the manifest"] if self.given else []
        notes += [f"{self.left_out:,} failed or filtered left out"] if self.left_out else []
        notes += ["unchanged"] if self.unchanged else []
        named = ", ".join(g.describe() for g in self.largest_groups[:groups])
        return (
            f"{total:,} samples: {splits}; {self.groups:,} groups kept together "
            f"(largest {self.largest:,}); links: {links}"
            + (f"; largest groups: {named}" if named else "")
            + (f"; {', '.join(notes)}" if notes else "")
        )


def make_splits(dataset: Path, config: SplitConfig, *, overwrite: bool = False) -> MakeSummary:
    """Group the usable samples of ``dataset``; write ``splits.parquet`` and its links file.

    The links file (``splits_links.parquet``, :data:`~svm_toolkit.schema.SPLIT_LINKS_SCHEMA`) is
    written after ``splits.parquet``, with that file's SHA-256 in its provenance
    (``splits_sha256``); it is rewritten on each run whose links or splits differ, and left as it
    is (byte for byte) otherwise.

    Raises:
        InputError: no manifest; or ``splits.parquet`` holds other splits and not ``overwrite``.
        ConfigError: a split given in the manifest is not a split name.
    """
    started = time.perf_counter()
    layout = DatasetLayout(Path(dataset))
    inputs = load_inputs(layout.root)
    samples = inputs.samples
    given = _given_splits(inputs)
    included = samples["usable"].to_numpy() | (given >= 0)
    links = find_links(inputs, kinds_for(config.group_by), config.match)
    group = components(len(samples), links)
    split = _deal(inputs, group, given, included, config)
    ids = samples.index.to_numpy()
    representative = _representatives(ids, group, included)
    order = np.argsort(ids[included], kind="stable")
    table = pa.table(
        {
            COL.sample_id: ids[included][order],
            COL.split: np.asarray([s.value for s in SPLITS])[split[included]][order],
            COL.group: representative[included][order],
        },
        schema=with_provenance(SPLITS_SCHEMA, STAGE, to_dict(config)),
    )
    unchanged = _unchanged(layout.splits, table, overwrite=overwrite)
    if not unchanged:
        write_table_atomic(table, layout.splits)
    linked = links_table(samples, links, included, representative)
    linked = linked.replace_schema_metadata(
        with_provenance(
            SPLIT_LINKS_SCHEMA, STAGE, to_dict(config), splits_sha256=file_sha256(layout.splits)
        ).metadata
    )
    if not _same_file(layout.split_links, linked):
        write_table_atomic(linked, layout.split_links)
    sizes = np.bincount(group[included]) if included.any() else np.zeros(0, np.int64)
    names = np.asarray([s.value for s in SPLITS])
    position = {sample_id: i for i, sample_id in enumerate(ids.tolist())}
    largest = tuple(
        replace(g, split=str(names[split[position[g.group]]]))
        for g in largest_groups(samples, links, group, included)
    )
    summary = MakeSummary(
        by_split={s.value: int((split[included] == i).sum()) for i, s in enumerate(SPLITS)},
        groups=int((sizes > 1).sum()),
        largest=int(sizes.max(initial=0)),
        links={x.kind: len(x) for x in links},
        given=int((given >= 0).sum()),
        left_out=int((~included).sum()),
        unchanged=unchanged,
        seconds=time.perf_counter() - started,
        largest_groups=largest,
        links_path=layout.split_links,
    )
    logger.info("splits make: %s", summary.describe())
    return summary


def _given_splits(inputs: SplitInputs) -> npt.NDArray[np.int64]:
    """Index into :data:`SPLITS` of each sample's given split, -1 where none is given."""
    out = np.full(len(inputs), -1, np.int64)
    for i, (sample_id, value) in enumerate(inputs.samples[COL.split].items()):
        if value is None or value != value:  # None or NaN
            continue
        try:
            out[i] = SPLITS.index(parse_split(value))
        except ValueError as exc:
            raise ConfigError(f"manifest row {sample_id!r}: split {exc}") from None
    return out


def _deal(
    inputs: SplitInputs,
    group: npt.NDArray[np.int64],
    given: npt.NDArray[np.int64],
    included: npt.NDArray[np.bool_],
    config: SplitConfig,
) -> npt.NDArray[np.int64]:
    """Each sample's split index: given splits kept, groups dealt to the neediest split."""
    split = np.where(given >= 0, given, -1)
    members: dict[int, list[int]] = {}
    for i in np.flatnonzero(included).tolist():
        members.setdefault(int(group[i]), []).append(i)
    ratios = np.asarray(config.ratios)
    total = float(included.sum())
    counts = np.zeros(len(SPLITS))
    labels = inputs.samples[COL.labels].tolist()
    label_counts: dict[object, npt.NDArray[np.float64]] = {}
    label_total: dict[object, float] = {}
    if config.stratify:
        for i in np.flatnonzero(included).tolist():
            for label in labels[i]:
                label_total[label] = label_total.get(label, 0.0) + 1.0
                label_counts.setdefault(label, np.zeros(len(SPLITS)))
    free: list[tuple[int, str, int]] = []
    for g, rows in members.items():
        fixed = [int(given[i]) for i in rows if given[i] >= 0]
        if fixed:  # a given split pulls its whole group along (the majority of conflicting ones)
            target = max(set(fixed), key=lambda s: (fixed.count(s), -s))
            split[[i for i in rows if given[i] < 0]] = target
            _count(rows, target, counts, labels, label_counts)
        else:
            first = min(str(inputs.samples.index[i]) for i in rows)
            tiebreak = hashlib.sha256(f"{config.seed}:{first}".encode()).hexdigest()
            free.append((-len(rows), tiebreak, g))
    for _, _, g in sorted(free):
        rows = members[g]
        need = (ratios * total - counts) / np.maximum(ratios * total, 1.0)
        if config.stratify:
            for label in {x for i in rows for x in labels[i]}:
                want = ratios * label_total[label]
                need = need + (want - label_counts[label]) / np.maximum(want, 1.0)
        need[ratios == 0] = -np.inf
        target = int(np.argmax(need))
        split[rows] = target
        _count(rows, target, counts, labels, label_counts)
    return split


def _count(
    rows: list[int],
    target: int,
    counts: npt.NDArray[np.float64],
    labels: list[list[object]],
    label_counts: dict[object, npt.NDArray[np.float64]],
) -> None:
    counts[target] += len(rows)
    for i in rows:
        for label in labels[i]:
            if label in label_counts:
                label_counts[label][target] += 1.0


def _representatives(
    ids: npt.NDArray[np.object_], group: npt.NDArray[np.int64], included: npt.NDArray[np.bool_]
) -> npt.NDArray[np.object_]:
    """The smallest included sample id of each sample's group."""
    first: dict[int, str] = {}
    for sample_id, g in zip(ids[included].tolist(), group[included].tolist(), strict=True):
        if g not in first or sample_id < first[g]:
            first[g] = sample_id
    return np.asarray([first.get(int(g), "") for g in group], dtype=object)


def _same_file(path: Path, table: pa.Table) -> bool:
    """True when ``path`` holds ``table``: the same rows and the same provenance."""
    if not path.exists():
        return False
    try:
        old = pq.read_table(path)
    except READ_ERRORS:  # damaged: rewritten
        return False
    meta = (old.schema.metadata or {}).get(METADATA_KEY)
    return bool(
        meta == (table.schema.metadata or {}).get(METADATA_KEY)
        and old.schema.remove_metadata().equals(table.schema.remove_metadata())
        and old.equals(table.replace_schema_metadata(old.schema.metadata))
    )


def _unchanged(path: Path, table: pa.Table, *, overwrite: bool) -> bool:
    """True when ``path`` already holds these splits; raise if it holds others (no overwrite)."""
    if not path.exists():
        return False
    old = read_table(path, columns=[COL.sample_id, COL.split])
    before = dict(
        zip(*(old.column(c).to_pylist() for c in (COL.sample_id, COL.split)), strict=True)
    )
    after = dict(
        zip(*(table.column(c).to_pylist() for c in (COL.sample_id, COL.split)), strict=True)
    )
    if before == after:
        return True
    moved = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    gone = sorted(before.keys() - after.keys())
    if (moved or gone) and not overwrite:
        shown = ", ".join((moved + gone)[:3]) + (", ..." if len(moved) + len(gone) > 3 else "")
        raise InputError(
            f"{path} already holds other splits: {len(moved)} samples would move and "
            f"{len(gone)} would leave ({shown}); pass --overwrite to replace them (results "
            "on the old test split are then not comparable)"
        )
    return False
