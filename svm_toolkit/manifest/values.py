"""Parse the metadata values found in scraped URL lists (pure functions).

Each parser takes the raw value (text from csv/tsv, or a JSON/Parquet scalar) and raises
``ValueError`` with a short reason; the manifest builder adds the file and line.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from svm_toolkit.schema import SPLIT_ALIASES, Split

_CLOCK: Final = re.compile(r"(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)")
_COUNT: Final = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[kmb]?)", re.IGNORECASE)
_UNITS: Final = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def parse_seconds(value: Any) -> float:
    """Parse a time or duration: ``12.5``, ``"12.5"``, ``"1:05"``, ``"01:02:03.5"`` -> seconds.

    Example:
        >>> parse_seconds("1:05")
        65.0
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        if m := _CLOCK.fullmatch(text):
            seconds = int(m.group("h") or 0) * 3600 + int(m.group("m")) * 60 + float(m.group("s"))
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not a time (use seconds like 12.5 or h:mm:ss)"
                ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a time >= 0")
    return seconds


def parse_count(value: Any) -> int:
    """Parse a like/view count: ``12000``, ``"12,000"``, ``"12.3K"``, ``"1.2M"`` -> int.

    Example:
        >>> parse_count("12.3K")
        12300
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count")
    if isinstance(value, int):
        count = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a count")
        count = round(value)
    else:
        text = str(value).strip().replace(",", "").replace("_", "").replace(" ", "")
        m = _COUNT.fullmatch(text)
        if not m:
            raise ValueError(f"{value!r} is not a count (use digits, optionally with K/M/B)")
        count = round(float(m.group("num")) * _UNITS[m.group("unit").lower()])
    if count < 0:
        raise ValueError(f"{value!r} is negative")
    return count


def parse_split(value: Any) -> Split:
    """Parse a split name: ``train``, ``val``/``valid``/``validation``/``dev``, ``test``."""
    split = SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        raise ValueError(
            f"{value!r} is not a split (use one of {', '.join(s.value for s in Split)})"
        )
    return split


def parse_text(value: Any) -> str:
    """Return a metadata value as text (numbers from JSON become their decimal form)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
