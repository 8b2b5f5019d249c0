"""``svm manifest``: build a manifest from URL lists, and describe a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.cli import render
from svm_toolkit.config import load_overrides, replace
from svm_toolkit.manifest import MANIFEST_PRESETS, build_manifest, dataset_info
from svm_toolkit.manifest.readers import supported_suffixes

_DATASET = click.Path(file_okay=False, path_type=Path)


@click.group()
def manifest() -> None:
    """Build and inspect manifests (one row per sample)."""


@manifest.command("urls")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "dataset",
    required=True,
    type=_DATASET,
    help="Dataset root to write manifest.parquet into.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(MANIFEST_PRESETS)),
    default="generic",
    show_default=True,
    help="svm10k: map TikTok-scraper columns (diggCount, search_term, ...) and keep > 10k likes.",
)
@click.option(
    "--url-column", help="Input column with the URL [default: url, webpage_url, link, ...]."
)
@click.option(
    "--id-column", help="Input column with your own sample ids [default: derived from the URL]."
)
@click.option(
    "--min-likes", type=click.IntRange(min=0), help="Mark rows with fewer likes filtered:min_likes."
)
@click.option(
    "--max-duration",
    "max_duration_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Mark rows longer than this many seconds filtered:max_duration.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML file of ManifestConfig fields (flags override it).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing manifest whose rows differ.")
def urls(
    inputs: tuple[Path, ...],
    dataset: Path,
    preset: str,
    url_column: str | None,
    id_column: str | None,
    min_likes: int | None,
    max_duration_s: float | None,
    config_file: Path | None,
    overwrite: bool,
) -> None:
    """Turn URL lists into DATASET/manifest.parquet.

    \b
    INPUTS are files of URLs: .txt (one per line), .csv, .tsv, .jsonl, .json or .parquet,
    each optionally .gz. Every row becomes one sample, keyed by a content-derived id:
      YouTube   any URL form (watch?v=, youtu.be/, shorts/, embed/, live/, music.) -> 11-char id
      TikTok    /@user/video/<id> -> the numeric id (the @user becomes the author)
      other     u + 16 hex digits of a hash of the normalised URL
    The same video under two URL forms merges into one sample. start/end columns make
    clips (id_<start_ms>_<end_ms>). Other columns are kept. Bad URLs stay as rows with
    status invalid_url; rows the pre-filters drop stay as filtered:<reason>.

    \b
    Examples:
      svm manifest urls links.txt -o data/mine
      svm manifest urls tiktok.csv --preset svm10k --max-duration 60 -o data/svm10k
      svm manifest urls clips.jsonl --url-column link --id-column clip -o data/clips
    """
    base = MANIFEST_PRESETS[preset]
    if config_file is not None:
        base = replace(base, load_overrides(config_file), where=str(config_file))
    config = replace(
        base,
        {
            "url_column": url_column,
            "id_column": id_column,
            "min_likes": min_likes,
            "max_duration_s": max_duration_s,
        },
    )
    summary = build_manifest(list(inputs), dataset, config, overwrite=overwrite)
    state = "unchanged" if summary.unchanged else "written"
    click.echo(f"manifest: {summary.describe()} in {summary.seconds:.1f} s")
    click.echo(f"  source  {render.counts(summary.by_source)}")
    click.echo(f"  {summary.path} {state}")


urls.help = (urls.help or "") + f"\n\nFormats: {', '.join(supported_suffixes())}."


@manifest.command("info")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
def info(dataset: Path) -> None:
    """Show what DATASET holds: samples by source, status and split, durations, stages."""
    facts = dataset_info(dataset)
    click.echo(f"{facts.root}: {facts.samples:,} samples")
    for title, values in (
        ("source", facts.by_source),
        ("status", facts.by_status),
        ("split", facts.by_split),
    ):
        click.echo(f"  {title:<8}{render.counts(values)}")
    if facts.durations is not None:
        d = facts.durations
        click.echo(
            f"  duration {d.known:,} known, {d.total_s / 3600:.2f} h in all, "
            f"median {d.median_s:.1f} s (min {d.min_s:.1f} s, max {d.max_s:.1f} s)"
        )
    else:
        click.echo("  duration unknown (no duration or clip bounds yet)")
    if facts.stages:
        rows = [(stage, sum(c.values()), render.counts(c)) for stage, c in facts.stages.items()]
        click.echo("\n" + render.table(["stage", "rows", "status"], rows))
    if facts.features:
        click.echo("\n" + render.table(["extractor", "rows"], list(facts.features.items())))
