"""``svm export``: a dataset's features as WebDataset tars or ``.npy`` files."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.cli import render
from svm_toolkit.export import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SAMPLES,
    FORMATS,
    ExportConfig,
    export_dataset,
)


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--format",
    "format_",
    type=click.Choice(list(FORMATS)),
    required=True,
    help="webdataset: tar shards, one sample per key; npy: one file per sample and feature.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The export folder: new or empty, or an unfinished export of the same plan to resume.",
)
@click.option("--features", help="Feature sets, comma-separated [default: every one].")
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    help="Only this split [default: every split].",
)
@click.option(
    "--max-samples",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_SAMPLES,
    show_default=True,
    help="webdataset: samples per tar at most.",
)
@click.option(
    "--max-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_MAX_BYTES / 2**20,
    show_default=True,
    help="webdataset: MiB per tar at most.",
)
@render.json_option("export")
def export(
    dataset: Path,
    format_: str,
    out: Path,
    features: str | None,
    split: str | None,
    max_samples: int,
    max_mb: float,
    as_json: bool,
) -> None:
    """Export the features of DATASET for training code that expects other layouts.

    \b
    Samples with a split (splits.parquet, else the URL list's) and every feature are
    exported; vectors are float16 (T, D), exactly as stored, with each step's start time.
      webdataset  OUT/<split>-000000.tar, ...: per sample <key>.json (sample_id, split,
                  music_id, per feature shape and timestamps_s) and <key>.<feature>.npy;
                  the key is the sample id with '.' written '%2E'
      npy         OUT/<feature>/<id[:2]>/<id>.npy, and OUT/index.parquet (sample_id,
                  split, music_id, <feature>_path, <feature>_shape, <feature>_timestamps_s)
    It streams (32 MiB of vectors in memory at a time) and resumes: run the same command
    again after an interruption; finished files are kept, an unfinished one is rewritten.

    \b
    Examples:
      svm export data/svm10k --format webdataset -o data/svm10k-wds --features vggish,resnet50
      svm export data/svm10k --format npy -o data/svm10k-npy --split train
    """
    names = tuple(s.strip() for s in features.split(",") if s.strip()) if features else ()
    config = ExportConfig(
        format=format_,
        features=names,
        split=split,
        max_samples=max_samples,
        max_bytes=max(int(max_mb * 2**20), 1),
    )
    summary = export_dataset(dataset, out, config)
    if as_json:
        render.emit_json("export", {**render.fields(summary), "samples": summary.samples})
    else:
        click.echo(f"export: {summary.describe()}")
