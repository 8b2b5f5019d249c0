"""The names in a shard folder: what outside readers see, and what they skip.

A folder of shards is read by our own code and, as it is, by pandas, pyarrow, polars, DuckDB and
Hugging Face ``datasets``. Those readers take every file of a folder (or of a ``*.parquet``
glob) except names that start with ``.`` or ``_``, so the layout keeps everything that is not a
committed shard under such names:

* ``<prefix>-NNNNN.parquet``: a committed shard, the only files a reader sees;
* ``.stats/<prefix>-NNNNN.json``: the shard's stats, its commit record (written before the shard
  is renamed into place, so a visible shard is a committed one);
* ``.<name>.tmp``: a file being written (hidden until renamed into place);
* ``<prefix>-NNNNN_stats.json`` beside the shard: the stats of the old layout, still read, and
  moved to ``.stats/`` by the next writer that opens the folder.

Kept apart from :mod:`svm_toolkit.io.shards` so that :mod:`svm_toolkit.io.checked` can name a
shard's stats file in its repair hints without importing the writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

STATS_DIR: Final = ".stats"
LEGACY_STATS_SUFFIX: Final = "_stats.json"
TMP_SUFFIX: Final = ".tmp"


def new_stats_path(shard: Path) -> Path:
    """Return where a shard's stats go now: ``<folder>/.stats/<stem>.json``."""
    return shard.parent / STATS_DIR / f"{shard.stem}.json"


def legacy_stats_path(shard: Path) -> Path:
    """Return where the old layout kept a shard's stats: ``<stem>_stats.json`` beside it."""
    return shard.with_name(shard.stem + LEGACY_STATS_SUFFIX)


def stats_path(shard: Path) -> Path:
    """Return the stats file (commit record) of a shard.

    Returns:
        ``<folder>/.stats/<stem>.json``, or the old layout's ``<stem>_stats.json`` beside the
        shard when only that one exists (a dataset written before the layout changed).
    """
    new = new_stats_path(shard)
    if not new.exists():
        old = legacy_stats_path(shard)
        if old.exists():
            return old
    return new


def has_stats(shard: Path) -> bool:
    """Whether a shard has a stats file in either layout (i.e. it was committed).

    The old name is looked at first: a writer moving it to the new one (one atomic rename)
    meanwhile cannot make the shard look uncommitted.
    """
    return legacy_stats_path(shard).exists() or new_stats_path(shard).exists()


def hidden_tmp(path: Path) -> Path:
    """Return the temp name a file is written under before its rename: ``.<name>.tmp``."""
    return path.with_name(f".{path.name}{TMP_SUFFIX}")
