"""``svm card``: write or refresh the dataset card, ``DATASET/README.md``."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.card import write_card
from svm_toolkit.cli import render


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@render.json_option("card")
def card(dataset: Path, as_json: bool) -> None:
    """Write DATASET/README.md: Hugging Face configs and a datasheet.

    \b
    The YAML front matter lists one `configs:` entry per part of the dataset, so that
    datasets.load_dataset(DATASET, NAME) loads it: manifest (the default), splits,
    ledger_<stage>, each extractor's name, mel_<recipe>, fingerprints. Each config has
    one split, `full`, holding every row (join on sample_id with the `splits` config).
    The datasheet, between <!-- svm:begin --> and <!-- svm:end -->, gives sources, counts
    by status per stage, filters and thresholds, extractors with their weights' checksums,
    split sizes and the commands that rebuild the dataset. Your text outside the markers
    and your YAML keys other than `configs` are kept. Every stage command refreshes it too.

    \b
    Example:
      svm card data/svm10k
      python -c "import datasets; print(datasets.load_dataset('data/svm10k', 'vggish'))"
    """
    summary = write_card(dataset)
    if as_json:
        render.emit_json("card", render.fields(summary))
    else:
        click.echo(f"card: {summary.describe()}")
