"""Turn URL lists into ``DATASET/manifest.parquet`` (``svm manifest urls``).

Every input row becomes a sample or merges into one: rows with the same sample id (the same
video under another URL form, or the same clip) merge, first value wins, gaps are filled from
later rows. URLs that cannot be downloaded stay as rows with status ``invalid_url``; rows the
preset's pre-filters drop stay as ``filtered:<reason>``. Malformed input stops the build before
anything is written, with the file, line and fix.

Rows stream from the files and merge as they arrive, so memory grows with the number of distinct
samples (about 1 KB each, at most ``max_samples``), never with the number of input rows; each
file is read within :class:`~svm_toolkit.manifest.readers.ReadLimits`. A manifest read back is
checked row by row before use (:func:`read_manifest`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from svm_toolkit.config import to_dict
from svm_toolkit.errors import InputError
from svm_toolkit.ids import MAX_URL_LENGTH, InvalidUrl, canonicalize, clip_id
from svm_toolkit.io import checked
from svm_toolkit.io.digest import file_sha256
from svm_toolkit.io.paths import DatasetLayout, id_problem
from svm_toolkit.io.shards import write_table_atomic
from svm_toolkit.manifest.check import check_manifest_rows
from svm_toolkit.manifest.config import URL_COLUMNS, ManifestConfig
from svm_toolkit.manifest.readers import InputFile, InputRow, is_text_type, open_input
from svm_toolkit.manifest.values import parse_count, parse_seconds, parse_split, parse_text
from svm_toolkit.progress import Progress
from svm_toolkit.schema import (
    COL,
    MANIFEST_SCHEMA,
    DamagedMetadataError,
    ManifestRecord,
    Source,
    Status,
    check_columns,
    filtered,
    read_provenance,
    records_to_table,
    with_provenance,
)

logger = logging.getLogger(__name__)

STAGE: Final = "manifest"

#: How each metadata column's raw value is parsed.
_PARSERS: Final[dict[str, Callable[[Any], Any]]] = {
    COL.start_s: parse_seconds,
    COL.end_s: parse_seconds,
    COL.likes: parse_count,
    COL.duration_s: parse_seconds,
    COL.theme: parse_text,
    COL.author: parse_text,
    COL.music_id: parse_text,
    COL.split: lambda v: parse_split(v).value,
}


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """What a manifest build did.

    Attributes:
        path: the manifest written (or left as it was).
        rows_read: input rows across all files.
        samples: rows in the manifest.
        duplicates_merged: input rows merged into an earlier row with the same sample id.
        by_status: samples per status.
        by_source: samples per id source.
        unchanged: the manifest already held exactly these rows; nothing was written.
        seconds: wall time, seconds.
    """

    path: Path
    rows_read: int
    samples: int
    duplicates_merged: int
    by_status: Mapping[str, int] = field(default_factory=dict)
    by_source: Mapping[str, int] = field(default_factory=dict)
    unchanged: bool = False
    seconds: float = 0.0

    def describe(self) -> str:
        """One line: ``63 rows -> 62 samples (1 duplicate merged): 58 ok, 1 invalid_url``."""
        n = self.duplicates_merged
        merged = f"{n:,} duplicate{'' if n == 1 else 's'} merged"
        statuses = ", ".join(f"{n:,} {s}" for s, n in self.by_status.items())
        return f"{self.rows_read:,} rows -> {self.samples:,} samples ({merged}): {statuses}"


@dataclass(frozen=True, slots=True)
class _Columns:
    """Which input column fills what, for one input file."""

    url: str
    id: str | None
    metadata: Mapping[str, str]  # manifest column -> input column
    extra: tuple[str, ...]


def build_manifest(
    inputs: Sequence[Path], dataset: Path, config: ManifestConfig, *, overwrite: bool = False
) -> ManifestSummary:
    """Read URL lists and write the dataset's manifest atomically.

    Args:
        inputs: URL list files (see :mod:`svm_toolkit.manifest.readers` for formats).
        dataset: the dataset root (created if missing).
        config: columns, presets and pre-filters.
        overwrite: replace an existing manifest even when samples would be dropped.

    Raises:
        InputError: no inputs, a missing or malformed file, an unknown column, a URL column
            that is not text, a bad value or id (the message names file and line), a line or
            file over the read limits, more than ``config.max_samples`` samples, or an
            existing, different manifest.
    """
    started = time.perf_counter()
    if not inputs:
        raise InputError(
            "no URL lists given; pass one or more files (txt, csv, tsv, jsonl, parquet)"
        )
    files = [open_input(Path(p), config.limits) for p in inputs]
    merged: dict[str, ManifestRecord] = {}
    rows_read = 0
    described = []
    with Progress("manifest", unit="row") as bar:
        for opened in files:
            columns = _resolve_columns(opened, config)
            rows_before = rows_read
            previous: dict[str, Any] | None = None
            for row in opened.rows():
                rows_read += 1
                bar.update()
                if row.values == previous:  # the row again: merging it twice changes nothing
                    continue
                previous = row.values
                record = _apply_filters(_to_record(row, columns, config), config)
                earlier = merged.get(record.sample_id)
                if earlier is None:
                    if len(merged) >= config.max_samples:
                        raise InputError(
                            f"{row.ref}: more than {config.max_samples:,} distinct samples; "
                            "split the lists into several datasets or raise --max-samples "
                            "(memory grows by about 1 KB per sample)"
                        )
                    merged[record.sample_id] = record
                else:
                    merged[record.sample_id] = _merge(earlier, record)
            if rows_read == rows_before:
                raise InputError(f"{opened.path}: no rows; the file holds no URLs")
            described.append(_describe(opened.path, rows_read - rows_before))
    records = list(merged.values())
    layout = DatasetLayout(Path(dataset))
    schema = with_provenance(MANIFEST_SCHEMA, STAGE, to_dict(config), inputs=described)
    table = records_to_table(records, schema)
    table = table.replace_schema_metadata(schema.metadata)
    unchanged = write_manifest(table, layout.root, overwrite=overwrite)
    summary = ManifestSummary(
        path=layout.manifest,
        rows_read=rows_read,
        samples=len(records),
        duplicates_merged=rows_read - len(records),
        by_status=dict(Counter(r.status for r in records).most_common()),
        by_source=dict(Counter(r.source for r in records).most_common()),
        unchanged=unchanged,
        seconds=time.perf_counter() - started,
    )
    logger.info("manifest: %s", summary.describe())
    return summary


def write_manifest(table: pa.Table, dataset: Path, *, overwrite: bool) -> bool:
    """Write ``DATASET/manifest.parquet`` atomically, unless it already holds these rows.

    Returns:
        True when the manifest already held exactly these rows (nothing was written).

    Raises:
        InputError: a manifest with other rows exists and ``overwrite`` is False.
    """
    path = DatasetLayout(Path(dataset)).manifest
    unchanged = _check_existing(path, table, overwrite=overwrite)
    if not unchanged:
        write_table_atomic(table, path)
    return unchanged


def read_manifest(dataset: Path) -> pa.Table:
    """Read ``DATASET/manifest.parquet``, checking its schema version, columns and every row.

    Rows are checked before any caller sees them (see
    :func:`svm_toolkit.manifest.check.check_manifest_rows`): a manifest is untrusted input.

    Raises:
        InputError: there is no manifest yet, it is not a readable Parquet file (truncated,
            damaged), its provenance metadata is damaged, or a row holds an unsafe or duplicate
            id, an unknown status or source, a bad URL or clip bound (the message names the
            file, the row and the fix).
        SchemaMismatchError: the file was written by an incompatible version.
    """
    path = DatasetLayout(Path(dataset)).manifest
    if not path.exists():
        raise InputError(
            f"{path}: no manifest; build one with 'svm manifest urls LIST... -o {dataset}'"
        )
    try:
        schema = pq.read_schema(path)
        _read_provenance(schema, path)
        check_columns(schema, MANIFEST_SCHEMA, where=str(path))
        table = pq.read_table(path)
    except checked.READ_ERRORS as exc:
        raise checked.unreadable(path, exc) from None
    check_manifest_rows(table, path)
    return table


def _read_provenance(schema: pa.Schema, path: Path) -> None:
    """Check the manifest's provenance: damaged metadata is an input error (exit 2).

    Raises:
        InputError: the metadata is not a JSON object (damaged or crafted).
        SchemaMismatchError: no metadata, or another schema version.
    """
    try:
        read_provenance(schema, where=str(path))
    except DamagedMetadataError:
        raise InputError(
            f"{path}: its svm_toolkit metadata is damaged (not a JSON object), so the file was "
            f"edited or is not svm_toolkit's. {checked.repair_hint(path)}"
        ) from None


# -- rows ---------------------------------------------------------------------------------------


def _resolve_columns(opened: InputFile, config: ManifestConfig) -> _Columns:
    available = opened.columns
    name = opened.path.name
    if not available:  # an empty file: not even a header
        raise InputError(f"{opened.path}: no rows; the file holds no URLs")

    def need(column: str, flag: str) -> str:
        if column not in available:
            raise InputError(
                f"{name}: no column {column!r} ({flag}); its columns are: {', '.join(available)}"
            )
        return column

    if config.url_column:
        url = need(config.url_column, "--url-column")
    else:
        found = next((c for c in URL_COLUMNS if c in available), None)
        if found is None:
            raise InputError(
                f"{name}: no URL column found (looked for {', '.join(URL_COLUMNS)}); "
                f"name it with --url-column (columns: {', '.join(available)})"
            )
        url = found
    kind = opened.types.get(url)
    if kind is not None and not is_text_type(kind):
        raise InputError(
            f"{opened.path}: URL column {url!r} has type {kind}, not text; write the URLs as a "
            "string column (pyarrow: table.set_column(i, name, column.cast(pa.string()))) or "
            "name the column that holds them with --url-column"
        )
    id_column = need(config.id_column, "--id-column") if config.id_column else None
    metadata: dict[str, str] = {}
    for target, names in config.aliases.items():
        hit = next((n for n in names if n in available and n not in (url, id_column)), None)
        if hit:
            metadata[target] = hit
    used = {url, id_column, *metadata.values()}
    extra = tuple(c for c in available if c not in used and c not in MANIFEST_SCHEMA.names)
    return _Columns(url=url, id=id_column, metadata=metadata, extra=extra)


def _to_record(row: InputRow, columns: _Columns, config: ManifestConfig) -> ManifestRecord:
    values = row.values
    raw_url = values.get(columns.url)
    if raw_url is not None and not isinstance(raw_url, str):
        shown = repr(raw_url)
        raise InputError(
            f"{row.ref}: column {columns.url!r} holds {type(raw_url).__name__} "
            f"{shown[:80]}{'...' if len(shown) > 80 else ''}, not a URL; write the URL as a "
            "string or name the column that holds them with --url-column"
        )
    text = raw_url or ""
    meta: dict[str, Any] = {}
    for target, column in columns.metadata.items():
        raw = values.get(column)
        if raw is None or raw == "":
            continue
        try:
            meta[target] = _PARSERS[target](raw)
        except ValueError as exc:
            raise InputError(f"{row.ref}: column {column!r}: {exc}") from None
    start, end = meta.get(COL.start_s), meta.get(COL.end_s)
    if start is not None and end is not None and end <= start:
        raise InputError(f"{row.ref}: clip end ({end} s) must be after its start ({start} s)")
    extra = {c: values.get(c) for c in columns.extra}
    user_id = _user_id(row, columns.id) if columns.id else None
    try:
        canonical = canonicalize(text)
    except InvalidUrl as exc:
        base = user_id or "u" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]
        return ManifestRecord(
            sample_id=clip_id(base, start, end),
            video_id=None,
            url=text[:MAX_URL_LENGTH],
            source=Source.URL.value,
            status=Status.INVALID_URL.value,
            detail=f"{exc} ({row.ref})",
            input_ref=row.ref,
            extra=extra,
            **meta,
        )
    if canonical.author and COL.author not in meta:
        meta[COL.author] = canonical.author
    return ManifestRecord(
        sample_id=clip_id(user_id or canonical.video_id, start, end),
        video_id=canonical.video_id,
        url=canonical.url,
        source=canonical.source.value,
        status=Status.OK.value,
        input_ref=row.ref,
        extra=extra,
        **meta,
    )


def _user_id(row: InputRow, column: str) -> str:
    raw = row.values.get(column)
    value = "" if raw is None else parse_text(raw)
    problem = id_problem(value)
    if problem:
        raise InputError(
            f"{row.ref}: id {value[:80]!r} in column {column!r} cannot be used: {problem}; "
            "fix the id or drop --id-column to derive ids from the URLs"
        )
    return value


def _apply_filters(record: ManifestRecord, config: ManifestConfig) -> ManifestRecord:
    if record.status != Status.OK:
        return record
    if (
        config.min_likes is not None
        and record.likes is not None
        and record.likes < config.min_likes
    ):
        return replace(
            record,
            status=filtered("min_likes"),
            detail=f"{record.likes} likes < {config.min_likes}",
        )
    limit = config.max_duration_s
    if limit is not None and record.duration_s is not None and record.duration_s > limit:
        return replace(
            record, status=filtered("max_duration"), detail=f"{record.duration_s:g} s > {limit:g} s"
        )
    return record


def _merge(first: ManifestRecord, later: ManifestRecord) -> ManifestRecord:
    """Keep ``first``; fill its empty fields and extra columns from ``later``."""
    fills = {
        name: getattr(later, name)
        for name in (COL.likes, COL.theme, COL.author, COL.duration_s, COL.music_id, COL.split)
        if getattr(first, name) is None and getattr(later, name) is not None
    }
    extra = dict(first.extra)
    for key, value in later.extra.items():
        if extra.get(key) is None:
            extra[key] = value
    return replace(first, extra=extra, **fills) if fills or extra != first.extra else first


def _describe(path: Path, rows: int) -> dict[str, Any]:
    return {"file": path.name, "rows": rows, "sha256": file_sha256(path)}


def _check_existing(path: Path, table: pa.Table, *, overwrite: bool) -> bool:
    """Return True when ``path`` already holds ``table``'s rows.

    New samples and updated rows (a pseudo id resolved since, a new URL list added) replace the
    manifest freely; a manifest that would lose samples needs ``overwrite``.
    """
    if not path.exists():
        return False
    try:
        old = pq.read_table(path)
        old.column(COL.sample_id)
    except (pa.ArrowException, OSError, KeyError) as exc:
        if overwrite:
            logger.warning("replacing %s, which cannot be read (%s)", path, exc)
            return False
        raise InputError(
            f"{path} exists but is not a readable manifest ({checked.first_line(exc)}); pass "
            "--overwrite to replace it, or restore it from a copy"
        ) from None
    if old.schema.remove_metadata().equals(table.schema.remove_metadata()) and old.equals(
        table.replace_schema_metadata(old.schema.metadata)
    ):
        return True
    old_ids = old.column(COL.sample_id).to_pylist()
    new_ids = set(table.column(COL.sample_id).to_pylist())
    gone = [i for i in old_ids if i not in new_ids]
    if gone and not overwrite:
        shown = ", ".join(repr(str(i)[:80]) for i in gone[:3]) + (", ..." if len(gone) > 3 else "")
        raise InputError(
            f"{path} already holds {len(gone)} samples these inputs do not ({shown}); pass "
            "--overwrite to drop them (ledgers, media and features of the samples that stay are "
            "kept)"
        )
    logger.info(
        "updating %s: %d new samples, %d dropped", path, len(new_ids - set(old_ids)), len(gone)
    )
    return False
