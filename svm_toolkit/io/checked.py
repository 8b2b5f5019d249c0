"""Checked Parquet reads: every file the stages read goes through here (DESIGN §3, §9).

Two things a file written by someone else (or cut short by a crash) must never do:

* **crash a run with a traceback.** A truncated or damaged Parquet file is an
  :class:`~svm_toolkit.errors.InputError` (exit 2) naming the file and the repair: which files to
  delete and which ``svm`` command redoes exactly what they held (:func:`repair_hint`).
* **steer a file operation outside the dataset root.** Sample ids become file names, and ledgers
  hold paths the next stage opens, so both are checked as the rows are read, before any stage
  acts on them: ids must be safe names (:func:`svm_toolkit.io.paths.id_problem`) and media paths
  must stay under ``media/`` (cropped copies under ``preprocess/cropped/``); the resolve
  ledger's YouTube ids, which become watch URLs, must be 11-character ids. The checks are
  vectorised (Arrow's RE2 over the whole column), so a million-row ledger costs milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from svm_toolkit.errors import InputError
from svm_toolkit.io.layout import stats_path
from svm_toolkit.io.paths import SAFE_ID_RE2, id_problem
from svm_toolkit.schema import COL

#: What pyarrow raises on a truncated, damaged or unreadable file (``ArrowInvalid``: bad footer
#: or pages; ``OSError``: thrift, decompression or the file system).
READ_ERRORS: Final = (pa.ArrowException, OSError)

_PART: Final = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
_YOUTUBE_RE2: Final = r"^[A-Za-z0-9_-]{11}$"
#: Path columns of the ledgers: each value is relative to the dataset root, under its folder.
PATH_COLUMNS: Final = {COL.media_path: "media", "cropped_path": "preprocess/cropped"}
#: A committed shard's file name, ``<prefix>-<number>.parquet`` (``part-00003.parquet``,
#: ``extract_clip-00000.parquet``): the prefix is a ledger's stage.
LEDGER_SHARD: Final = re.compile(r"(?P<stage>[A-Za-z0-9_.-]+?)-\d{5,}\.parquet")


def read_table(
    path: Path,
    *,
    columns: Sequence[str] | None = None,
    id_column: str | None = COL.sample_id,
) -> pa.Table:
    """Read one Parquet file; check its ids and paths.

    Args:
        path: the file.
        columns: columns to read (all when ``None``).
        id_column: the sample-id column, checked when read (``None``: no id column).

    Raises:
        InputError: the file is truncated, damaged or unreadable, holds an unsafe id or a path
            outside its folder (the message names the file, the row and the repair).
    """
    try:
        table = pq.read_table(path, columns=None if columns is None else list(columns))
    except READ_ERRORS as exc:
        raise unreadable(path, exc) from None
    check_rows(table, path, id_column=id_column)
    return table


def read_schema(path: Path) -> pa.Schema:
    """Read a Parquet file's schema (with its provenance metadata).

    Raises:
        InputError: the file is truncated, damaged or unreadable.
    """
    try:
        return pq.read_schema(path)
    except READ_ERRORS as exc:
        raise unreadable(path, exc) from None


def iter_batches(path: Path, *, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """Stream a Parquet file's record batches (bounded memory for large shards).

    Raises:
        InputError: the file is truncated, damaged or unreadable (also part-way through).
    """
    try:
        yield from pq.ParquetFile(path).iter_batches(columns=list(columns))
    except READ_ERRORS as exc:
        raise unreadable(path, exc) from None


def check_rows(table: pa.Table, path: Path, *, id_column: str | None = COL.sample_id) -> None:
    """Check a table read from ``path``: safe ids, and paths that stay in their folders.

    Args:
        table: the rows.
        path: the file they came from (for the message).
        id_column: the sample-id column (``None`` or absent: not checked).

    Raises:
        InputError: the first bad row, by its 0-based index in the file.
    """
    if id_column is not None and id_column in table.column_names:
        check_ids(table.column(id_column), path, column=id_column)
    for column, folder in PATH_COLUMNS.items():
        if column in table.column_names:
            _check_paths(table, path, column, folder)
    if COL.youtube_id in table.column_names:  # the resolve ledger's answers become watch URLs
        _check_youtube_ids(table.column(COL.youtube_id), path)


def check_ids(ids: pa.ChunkedArray | pa.Array, path: Path, *, column: str = COL.sample_id) -> None:
    """Refuse a column of ids unless every id is a safe file-name component.

    Raises:
        InputError: a null or unsafe id, or a column that is not text.
    """
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        raise InputError(
            f"{path}: column '{column}' holds {ids.type}, not text; {repair_hint(path)}"
        )
    ok = pc.and_kleene(
        pc.match_substring_regex(ids, SAFE_ID_RE2), pc.invert(pc.match_substring(ids, ".."))
    )
    bad = _first_false(ok)
    if bad is None:
        return
    value = ids[bad].as_py()
    shown = "null" if value is None else repr(value[:80])
    problem = "it is missing" if value is None else id_problem(value)
    raise InputError(
        f"{path}: row {bad}: sample id {shown} cannot be used: {problem}; svm "
        f"never writes such an id, so the file was edited or is not this dataset's. "
        f"{repair_hint(path)}"
    )


def _check_paths(table: pa.Table, path: Path, column: str, folder: str) -> None:
    values = table.column(column)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise InputError(
            f"{path}: column '{column}' holds {values.type}, not text; {repair_hint(path)}"
        )
    pattern = rf"^{re.escape(folder)}/({_PART}/)*{_PART}$"
    ok = pc.and_kleene(
        pc.match_substring_regex(values, pattern), pc.invert(pc.match_substring(values, ".."))
    )
    bad = _first_false(pc.or_kleene(pc.is_null(values), ok))
    if bad is None:
        return
    value = values[bad].as_py()
    raise InputError(
        f"{path}: row {bad}: {column} {str(value)[:120]!r} is not a file under {folder}/ of "
        f"the dataset (relative, no '..', no hidden parts); svm never writes such a path, so "
        f"the file was edited or is not this dataset's. {repair_hint(path)}"
    )


def _check_youtube_ids(values: pa.ChunkedArray, path: Path) -> None:
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise InputError(
            f"{path}: column '{COL.youtube_id}' holds {values.type}, not text; {repair_hint(path)}"
        )
    ok = pc.or_kleene(pc.is_null(values), pc.match_substring_regex(values, _YOUTUBE_RE2))
    bad = _first_false(ok)
    if bad is None:
        return
    raise InputError(
        f"{path}: row {bad}: {COL.youtube_id} {str(values[bad].as_py())[:80]!r} is not an "
        f"11-character YouTube id; svm never writes such a value, so the file was edited or is "
        f"not this dataset's. {repair_hint(path)}"
    )


def _first_false(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Index of the first false or null value, or ``None`` when all are true."""
    index = pc.index(pc.fill_null(mask, False), False).as_py()
    return None if index is None or index < 0 else int(index)


