"""The registered split checks. Each takes the :class:`Context` and returns findings.

Errors (results on such splits are wrong):
  schema, same_video, same_song, near_duplicate_video, missing_media, missing_features
Warnings (results are suspect, or use less data than there is):
  left_out, split_sizes, distribution_shift, large_groups

A finding names its samples by id and, through :meth:`Context.name`, by title or URL.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.schema import COL, Split
from svm_toolkit.splits.inputs import SplitInputs
from svm_toolkit.splits.links import Links, components, find_links, largest_groups
from svm_toolkit.splits.matching import MatchConfig
from svm_toolkit.splits.report import Finding, Level

SPLIT_NAMES: Final = tuple(s.value for s in Split)  # train, val, test
#: An extra manifest column a URL list may carry (kept by ``svm manifest``); shown when present.
TITLE_COLUMN: Final = "title"
#: Longest URL and title shown in a sample's name (characters); longer ones are cut in the middle
#: (URLs: host and the end, where ids live) or at the end (titles).
URL_CHARS: Final = 60
TITLE_CHARS: Final = 48


def printable(text: str) -> str:
    """``text`` with control characters (newlines, terminal escapes) replaced by spaces.

    Titles and URLs come from the user's URL list: untrusted, and shown on a terminal.
    """
    return "".join(ch if ch.isprintable() else " " for ch in text)


def short_url(url: str, limit: int = URL_CHARS) -> str:
    """``url`` without its scheme and ``www.``, cut in the middle to ``limit`` characters.

    Example:
        >>> short_url("https://www.youtube.com/watch?v=dQw4w9WgXcQ")
        'youtube.com/watch?v=dQw4w9WgXcQ'
    """
    text = url.split("://", 1)[-1]
    text = text.removeprefix("www.")
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head) :]}"


def sample_name(sample_id: str, split: str | None, url: object, title: object) -> str:
    """A sample as findings name it: ``clip_a (test; example.org/clip_a.mp4)``.

    The title when there is one (quoted, cut to :data:`TITLE_CHARS`), else the URL
    (:func:`short_url`), after the split when the sample is in one.
    """
    parts = [split] if split else []
    text = printable(title).strip() if isinstance(title, str) else ""
    if text:
        cut = text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"
        parts.append(f'"{cut}"')
    elif isinstance(url, str) and url:
        parts.append(short_url(printable(url)))
    return f"{sample_id} ({'; '.join(parts)})" if parts else sample_id


@dataclass(frozen=True)
class Context:
    """What the checks look at.

    Attributes:
        inputs: the dataset's samples, fingerprints and feature ids.
        split: each sample's split index into :data:`SPLIT_NAMES` (-1: in no split).
        dataset: the dataset root, as commands in hints should name it.
        source: where the splits came from (``splits.parquet`` or the manifest's column).
        titles: each sample's title (row order; empty: none), when the manifest has them.
        ratios: the intended shares of train, val and test.
        features: extractors every sample in a split must have features from.
        problems: ``(file, message)`` for split files that did not read cleanly.
        match: thresholds of the fingerprint searches.
        size_tolerance: allowed distance of a split's share from its ratio.
        max_shift: largest Kolmogorov-Smirnov distance (or label total variation) between a
            split and train before it is a warning.
        max_group_share: a group larger than this share of the samples (and >= 10) is a warning.
    """

    inputs: SplitInputs
    split: npt.NDArray[np.int64]
    ratios: tuple[float, float, float]
    dataset: str = "DATASET"
    source: str = "splits.parquet"
    titles: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    match: MatchConfig = field(default_factory=MatchConfig)
    size_tolerance: float = 0.05
    max_shift: float = 0.25
    max_group_share: float = 0.05

    @functools.cached_property
    def links(self) -> dict[str, Links]:
        """Every link kind's pairs (fingerprint searches run once, on first use)."""
        kinds = ("video_id", "url", "music_id", "audio", "picture")
        return {x.kind: x for x in find_links(self.inputs, kinds, self.match)}

    @functools.cached_property
    def groups(self) -> npt.NDArray[np.int64]:
        """Each sample's group under every leak link (video id, URL, music id, audio, picture)."""
        kinds = ("video_id", "url", "music_id", "audio", "picture")
        return components(len(self.split), [self.links[k] for k in kinds])

    @property
    def ids(self) -> list[str]:
        """Sample ids, row order."""
        return [str(x) for x in self.inputs.samples.index]

    def assigned(self) -> npt.NDArray[np.bool_]:
        """Samples in some split."""
        return self.split >= 0

    @functools.cached_property
    def _urls(self) -> list[object]:
        return self.inputs.samples[COL.url].tolist()

    def name(self, i: int) -> str:
        """Sample ``i`` by id, split, and title or URL (:func:`sample_name`)."""
        split = SPLIT_NAMES[self.split[i]] if self.split[i] >= 0 else None
        title = self.titles[i] if self.titles else None
        return sample_name(self.ids[i], split, self._urls[i], title)

    def names(self, sample_ids: Sequence[str]) -> tuple[str, ...]:
        """:meth:`name` of each id (an id not in the manifest stays as it is)."""
        position = self._positions
        return tuple(self.name(position[s]) if s in position else s for s in sample_ids)

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.ids)}

    @property
    def command_root(self) -> str:
        """:attr:`dataset` quoted for a shell command line."""
        return shlex.quote(self.dataset)


