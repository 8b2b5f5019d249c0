"""Plain-text rendering for the CLI: aligned tables and count lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def counts(values: Mapping[str, int]) -> str:
    """``{"ok": 3, "invalid_url": 1}`` -> ``"ok 3 · invalid_url 1"``."""
    return " · ".join(f"{k} {v:,}" for k, v in values.items()) or "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a left-aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) and rows for i in range(len(headers))
    ]

    def line(row: list[str]) -> str:
        parts = [
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