def unreadable(path: Path, exc: BaseException, *, where: str = "") -> InputError:
    """The error for a file pyarrow cannot read: what it said, and the repair.

    Args:
        path: the file.
        exc: what pyarrow raised.
        where: where in the file reading stopped, e.g. ``"after row 12"`` (``""``: unknown).

    A shard that is no longer there was deleted after it was listed (a compaction or a re-run
    replaced it): the error says to run the command again, not to delete anything.
    """
    at = f" {where}" if where else ""
    gone = isinstance(exc, FileNotFoundError) or not path.exists()
    if gone and LEDGER_SHARD.fullmatch(path.name):
        # a shard listed, then deleted: a compaction or a re-run replaced it; the data is fine
        return InputError(
            f"{path}: no longer there (deleted after it was listed); the shards of "
            f"{path.parent} changed meanwhile (compacted by `svm compact` or at the end of a "
            "stage, or re-extracted): run the same command again"
        )
    return InputError(
        f"{path}: not a readable Parquet file{at} ({first_line(exc)}); it is truncated or "
        f"damaged (a full disk, a crash or a copy cut short). {repair_hint(path)}"
    )


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters (its type if empty)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def repair_hint(path: Path) -> str:
    """How to repair a bad file of a dataset: what to delete and which command redoes it.

    A shard is deleted together with its stats file (``.stats/<stem>.json`` in the shard's folder,
    or ``<stem>_stats.json`` beside it in a dataset of the old layout); the stage that wrote it then
    redoes exactly the samples the shard held (a sample with no ledger row, or an ``ok`` row
    without its data rows, is redone; data rows already committed are not written again).
    """
    name, parent = path.name, path.parent
    drop = f"Delete {path} and its stats file {stats_path(path)}, then run"
    if name == "splits.parquet":
        return (
            f"Delete {path} and run `svm splits make {parent}` again (the same inputs and "
            "seed give the same splits)."
        )
    if name == "manifest.parquet":
        return (
            f"To repair it, restore it from a copy, or rebuild it with 'svm manifest urls "
            f"LIST... -o {parent} --overwrite' (or 'svm manifest yt8m ... --overwrite')."
        )
    shard = LEDGER_SHARD.fullmatch(name)
    if shard is None:
        return "Write the file again (or pass a complete Parquet file)."
    prefix = shard.group("stage")
    if parent.name == "ledger":
        root = parent.parent
        if prefix.startswith("extract_"):
            extractor = prefix.removeprefix("extract_")
            return f"{drop} `svm extract {root} --extractor {extractor}` again."
        if prefix == "resolve":
            again = "again (those ids are looked up again)"
            return f"{drop} `svm manifest yt8m ... -o {root} --resolve` {again}."
        if prefix in ("download", "preprocess"):
            again = "with the options it was run with" if prefix == "preprocess" else ""
            return f"{drop} `svm {prefix} {root}` again {again}".rstrip() + "."
        return f"{drop} the stage that wrote it again."
    root = parent.parent.parent
    if parent.parent.name == "features":
        if parent.name.startswith("yt8m_"):
            return f"{drop} `svm manifest yt8m ... -o {root} --features` again."
        return f"{drop} `svm extract {root} --extractor {parent.name}` again."
    if parent.parent.name == "preprocess":
        recipe = parent.name.removeprefix("mel_") if parent.name.startswith("mel_") else None
        mel = f" --mel {recipe}" if recipe else ""
        return f"{drop} `svm preprocess {root}{mel}` again (with the options it was run with)."
    return f"{drop} the stage that wrote it again."
