"""``svm report DATASET``: read the facts, decode the pictures, draw the plots, write one page.

The page is written atomically (a hidden temp file, then a rename), by default to
``DATASET/report.html``. Nothing in the dataset changes. With a release, the compare section
is ``svm compare RELEASE DATASET``'s result (:func:`svm_toolkit.release.compare.compare_release`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from svm_toolkit.errors import ConfigError
from svm_toolkit.io.atomic import write_bytes_atomic
from svm_toolkit.report.collect import Caps, Facts, Shown, collect
from svm_toolkit.report.html import render_page
from svm_toolkit.report.plots import split_plots
from svm_toolkit.report.thumbs import thumbnails

logger = logging.getLogger(__name__)

#: The page's name inside the dataset when no output is given.
DEFAULT_NAME: Final = "report.html"


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """What the page shows and how it is made.

    Attributes:
        per_reason: filtered samples pictured per filter reason (the rest are counted).
        crops: cropped samples pictured.
        groups: linked groups pictured, each with at most ``group_members`` samples.
        group_members: samples pictured per group.
        thumb_width: width of each picture, pixels (even): 160 keeps a 200-sample page
            under half a megabyte.
        workers: ffmpeg processes decoding pictures at once.
    """

    per_reason: int = 12
    crops: int = 12
    groups: int = 8
    group_members: int = 6
    thumb_width: int = 160
    workers: int = 2

    def __post_init__(self) -> None:
        for name in ("per_reason", "crops", "groups", "group_members"):
            if getattr(self, name) < 0:
                raise ConfigError(f"report {name} must be >= 0, got {getattr(self, name)}")
        if self.thumb_width < 16 or self.thumb_width % 2:
            raise ConfigError(
                f"report thumb_width must be an even number of pixels >= 16, got {self.thumb_width}"
            )
        if self.workers < 1:
            raise ConfigError(f"report workers must be >= 1, got {self.workers}")


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What :func:`write_report` wrote.

    Attributes:
        path: the page.
        bytes: its size.
        pictures: frames decoded; ``missing`` of them gave no picture.
        missing: pictures that could not be made (no file, no frame).
        compared: whether the page has a compare section.
        seconds: wall time.
    """

    path: Path
    bytes: int
    pictures: int
    missing: int
    compared: bool
    seconds: float

    def describe(self) -> str:
        """One line for the CLI: ``DATASET/report.html: 312 KB, 44 pictures in 3.1 s``."""
        lost = f" ({self.missing} without a picture)" if self.missing else ""
        compare = ", with the compare section" if self.compared else ""
        return (
            f"{self.path}: {self.bytes / 1000:,.0f} KB, {self.pictures} pictures{lost}"
            f"{compare} in {self.seconds:.1f} s"
        )


def write_report(
    dataset: Path,
    output: Path | None = None,
    config: ReportConfig = ReportConfig(),
    *,
    release: Path | None = None,
) -> ReportSummary:
    """Write the dataset's report page (see the module docstring).

    Args:
        dataset: the dataset root.
        output: the page's path; ``None``: ``DATASET/report.html``.
        config: what the page shows.
        release: a release folder (``svm release``) to compare the dataset with.

    Raises:
        InputError: no manifest, a damaged file of the dataset, or a damaged release (the
            message names the file and the fix).
        MissingToolError: ffmpeg is not installed.
    """
    started = time.perf_counter()
    dataset = Path(dataset)
    path = Path(output) if output is not None else dataset / DEFAULT_NAME
    caps = Caps(config.per_reason, config.crops, config.groups, config.group_members)
    facts = collect(dataset, caps)
    comparison = _compare(release, dataset) if release is not None else None
    changed = _changed(facts, comparison, config.per_reason)
    wanted = [*_pictured(facts), *changed]
    pictures = thumbnails(wanted, width=config.thumb_width, workers=config.workers)
    plot = None
    if facts.funnel.splits is not None:
        plot = split_plots(facts.funnel.splits.sizes, facts.split_rows, label_name=facts.label_name)
    page = render_page(facts, pictures, plot, comparison, changed).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, page)
    missing = sum(1 for data in pictures.values() if data is None)
    summary = ReportSummary(
        path=path,
        bytes=len(page),
        pictures=len(pictures),
        missing=missing,
        compared=comparison is not None,
        seconds=time.perf_counter() - started,
    )
    logger.info("report: %s", summary.describe())
    return summary


def _pictured(facts: Facts) -> list[Shown]:
    shown = [s for samples in facts.filtered.values() for s in samples]
    shown += list(facts.crops)
    shown += [m for group in facts.groups for m in group.members]
    return shown


def _changed(facts: Facts, comparison: dict[str, Any] | None, cap: int) -> list[Shown]:
    """The samples whose media changed since the release, pictured from this dataset's files."""
    shown = []
    for row in (comparison or {}).get("changed", [])[:cap]:
        sample = str(row.get("sample_id"))
        path, at = facts.media.get(sample, (None, 0.0))
        caption = f"{row.get('what', '')}: {row.get('detail', '')}".strip(": ")
        shown.append(Shown(sample, path, caption, row.get("url"), at))
    return shown


def _compare(release: Path, dataset: Path) -> dict[str, Any]:
    from svm_toolkit.release.compare import compare_release  # loaded only with --release

    return compare_release(Path(release), dataset).to_json()


__all__ = ["DEFAULT_NAME", "ReportConfig", "ReportSummary", "write_report"]