Check = Callable[[Context], list[Finding]]
CHECKS: dict[str, tuple[Level, Check]] = {}


def check(name: str, level: Level) -> Callable[[Check], Check]:
    """Register a check under ``name``; its findings have ``level``."""

    def register(fn: Check) -> Check:
        CHECKS[name] = (level, fn)
        return fn

    return register


def _crossing(ctx: Context, name: str, kinds: tuple[str, ...]) -> list[Finding]:
    """One finding per group of linked samples that lies in more than one split."""
    links = [ctx.links[k] for k in kinds]
    group = components(len(ctx.split), links)
    assigned = np.flatnonzero(ctx.assigned())
    found = []
    members: dict[int, list[int]] = {}
    for i in assigned.tolist():
        members.setdefault(int(group[i]), []).append(i)
    what = " or ".join(x.what for x in links)
    for rows in members.values():
        if len({int(ctx.split[i]) for i in rows}) < 2:
            continue
        rows.sort(key=lambda i: (int(ctx.split[i]), ctx.ids[i]))
        firsts = list({int(ctx.split[i]): i for i in reversed(rows)}.values())[::-1]
        picked = sorted([*firsts, *(i for i in rows if i not in firsts)][:4], key=rows.index)
        shown = ", ".join(ctx.name(i) for i in picked) + (", ..." if len(rows) > 4 else "")
        found.append(
            Finding(
                name,
                Level.ERROR,
                f"{len(rows)} samples share {what} across splits: {shown}; re-make the splits "
                f"(`svm splits make {ctx.command_root} --overwrite`) or move them into one split",
                tuple(ctx.ids[i] for i in rows),
            )
        )
    return found


@check("schema", Level.ERROR)
def _schema(ctx: Context) -> list[Finding]:
    problems = [*ctx.problems, *ctx.inputs.problems]
    return [Finding("schema", Level.ERROR, f"{file}: {message}") for file, message in problems]


@check("same_video", Level.ERROR)
def _same_video(ctx: Context) -> list[Finding]:
    return _crossing(ctx, "same_video", ("video_id", "url"))


@check("same_song", Level.ERROR)
def _same_song(ctx: Context) -> list[Finding]:
    return _crossing(ctx, "same_song", ("music_id", "audio"))


@check("near_duplicate_video", Level.ERROR)
def _near_duplicate(ctx: Context) -> list[Finding]:
    return _crossing(ctx, "near_duplicate_video", ("picture",))


@check("missing_media", Level.ERROR)
def _missing_media(ctx: Context) -> list[Finding]:
    usable = ctx.inputs.samples["usable"].to_numpy()
    rows = np.flatnonzero(ctx.assigned() & ~usable)
    if not len(rows):
        return []
    stage = ctx.inputs.samples["stage"].iloc[0]
    return [
        Finding(
            "missing_media",
            Level.ERROR,
            f"{len(rows)} samples in a split have no usable media (they failed or were "
            f"filtered up to the {stage} stage); drop them from the splits or retry that stage",
            tuple(ctx.ids[i] for i in rows),
        )
    ]


@check("missing_features", Level.ERROR)
def _missing_features(ctx: Context) -> list[Finding]:
    found = []
    for name in ctx.features:
        have = ctx.inputs.features.get(name, set())
        rows = [i for i in np.flatnonzero(ctx.assigned()).tolist() if ctx.ids[i] not in have]
        if rows:
            found.append(
                Finding(
                    "missing_features",
                    Level.ERROR,
                    f"{len(rows)} samples in a split have no {name} features; run "
                    f"`svm extract {ctx.command_root} -e {name}`",
                    tuple(ctx.ids[i] for i in rows),
                )
            )
    return found


@check("left_out", Level.WARNING)
def _left_out(ctx: Context) -> list[Finding]:
    """Usable samples in no split: silently missing from training and evaluation."""
    usable = ctx.inputs.samples["usable"].to_numpy(dtype=bool)
    rows = np.flatnonzero(usable & ~ctx.assigned())
    if not len(rows):
        return []
    stage = ctx.inputs.samples["stage"].iloc[0]
    fix = (
        f"re-make the splits with `svm splits make {ctx.command_root} --overwrite` (samples "
        "already dealt may move)"
        if ctx.source == "splits.parquet"
        else "give them a split in the URL list, or make the splits with "
        f"`svm splits make {ctx.command_root}`"
    )
    one = len(rows) == 1
    return [
        Finding(
            "left_out",
            Level.WARNING,
            f"{len(rows):,} usable sample{'' if one else 's'} (ok up to the {stage} stage) "
            f"{'is' if one else 'are'} in no split, so training and evaluation never see "
            f"{'it' if one else 'them'}; {fix}",
            tuple(ctx.ids[i] for i in rows),
        )
    ]


