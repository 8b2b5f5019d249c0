"""``svm report``: write DATASET's report, one HTML page that opens offline."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.report import DEFAULT_NAME, ReportConfig, write_report

_DEFAULTS = ReportConfig()


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The page to write [default: DATASET/{DEFAULT_NAME}].",
)
@click.option(
    "--release",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A release folder (svm release): add what survived of it (svm compare).",
)
@click.option(
    "--per-reason",
    type=click.IntRange(min=0),
    default=_DEFAULTS.per_reason,
    show_default=True,
    help="Samples pictured per filter reason, and cropped samples; the rest are counted.",
)
@click.option(
    "--groups",
    type=click.IntRange(min=0),
    default=_DEFAULTS.groups,
    show_default=True,
    help="Groups of linked samples pictured; the rest are counted.",
)
def report(
    dataset: Path, output: Path | None, release: Path | None, per_reason: int, groups: int
) -> None:
    """Write DATASET's report: one HTML page to look at, that opens offline.

    \b
    The funnel from manifest to features with counts by status (those of `svm manifest
    info`), a frame of the samples each filter dropped, by reason (a false positive
    shows at a glance), crop boxes drawn on a frame, linked samples (near-duplicates, the
    same song...) side by side, split balance plots, and with --release what survived of
    a release (svm compare). CSS and pictures are inside the file; nothing is loaded from
    elsewhere.

    \b
    Examples:
      svm report data/svm10k                      -> data/svm10k/report.html
      svm report rebuilt --release svm10k-release -o compare.html
    """
    config = ReportConfig(per_reason=per_reason, crops=per_reason, groups=groups)
    summary = write_report(dataset, output, config, release=release)
    click.echo(f"report: {summary.describe()}")
