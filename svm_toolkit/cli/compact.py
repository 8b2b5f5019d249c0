"""``svm compact``: one row per sample in every shard folder of a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from svm_toolkit.card import refresh_card
from svm_toolkit.cli import render
from svm_toolkit.errors import BusyError
from svm_toolkit.io.compact import compact_dataset, shard_sets
from svm_toolkit.progress import Progress


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@render.json_option("compact")
def compact(dataset: Path, as_json: bool) -> None:
    """Rewrite DATASET's shards so that every sample appears once (its newest row).

    \b
    A retried sample gets a new row in a newer shard; svm reads only the newest, but
    pandas, pyarrow.dataset, polars, DuckDB and Hugging Face datasets count every row.
    Every stage compacts the folders it wrote at the end of its run; this command does
    it for every shard folder of a dataset (ledger/, preprocess/, its fingerprints and
    Mel folders, features/*, ...) and finishes a compaction a kill interrupted. Only
    shards holding superseded rows are rewritten; nothing is written when no sample
    appears twice. Safe to stop at any moment and to run again.

    \b
    Example:
      svm compact data/svm10k
    """
    sets = shard_sets(dataset)
    bar = Progress("compact", total=len(sets), unit="folder")

    def advance(_folder: Path, _prefix: str) -> None:
        bar.update()

    try:
        changed, busy = compact_dataset(dataset, on_set=advance)
    finally:
        bar.close()
    if changed:
        refresh_card(dataset)  # the dataset card (README.md) counts rows as readers see them
    if as_json:  # emitted before a busy error (exit code unchanged), which goes to stderr
        folders = [render.fields(r) for r in changed]
        render.emit_json(
            "compact",
            {"dataset": dataset, "shard_sets": len(sets), "changed": folders, "busy": busy},
        )
    else:
        for result in changed:
            click.echo(result.describe(dataset))
    if busy:
        raise BusyError(
            f"{dataset}: another svm process is writing {', '.join(busy)}; those were not "
            "compacted (the stage compacts them when it ends, or run svm compact again then)"
        )
    if not changed and not as_json:
        click.echo(f"nothing to compact: {len(sets):,} shard sets hold one row per sample")