@check("split_sizes", Level.WARNING)
def _split_sizes(ctx: Context) -> list[Finding]:
    total = int(ctx.assigned().sum())
    if not total:
        return [Finding("split_sizes", Level.WARNING, "no sample is in any split")]
    found = []
    for i, (name, ratio) in enumerate(zip(SPLIT_NAMES, ctx.ratios, strict=True)):
        share = float((ctx.split == i).sum()) / total
        if abs(share - ratio) > ctx.size_tolerance:
            found.append(
                Finding(
                    "split_sizes",
                    Level.WARNING,
                    f"{name} holds {share:.1%} of the samples, intended {ratio:.0%} "
                    f"(tolerance {ctx.size_tolerance:.0%}); large groups or given splits "
                    "can cause this",
                )
            )
    return found


def ks_distance(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the two CDFs, in [0, 1]."""
    x, y = np.sort(x), np.sort(y)
    grid = np.concatenate([x, y])
    gap = np.searchsorted(x, grid, side="right") / len(x) - np.searchsorted(
        y, grid, side="right"
    ) / len(y)
    return float(np.abs(gap).max())


@check("distribution_shift", Level.WARNING)
def _distribution_shift(ctx: Context) -> list[Finding]:
    samples = ctx.inputs.samples
    found = []
    train = ctx.split == 0
    for name, unit in ((COL.duration_s, "s"), ("height", "px")):
        values = samples[name].to_numpy(dtype=float)
        base = values[train & np.isfinite(values)]
        for i, split in list(enumerate(SPLIT_NAMES))[1:]:
            rows = np.flatnonzero((ctx.split == i) & np.isfinite(values))
            if len(base) < 10 or len(rows) < 10:
                continue
            distance = ks_distance(base, values[rows])
            if distance > ctx.max_shift:
                far = rows[np.argsort(-np.abs(values[rows] - np.median(base)))[:10]]
                found.append(
                    Finding(
                        "distribution_shift",
                        Level.WARNING,
                        f"{name} differs between train (median {np.median(base):g} {unit}) and "
                        f"{split} (median {np.median(values[rows]):g} {unit}): KS distance "
                        f"{distance:.2f} > {ctx.max_shift:g}; samples furthest from train listed",
                        tuple(ctx.ids[j] for j in far),
                    )
                )
    found += _label_shift(ctx)
    return found


def _label_shift(ctx: Context) -> list[Finding]:
    labels = ctx.inputs.samples[COL.labels].tolist()
    if not any(labels):
        return []

    def distribution(mask: npt.NDArray[np.bool_]) -> dict[object, float]:
        counts: dict[object, float] = {}
        for i in np.flatnonzero(mask).tolist():
            for label in labels[i]:
                counts[label] = counts.get(label, 0.0) + 1.0
        total = sum(counts.values()) or 1.0
        return {k: v / total for k, v in counts.items()}

    base = distribution(ctx.split == 0)
    found = []
    for i, split in list(enumerate(SPLIT_NAMES))[1:]:
        mask = ctx.split == i
        if mask.sum() < 10:
            continue
        other = distribution(mask)
        distance = 0.5 * sum(abs(base.get(k, 0.0) - other.get(k, 0.0)) for k in base | other)
        if distance > ctx.max_shift:
            found.append(
                Finding(
                    "distribution_shift",
                    Level.WARNING,
                    f"labels differ between train and {split}: total variation {distance:.2f} > "
                    f"{ctx.max_shift:g}; make the splits with --stratify",
                )
            )
    return found


@check("large_groups", Level.WARNING)
def _large_groups(ctx: Context) -> list[Finding]:
    group = ctx.groups
    assigned = ctx.assigned()
    total = int(assigned.sum())
    sizes = np.bincount(group[assigned], minlength=int(group.max(initial=0)) + 1)
    limit = max(10, int(ctx.max_group_share * total))
    large = int((sizes > limit).sum())
    if not large:
        return []
    links = list(ctx.links.values())
    found = []
    for info in largest_groups(ctx.inputs.samples, links, group, assigned, top=large):
        also = [k for k in info.kinds if k != info.label.split(" ", 1)[0]]
        found.append(
            Finding(
                "large_groups",
                Level.WARNING,
                f"{info.size} samples ({info.size / total:.1%}) are tied by {info.label}"
                + (f" (and {', '.join(also)})" if also else "")
                + "; one group this size swings a split's metrics",
                info.samples,
            )
        )
    return found
