"""Check every row of a manifest read from disk before any stage uses it.

A manifest is untrusted input like any other file (DESIGN §9): it may have been edited, copied
from someone else or damaged. Its sample ids become file names, its URLs are fetched and its
clip bounds cut media, so each of those columns is checked on read, over whole columns at once
(pyarrow compute), before any caller can use a row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from svm_toolkit.errors import InputError
from svm_toolkit.ids import MAX_URL_LENGTH
from svm_toolkit.io.paths import SAFE_ID_RE2, id_problem
from svm_toolkit.schema import COL, Source, Status

#: A URL a manifest row with status ``ok`` may hold: http(s), no whitespace or control characters.
OK_URL_PATTERN: Final = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f]+$"
_FILTERED_PATTERN: Final = rf"^{Status.FILTERED.value}:[a-z0-9_]{{1,64}}$"
_STATUSES: Final = pa.array(sorted(s.value for s in Status if s is not Status.FILTERED))
_SOURCES: Final = pa.array(sorted(s.value for s in Source))
_SHOWN: Final = 80  # characters of a bad value quoted in a message

#: Explains why a refused value cannot be used (``None``: no more specific reason).
_Why = Callable[[Any], "str | None"]


def check_manifest_rows(table: pa.Table, path: Path) -> None:
    """Refuse a manifest with an unsafe id, a duplicate id, or an unknown status or source.

    Checks, for every row: ``sample_id`` is a safe file-name component (see
    :func:`svm_toolkit.io.paths.id_problem`) and unique; ``status`` is a known status;
    ``source`` is a known source; a row with status ``ok`` and a URL has an http(s) URL of at
    most :data:`svm_toolkit.ids.MAX_URL_LENGTH` characters without whitespace; clip bounds are
    finite seconds >= 0 with the end after the start.

    Args:
        table: the manifest's rows, with :data:`svm_toolkit.schema.MANIFEST_SCHEMA`'s columns.
        path: the file they were read from (named in the error).

    Raises:
        InputError: the first bad row of the first failing check, naming the file, the row
            (0-based, as pyarrow and pandas count them), the value and the fix.
    """
    ids = table.column(COL.sample_id)
    safe = pc.and_(
        pc.match_substring_regex(ids, SAFE_ID_RE2),
        pc.invert(pc.match_substring(ids, "..")),
    )
    _refuse(path, safe, ids, "sample id", lambda v: id_problem(v) if isinstance(v, str) else None)
    if len(pc.unique(ids)) != len(ids):
        _refuse_duplicate(path, ids)

    statuses = table.column(COL.status)
    known = pc.or_(
        pc.is_in(statuses, value_set=_STATUSES),
        pc.match_substring_regex(statuses, _FILTERED_PATTERN),
    )
    _refuse(path, known, statuses, "status", lambda _: "not a status this toolkit writes")
    sources = table.column(COL.source)
    _refuse(
        path,
        pc.is_in(sources, value_set=_SOURCES),
        sources,
        "source",
        lambda _: f"not one of {', '.join(s.value for s in Source)}",
    )

    urls = table.column(COL.url)
    fetched = pc.and_(pc.equal(statuses, Status.OK.value), pc.is_valid(urls))
    good_url = pc.and_(
        pc.match_substring_regex(urls, OK_URL_PATTERN),
        pc.less_equal(pc.utf8_length(urls), MAX_URL_LENGTH),
    )
    _refuse(
        path,
        pc.or_kleene(pc.invert(fetched), good_url),
        urls,
        "url",
        lambda _: (
            f"a row with status 'ok' needs an http(s) URL of at most {MAX_URL_LENGTH} "
            "characters without whitespace"
        ),
    )

    start, end = table.column(COL.start_s), table.column(COL.end_s)
    for name, column in ((COL.start_s, start), (COL.end_s, end)):
        bounded = pc.and_(pc.is_finite(column), pc.greater_equal(column, 0.0))
        _refuse(
            path,
            pc.or_kleene(pc.is_null(column), bounded),
            column,
            name,
            lambda _: "not a time in seconds >= 0",
        )
    ordered = pc.or_kleene(pc.or_kleene(pc.is_null(start), pc.is_null(end)), pc.greater(end, start))
    _refuse(path, ordered, end, COL.end_s, lambda _: f"the clip must end after its {COL.start_s}")


def _refuse(
    path: Path,
    ok: pa.ChunkedArray | pa.Array,
    values: pa.ChunkedArray,
    what: str,
    why: _Why,
) -> None:
    """Raise on the first row where ``ok`` is false or null (nulls count as bad)."""
    passed = pc.fill_null(ok, False)
    if pc.all(passed).as_py() is not False:
        return
    bad = pc.invert(passed)
    count = pc.sum(bad).as_py()
    row = pc.index(bad, True).as_py()
    value = values[row].as_py()
    shown = (
        repr(value[:_SHOWN]) + ("..." if len(value) > _SHOWN else "")
        if isinstance(value, str)
        else repr(value)
    )
    problem = (why(value) if value is not None else None) or "it is missing"
    more = f" ({count:,} bad rows in all)" if count > 1 else ""
    raise InputError(
        f"{path}: row {row}: {what} {shown} cannot be used: {problem}{more}; "
        f"{_fix(path)} or fix the row"
    )


def _refuse_duplicate(path: Path, ids: pa.ChunkedArray) -> None:
    counts = pc.value_counts(ids)
    repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
    first = repeated[0]["values"].as_py()
    rows = pc.indices_nonzero(pc.equal(ids, first)).to_pylist()
    shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    raise InputError(
        f"{path}: rows {shown}: sample id {first!r} appears {len(rows)} times "
        f"({len(repeated):,} ids repeat); every sample needs one row: {_fix(path)} or drop the "
        "repeated rows"
    )


def _fix(path: Path) -> str:
    return f"rebuild it with 'svm manifest urls LIST... -o {path.parent} --overwrite'"
