"""``svm splits validate``: run every registered check on a dataset's splits and report."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import InputError, SchemaMismatchError
from svm_toolkit.io.checked import read_schema, read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.manifest.values import parse_split
from svm_toolkit.schema import COL, SPLITS_SCHEMA, check_columns, read_provenance
from svm_toolkit.splits.checks import CHECKS, SPLIT_NAMES, TITLE_COLUMN, Context, short_url
from svm_toolkit.splits.inputs import SplitInputs, load_inputs
from svm_toolkit.splits.make import SplitConfig
from svm_toolkit.splits.matching import MatchConfig
from svm_toolkit.splits.report import SplitReport

logger = logging.getLogger(__name__)

DEFAULT_RATIOS = SplitConfig().ratios  # for splits given in the manifest


@dataclass(frozen=True, slots=True)
class ValidateConfig:
    """What ``svm splits validate`` checks.

    Attributes:
        features: extractors every sample in a split must have features from.
        ratios: intended shares of train, val and test; ``None``: those ``splits.parquet`` was
            made with (0.8, 0.1, 0.1 for splits given in the manifest).
        match: thresholds of the fingerprint searches.
        size_tolerance: allowed distance of a split's share from its ratio.
        max_shift: largest KS distance (or label total variation) between a split and train.
        max_group_share: groups larger than this share of the samples (and >= 10) are warnings.
    """

    features: tuple[str, ...] = ()
    ratios: tuple[float, float, float] | None = None
    match: MatchConfig = field(default_factory=MatchConfig)
    size_tolerance: float = 0.05
    max_shift: float = 0.25
    max_group_share: float = 0.05


def validate_splits(dataset: Path, config: ValidateConfig = ValidateConfig()) -> SplitReport:
    """Check the splits of ``dataset`` (``splits.parquet``, else the manifest's split column).

    Raises:
        InputError: no manifest, or no splits anywhere.
    """
    layout = DatasetLayout(Path(dataset))
    inputs = load_inputs(layout.root)
    split, source, ratios, problems = _read_splits(layout, inputs)
    ctx = Context(
        inputs,
        split,
        config.ratios or ratios,
        dataset=str(layout.root),
        source=source,
        titles=_titles(layout, inputs),
        features=config.features,
        problems=tuple(problems),
        match=config.match,
        size_tolerance=config.size_tolerance,
        max_shift=config.max_shift,
        max_group_share=config.max_group_share,
    )
    findings = [
        replace(finding, named=ctx.names(finding.samples))
        for _, run in CHECKS.values()
        for finding in run(ctx)
    ]
    findings.sort(key=lambda f: f.level.value)  # "error" < "warning"
    report = SplitReport(
        dataset=str(layout.root),
        source=source,
        by_split={name: int((split == i).sum()) for i, name in enumerate(SPLIT_NAMES)},
        findings=tuple(findings),
        distributions=_distributions(ctx),
        checks=tuple(CHECKS),
    )
    logger.info("splits validate: %s", report.describe())
    return report


def _titles(layout: DatasetLayout, inputs: SplitInputs) -> tuple[str, ...]:
    """Each sample's title from the manifest's ``title`` column (row order); ``()``: none."""
    if TITLE_COLUMN not in read_schema(layout.manifest).names:
        return ()
    table = read_table(layout.manifest, columns=[COL.sample_id, TITLE_COLUMN])
    found = dict(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))
    return tuple(
        "" if found.get(s) is None else str(found[s]) for s in inputs.samples.index.tolist()
    )


def _read_splits(
    layout: DatasetLayout, inputs: SplitInputs
) -> tuple[npt.NDArray[np.int64], str, tuple[float, float, float], list[tuple[str, str]]]:
    """Each sample's split index, where they came from, the intended ratios, and problems."""
    position = {str(s): i for i, s in enumerate(inputs.samples.index)}
    split = np.full(len(inputs), -1, np.int64)
    problems: list[tuple[str, str]] = []
    path = layout.splits
    if path.exists():
        schema = read_schema(path)
        try:
            check_columns(schema, SPLITS_SCHEMA, where=str(path))
            made = read_provenance(schema, where=str(path)).get("config", {})
        except SchemaMismatchError as exc:
            return split, path.name, DEFAULT_RATIOS, [(str(path), str(exc))]
        table = read_table(path, columns=[COL.sample_id, COL.split])
        pairs: Iterable[tuple[Any, Any]] = zip(
            *(table.column(c).to_pylist() for c in (COL.sample_id, COL.split)), strict=True
        )
        ratios = tuple(made.get("ratios", DEFAULT_RATIOS))
        source = path.name
    else:
        given = inputs.samples[COL.split]
        if given.isna().all():
            raise InputError(
                f"{layout.root}: no splits; make them with 'svm splits make {layout.root}' or "
                "give a split column in the URL list"
            )
        pairs = ((str(k), v) for k, v in given.items() if isinstance(v, str))
        ratios, source = DEFAULT_RATIOS, "the manifest's split column"
    urls = inputs.samples[COL.url].tolist()

    def named(sample_id: str) -> str:
        """The id quoted, and its URL when the manifest has the sample."""
        url = urls[position[sample_id]] if sample_id in position else None
        return f"{sample_id!r}" + (f" ({short_url(url)})" if isinstance(url, str) and url else "")

    seen: set[str] = set()
    for row, (sample_id, value) in enumerate(pairs):
        where = f"{path.name if path.exists() else 'manifest'} row {row}"
        if sample_id in seen:
            problems.append((where, f"{named(sample_id)} is listed twice; keep one row per sample"))
            continue
        seen.add(sample_id)
        if sample_id not in position:
            problems.append((where, f"{sample_id!r} is not in the manifest"))
            continue
        try:
            split[position[sample_id]] = SPLIT_NAMES.index(parse_split(value).value)
        except ValueError as exc:
            problems.append((where, f"{named(sample_id)}: {exc}"))
    if len(ratios) != len(SPLIT_NAMES):
        ratios = DEFAULT_RATIOS
    return split, source, (float(ratios[0]), float(ratios[1]), float(ratios[2])), problems


def _distributions(ctx: Context) -> dict[str, dict[str, list[float]]]:
    """Per quantity and split, the values the report plots."""
    samples = ctx.inputs.samples
    out: dict[str, dict[str, list[float]]] = {}
    for name in (COL.duration_s, "height"):
        values = samples[name].to_numpy(dtype=float)
        out[name] = {split: values[ctx.split == i].tolist() for i, split in enumerate(SPLIT_NAMES)}
    group = ctx.groups
    sizes = np.bincount(group[ctx.assigned()], minlength=int(group.max(initial=0)) + 1)
    out["group_size"] = {
        split: sizes[group[ctx.split == i]].astype(float).tolist()
        for i, split in enumerate(SPLIT_NAMES)
    }
    return out
