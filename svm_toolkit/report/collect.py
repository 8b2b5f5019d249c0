"""The facts ``svm report`` shows, read from a dataset root (nothing here decodes or draws).

* the funnel, exactly as ``svm manifest info`` counts it (:func:`dataset_funnel`);
* the samples preprocess filtered out, by reason (the ``filtered:<reason>`` statuses of
  ``ledger/preprocess-*``), and the reasons samples were dropped before any media was fetched;
* the samples whose crop box is not the whole frame;
* the groups of linked samples that share a split: from ``splits_links.parquet`` (the links
  ``svm splits make`` found) where it belongs to ``splits.parquet`` (a run killed between the
  two writes leaves one that does not), else from ``splits.parquet``'s ``group`` column;
* one row per split sample for the balance plots: split, duration (seconds) and labels.

Every file is read checked (ids, media paths under ``media/``): a ledger is untrusted input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from svm_toolkit.io import checked
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import committed_shards, read_shards
from svm_toolkit.manifest.build import read_manifest
from svm_toolkit.manifest.funnel import Funnel, dataset_funnel
from svm_toolkit.schema import COL, Status, parse_status
from svm_toolkit.splits.links import links_belong_to_splits

PREPROCESS: Final = "preprocess"
#: Link kinds that compare the media themselves (shown before same-value kinds such as a song).
FINGERPRINT_KINDS: Final = ("picture", "audio")
_DURATION: Final = "media_duration_s"
_PREPROCESS_COLUMNS: Final = (
    COL.sample_id,
    COL.status,
    COL.detail,
    COL.media_path,
    _DURATION,
    "width",
    "height",
    COL.rotation,
    COL.failed_filters,
    COL.crop_x,
    COL.crop_y,
    COL.crop_w,
    COL.crop_h,
)


@dataclass(frozen=True, slots=True)
class Shown:
    """One sample the page shows as a picture.

    Attributes:
        sample_id: the sample.
        media: its downloaded file, ``None`` when there is none on disk.
        caption: one line under the picture (the filter's verdict, the crop box...).
        url: the sample's URL from the manifest (``None`` when it has none).
        at_s: where in the media the frame is taken, seconds.
        box: a box to draw on the frame, ``(x, y, width, height)`` in the pixels of the frame
            as shown (after the display rotation), or ``None``.
        split: the sample's split, ``None`` when it has none.
    """

    sample_id: str
    media: Path | None
    caption: str
    url: str | None = None
    at_s: float = 0.0
    box: tuple[int, int, int, int] | None = None
    split: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """Samples tied together by links (or by their shared ``group`` in ``splits.parquet``).

    Attributes:
        members: the members shown (at most ``ReportConfig.group_members``), by id.
        size: the number of members in all.
        links: what ties them, one line per link shown (``a ↔ b: a near-duplicate picture``).
        kinds: the link kinds in the group (empty for groups read from ``splits.parquet``).
    """

    members: tuple[Shown, ...]
    size: int
    links: tuple[str, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SplitRow:
    """One split sample for the balance plots: split, duration (seconds, NaN unknown), labels."""

    split: str
    duration_s: float
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the report shows (see the module docstring).

    Attributes:
        dataset: the dataset root.
        funnel: the funnel of ``svm manifest info``.
        filtered: reason -> the filtered samples shown (capped), by reason, most common first.
        filtered_total: reason -> every sample preprocess filtered for it.
        dropped_early: status -> samples filtered before download (no media to show).
        crops: samples whose crop box is not the whole frame (capped).
        crops_total: all such samples.
        groups: the groups shown (capped), fingerprint links first, then the largest.
        groups_total: all groups of two or more.
        groups_source: ``splits_links.parquet``, ``splits.parquet`` or ``None`` (no splits).
        links_stale: a links file is there but was not written with this ``splits.parquet``
            (a ``svm splits make`` stopped between its two writes, or an older toolkit's):
            the groups come from ``splits.parquet`` then.
        split_rows: one row per split sample.
        label_name: what the labels are (``theme``, ``label_names``), ``None`` without labels.
        media: ``sample_id -> (downloaded file, time of the frame to show in seconds)`` of every
            preprocessed sample with a file (for pictures of samples named elsewhere).
    """

    dataset: Path
    funnel: Funnel
    filtered: Mapping[str, tuple[Shown, ...]]
    filtered_total: Mapping[str, int]
    dropped_early: Mapping[str, int]
    crops: tuple[Shown, ...]
    crops_total: int
    groups: tuple[Group, ...]
    groups_total: int
    groups_source: str | None
    split_rows: tuple[SplitRow, ...]
    label_name: str | None
    media: Mapping[str, tuple[Path, float]]
    links_stale: bool = False


@dataclass(frozen=True, slots=True)
class Caps:
    """How many of each kind of picture the report shows (the rest are counted)."""

    per_reason: int = 12
    crops: int = 12
    groups: int = 8
    group_members: int = 6


def collect(dataset: Path, caps: Caps = Caps()) -> Facts:
    """Read the facts of the report from ``dataset`` (see the module docstring).

    Raises:
        InputError: no manifest, or a manifest, ledger or splits file that is damaged or holds
            an unsafe id or path (the message names the file and the fix).
        SchemaMismatchError: the manifest was written by an incompatible version.
    """
    layout = DatasetLayout(Path(dataset))
    funnel = dataset_funnel(layout.root)
    manifest = read_manifest(layout.root).to_pylist()
    urls = {r[COL.sample_id]: r[COL.url] for r in manifest}
    splits = _splits(layout, manifest)
    ledger = _preprocess_rows(layout)

    def shown(row: Mapping[str, Any], caption: str, box: Any = None) -> Shown:
        sample = str(row[COL.sample_id])
        media = row.get(COL.media_path)
        path = layout.root / media if isinstance(media, str) and media else None
        duration = row.get(_DURATION)
        at = float(duration) / 2 if isinstance(duration, float) and duration > 0 else 0.0
        return Shown(sample, path, caption, urls.get(sample), at, box, splits.get(sample))

    filtered, totals = _filtered(ledger, caps.per_reason, shown)
    crops, crops_total = _crops(ledger, caps.crops, shown)
    by_id = {str(r[COL.sample_id]): r for r in ledger}
    statuses = {r[COL.sample_id]: str(r[COL.status]) for r in manifest}
    statuses |= {k: str(v[COL.status]) for k, v in by_id.items()}

    def member(sample: str) -> Shown:
        split = splits.get(sample)
        caption = f"in {split}" if split else f"not in splits: {statuses.get(sample, '?')}"
        return shown({**by_id.get(sample, {}), COL.sample_id: sample}, caption)

    groups, groups_total, source = _groups(layout, caps, member)
    label_name, labels = _labels(manifest)
    durations = {
        k: float(v[_DURATION]) for k, v in by_id.items() if isinstance(v.get(_DURATION), float)
    }
    lengths = {r[COL.sample_id]: _input_length(r) for r in manifest}
    split_rows = tuple(
        SplitRow(split, durations.get(sample, lengths.get(sample, float("nan"))), labels(sample))
        for sample, split in sorted(splits.items())
    )
    return Facts(
        dataset=layout.root,
        funnel=funnel,
        filtered=filtered,
        filtered_total=totals,
        dropped_early=_dropped_early(funnel),
        crops=crops,
        crops_total=crops_total,
        groups=groups,
        groups_total=groups_total,
        groups_source=source,
        split_rows=split_rows,
        label_name=label_name,
        media={k: (v.media, v.at_s) for k in by_id if (v := shown(by_id[k], "")).media},
        links_stale=layout.split_links.is_file() and source != layout.split_links.name,
    )


def _preprocess_rows(layout: DatasetLayout) -> list[dict[str, Any]]:
    """The newest preprocess ledger row of each sample (the columns the report uses)."""
    if not layout.ledger_dir.is_dir():
        return []
    shards = committed_shards(layout.ledger_dir, PREPROCESS)
    if not shards:
        return []
    names = set(checked.read_schema(shards[-1]).names)
    columns = [c for c in _PREPROCESS_COLUMNS if c in names]
    table = read_shards(layout.ledger_dir, PREPROCESS, columns=columns)
    rows: list[dict[str, Any]] = [] if table is None else table.to_pylist()
    return rows


def _filtered(
    ledger: Sequence[Mapping[str, Any]], cap: int, shown: Callable[..., Shown]
) -> tuple[dict[str, tuple[Shown, ...]], dict[str, int]]:
    """The samples preprocess filtered, by reason (the most common first): ``cap`` shown each."""
    pictured: dict[str, list[Shown]] = defaultdict(list)
    totals: dict[str, int] = defaultdict(int)
    for row in ledger:
        status, reason = parse_status(str(row[COL.status]))
        if status is Status.FILTERED and reason:
            totals[reason] += 1
            if len(pictured[reason]) < cap:
                pictured[reason].append(shown(row, _filter_caption(row)))
    order = sorted(totals, key=lambda r: (-totals[r], r))
    return {r: tuple(pictured[r]) for r in order}, {r: totals[r] for r in order}


def _crops(
    ledger: Sequence[Mapping[str, Any]], cap: int, shown: Callable[..., Shown]
) -> tuple[tuple[Shown, ...], int]:
    """The ``ok`` samples whose crop box is not the whole frame (``cap`` shown), and their count."""
    pictured: list[Shown] = []
    total = 0
    for row in ledger:
        box = _crop_box(row)
        if box is not None and row[COL.status] == Status.OK.value:
            total += 1
            if len(pictured) < cap:
                pictured.append(shown(row, _crop_caption(row), box))
    return tuple(pictured), total


def _filter_caption(row: Mapping[str, Any]) -> str:
    """The filter's own words (``speech: 0.93 of the time speech > 0.5``), and any other filters."""
    detail = str(row.get(COL.detail) or "").strip()
    others = [f for f in row.get(COL.failed_filters) or [] if f not in detail.split(":")[0]]
    if others:
        detail += f" (also {', '.join(others)})"
    return detail or "filtered"


def _crop_box(row: Mapping[str, Any]) -> tuple[int, int, int, int] | None:
    """The crop box in shown pixels, ``None`` when it is the whole frame or unknown."""
    names = (COL.crop_x, COL.crop_y, COL.crop_w, COL.crop_h, "width", "height")
    values = [row.get(c) for c in names]
    if not all(isinstance(v, int) for v in values):
        return None
    x, y, w, h, width, height = (int(v) for v in values if isinstance(v, int))
    if (x, y, w, h) == (0, 0, width, height) or w <= 0 or h <= 0:
        return None
    from svm_toolkit.preprocess.crop import CropBox

    rotation = row.get(COL.rotation)
    try:
        box = CropBox(x, y, w, h).shown(int(rotation or 0), width, height)
    except ValueError:  # a rotation that is not a multiple of 90 degrees: drawn unrotated
        box = CropBox(x, y, w, h)
    return box.x, box.y, box.width, box.height


def _crop_caption(row: Mapping[str, Any]) -> str:
    w, h = row["width"], row["height"]
    return (
        f"{w}x{h} → {row[COL.crop_w]}x{row[COL.crop_h]} at ({row[COL.crop_x]}, {row[COL.crop_y]})"
    )


def _splits(layout: DatasetLayout, manifest: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``sample_id -> split``: ``splits.parquet``, else the manifest's split column."""
    if layout.splits.is_file():
        table = checked.read_table(layout.splits, columns=[COL.sample_id, COL.split])
        ids, values = (table.column(c).to_pylist() for c in (COL.sample_id, COL.split))
        return {i: v for i, v in zip(ids, values, strict=True) if v}
    return {r[COL.sample_id]: r[COL.split] for r in manifest if r.get(COL.split)}


def _groups(
    layout: DatasetLayout, caps: Caps, member: Callable[[str], Shown]
) -> tuple[tuple[Group, ...], int, str | None]:
    """Groups of two or more, from the links file or from ``splits.parquet``'s groups.

    The links file is read only where it belongs to ``splits.parquet``
    (:func:`~svm_toolkit.splits.links.links_belong_to_splits`).
    """
    members: dict[str, list[str]] = defaultdict(list)
    lines: dict[str, list[tuple[int, str]]] = defaultdict(list)
    kinds: dict[str, set[str]] = defaultdict(set)
    if links_belong_to_splits(layout.root):
        source = layout.split_links.name
        rows = _links(layout.split_links)
        root = _components([(r[COL.sample_id_a], r[COL.sample_id_b]) for r in rows])
        for sample, top in root.items():
            members[top].append(sample)
        for r in rows:
            top = root[r[COL.sample_id_a]]
            rank = 0 if r[COL.kind] in FINGERPRINT_KINDS else 1
            lines[top].append((rank, _link_line(r)))
            kinds[top].add(str(r[COL.kind]))
    elif layout.splits.is_file() and COL.group in checked.read_schema(layout.splits).names:
        source = layout.splits.name
        table = checked.read_table(layout.splits, columns=[COL.sample_id, COL.group])
        for sample, group in zip(
            *(table.column(c).to_pylist() for c in table.column_names), strict=True
        ):
            members[str(group)].append(str(sample))
    else:
        return (), 0, None
    big = {k: sorted(v) for k, v in members.items() if len(v) > 1}

    def order(key: str) -> tuple[int, int, str]:
        fingerprint = any(kind in FINGERPRINT_KINDS for kind in kinds[key])
        return (0 if fingerprint else 1, -len(big[key]), key)

    groups = []
    for key in sorted(big, key=order)[: caps.groups]:
        ids = big[key][: caps.group_members]
        faces = tuple(member(i) for i in ids)
        said = tuple(text for _, text in sorted(lines[key])[: caps.group_members])
        groups.append(Group(faces, len(big[key]), said, tuple(sorted(kinds[key]))))
    return tuple(groups), len(big), source


def _links(path: Path) -> list[dict[str, Any]]:
    """The rows of ``splits_links.parquet`` that tie two samples of the splits (ids checked)."""
    table = checked.read_table(path, id_column=COL.sample_id_a)
    checked.check_ids(table.column(COL.sample_id_b), path, column=COL.sample_id_b)
    # links to samples left out of the splits (filtered, failed) tie nothing in the splits
    return [r for r in table.to_pylist() if r.get(COL.in_splits, True) is not False]


def _components(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Union-find over the linked pairs: each sample -> the smallest id of its component."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def _link_line(row: Mapping[str, Any]) -> str:
    """``demo003 ↔ demo017: a near-duplicate picture (score 0.97, b 1.0 s later)``."""
    text = f"{row[COL.sample_id_a]} ↔ {row[COL.sample_id_b]}: {row[COL.what]}"
    bits = []
    score = row.get(COL.score)
    if isinstance(score, float) and score < 1.0:
        bits.append(f"score {score:.2f}")
    offset = row.get(COL.offset_s)
    if isinstance(offset, float) and abs(offset) >= 0.05:
        bits.append(f"shifted {offset:+.1f} s")
    return text + (f" ({', '.join(bits)})" if bits else "")


def _labels(
    manifest: Sequence[Mapping[str, Any]],
) -> tuple[str | None, Any]:
    """What labels the samples carry (``theme`` or YT8M's ``label_names``) and a lookup."""
    themes = {r[COL.sample_id]: r.get(COL.theme) for r in manifest}
    if any(themes.values()):
        return COL.theme, lambda s: (str(themes[s]),) if themes.get(s) else ()
    names = {r[COL.sample_id]: r.get(COL.label_names) for r in manifest}
    if any(names.values()):
        return COL.label_names, lambda s: tuple(str(x) for x in names.get(s) or ())
    return None, lambda s: ()


def _input_length(row: Mapping[str, Any]) -> float:
    """The sample's length as the input gave it, seconds (NaN when unknown)."""
    start = row.get(COL.start_s) if isinstance(row.get(COL.start_s), float) else 0.0
    for key in (COL.end_s, COL.duration_s):
        value = row.get(key)
        if isinstance(value, float):
            return value - float(start or 0.0)
    return float("nan")


def _dropped_early(funnel: Funnel) -> dict[str, int]:
    """Samples filtered before download, by status (``filtered:min_likes``...): no media."""
    first = funnel.stages[0].by_status
    return {k: v for k, v in first.items() if k.startswith(f"{Status.FILTERED.value}:")}
