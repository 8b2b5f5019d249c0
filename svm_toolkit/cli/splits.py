"""``svm splits make`` and ``svm splits validate``: leak-free train/val/test splits."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.card import refresh_card
from svm_toolkit.cli import render
from svm_toolkit.cli.options import config_options, given, merge_config, print_config
from svm_toolkit.errors import ConfigError
from svm_toolkit.names import check_feature_sets
from svm_toolkit.splits.links import GROUP_BY
from svm_toolkit.splits.make import SplitConfig, make_splits
from svm_toolkit.splits.validate import ValidateConfig, validate_splits


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip()) if value else ()


def _ratios(value: str | None) -> tuple[float, float, float] | None:
    if not value:
        return None
    try:
        parts = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise ConfigError(f"--ratios {value!r}: give three numbers, e.g. 0.8,0.1,0.1") from None
    if len(parts) != 3:
        raise ConfigError(f"--ratios {value!r}: give three numbers (train, val, test)")
    return parts[0], parts[1], parts[2]


@click.group()
def splits() -> None:
    """Make train/val/test splits that cannot leak, and validate any splits."""


@splits.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--ratios", help="Shares of train, val and test [default: 0.8,0.1,0.1].")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes the deal order.")
@click.option(
    "--group-by",
    default="video,music",
    show_default=True,
    help=f"What keeps samples together, comma-separated: {', '.join(GROUP_BY)}.",
)
@click.option("--stratify", is_flag=True, help="Also balance YT8M labels across the splits.")
@click.option("--overwrite", is_flag=True, help="Replace a splits.parquet that differs.")
@config_options("SplitConfig fields (ratios, seed, group_by, stratify, match: {...})")
@render.json_option("splits make")
def make(
    dataset: Path,
    ratios: str | None,
    seed: int,
    group_by: str,
    stratify: bool,
    overwrite: bool,
    config_file: Path | None,
    as_json: bool,
) -> None:
    """Deal the usable samples of DATASET into train/val/test, keeping groups whole.

    \b
    Samples stay in one split when they share
      video     a video id or canonical URL, or a near-duplicate picture (perceptual hash)
      music     a music id or the same soundtrack (Chromaprint, at any offset)
      uploader  an author
    Fingerprints come from 'svm preprocess'; they are matched through an index, not pair by
    pair. Splits given in the URL list are kept; their groups follow them. Samples that
    failed or were filtered are left out.

    \b
    Output: DATASET/splits.parquet (sample_id, split, group). The same inputs and seed give
    the same file; a different result needs --overwrite. Beside it, splits_links.parquet:
    one row per link found (sample_id_a, sample_id_b, kind, what, value, score, offset_s,
    in_splits, group), links of left-out samples included; rewritten when the links or the
    splits change (it names splits.parquet's SHA-256, so a stale one is known).
    The summary names the three largest groups and what ties each; --json lists ten, with
    every sample.

    \b
    Examples:
      svm splits make data/svm10k
      svm splits make data/yt8m --ratios 0.7,0.15,0.15 --stratify --group-by video,music,uploader
    """
    flags = given({"ratios": ratios, "seed": seed, "group_by": group_by, "stratify": stratify})
    if "ratios" in flags:
        flags["ratios"] = _ratios(ratios) or SplitConfig().ratios
    if "group_by" in flags:
        flags["group_by"] = _names(group_by)
    config = merge_config(SplitConfig(), config_file, flags)
    print_config(config)
    summary = make_splits(dataset, config, overwrite=overwrite)
    refresh_card(dataset)  # the dataset card (README.md) says what is there now
    if as_json:
        path = dataset / "splits.parquet"
        render.emit_json(
            "splits make", {"dataset": dataset, "path": path, **render.fields(summary)}
        )
    else:
        click.echo(f"splits: {summary.describe()}")


@splits.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--features", help="Extractors every sample in a split must have, comma-separated.")
@click.option("--ratios", help="Intended shares [default: those the splits were made with].")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where report.json and report.png go [default: DATASET/splits_report].",
)
@config_options("ValidateConfig fields (features, ratios, match: {...}, size_tolerance, ...)")
@render.json_option("splits validate")
def validate(
    dataset: Path,
    features: str | None,
    ratios: str | None,
    strict: bool,
    out: Path | None,
    config_file: Path | None,
    as_json: bool,
) -> None:
    """Check the splits of DATASET for leaks and imbalance.

    \b
    The splits are DATASET/splits.parquet, or the split column given in the URL list.
    Errors (exit 2):
      schema                split files that do not match the schema, unknown ids or splits
      same_video            one video id or canonical URL in two splits
      same_song             one music id or soundtrack (audio fingerprint) in two splits
      near_duplicate_video  near-duplicate pictures (perceptual hash) in two splits
      missing_media         samples in a split that failed or were filtered
      missing_features      samples in a split without features of --features
    Warnings (exit 1 with --strict, else 0):
      left_out              usable samples (ok in every stage that ran) in no split
      split_sizes           shares far from the ratios
      distribution_shift    duration, height or labels differ between train and val/test
      large_groups          one group holds a large share of the samples

    \b
    Output: the report below, DATASET/splits_report/report.json (every finding with all its
    samples) and report.png (duration, height and group-size distributions per split).
    Samples are named by id, split, and title (a 'title' column of the URL list) or URL.

    \b
    Examples:
      svm splits validate data/svm10k --features imagebind_vision,imagebind_audio
      svm splits validate data/yt8m --strict
    """
    flags = given({"features": features, "ratios": ratios})
    if "features" in flags:
        flags["features"] = _names(features)
    if "ratios" in flags:
        flags["ratios"] = _ratios(ratios)
    config = merge_config(ValidateConfig(), config_file, flags)
    print_config(config)
    check_feature_sets(dataset, config.features)  # a typo is refused, not recommended
    report = validate_splits(dataset, config)
    written = report.write(out or dataset / "splits_report")
    if as_json:
        findings = [
            {
                "check": f.check,
                "level": f.level,
                "message": f.message,
                "samples": len(f.samples),
                "examples": f.named[:5],
            }
            for f in report.findings
        ]
        render.emit_json(
            "splits validate",
            {
                "dataset": dataset,
                "source": report.source,
                "by_split": report.by_split,
                "errors": len(report.errors),
                "warnings": len(report.warnings),
                "findings": findings,
                "checks": report.checks,
                "written": written,
                "exit_code": report.exit_code(strict=strict),
            },
        )
    else:
        click.echo(report.render())
        click.echo(f"report: {', '.join(str(p) for p in written)}")
    click.get_current_context().exit(report.exit_code(strict=strict))
