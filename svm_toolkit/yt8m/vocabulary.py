"""YouTube-8M ``vocabulary.csv``: label names <-> indices, and named label sets.

Indices differ between vocabulary versions ("Music video" is 9 in 2017 and 14 in 2018), so label
sets are defined by *names* and resolved through the vocabulary file the user has; no index is
a constant in code. Both layouts are read: 2018
(``Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,WikiDescription``)
and 2017 (``label_id,label_name``).
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from svm_toolkit.errors import InputError

_INDEX_COLUMNS: Final = ("Index", "label_id", "index")
_NAME_COLUMNS: Final = ("Name", "label_name", "name")

#: Named label sets (names of YT8M's ``vocabulary.csv``, research.google.com/youtube8m), resolved
#: by name against the user's vocabulary.
LABEL_PRESETS: Final[dict[str, tuple[str, ...]]] = {
    "music_video": ("Music video",),
    "music": (
        "Music video",
        "Concert",
        "Musician",
        "Guitar",
        "String instrument",
        "Musical ensemble",
        "Piano",
        "Drummer",
        "Choir",
        "Orchestra",
        "Drum kit",
        "Drum",
        "Acoustic guitar",
        "Electric guitar",
        "Musical keyboard",
        "Disc jockey",
        "Violin",
        "Marching band",
        "Music festival",
    ),
}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The labels of one YT8M vocabulary file.

    Attributes:
        path: the file.
        names: vocabulary index -> label name.
    """

    path: Path
    names: dict[int, str]

    def name(self, index: int) -> str:
        """Return a label's name (``#<index>`` for an index the file does not list)."""
        return self.names.get(index, f"#{index}")

    def lookup(self, label: str) -> int | None:
        """Return the index of a label given by name (any case) or by index, else ``None``."""
        text = label.strip()
        if text.isdigit():
            index = int(text)
            return index if index in self.names else None
        folded = text.casefold()
        return next((i for i, n in self.names.items() if n.casefold() == folded), None)

    def resolve(self, labels: Sequence[str]) -> tuple[int, ...]:
        """Resolve label names or indices to indices.

        Raises:
            InputError: a label is not in the vocabulary (the message suggests close names).
        """
        out = []
        for label in labels:
            index = self.lookup(label)
            if index is None:
                raise InputError(f"{self.path}: no label {label.strip()!r}{self._suggest(label)}")
            out.append(index)
        return tuple(dict.fromkeys(out))

    def _suggest(self, label: str) -> str:
        close = difflib.get_close_matches(label.strip(), list(self.names.values()), n=3, cutoff=0.6)
        return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def load_vocabulary(path: Path) -> Vocabulary:
    """Read a 2018- or 2017-layout vocabulary file.

    Raises:
        InputError: missing file, unknown columns, a bad or repeated index (with its line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such vocabulary file (YT8M's vocabulary.csv)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the vocabulary ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    index_col = next((c for c in _INDEX_COLUMNS if c in columns), None)
    name_col = next((c for c in _NAME_COLUMNS if c in columns), None)
    if index_col is None or name_col is None:
        raise InputError(
            f"{path}: not a YT8M vocabulary: expected columns Index,...,Name (2018) or "
            f"label_id,label_name (2017), found {', '.join(columns) or 'none'}"
        )
    names: dict[int, str] = {}
    for row in reader:
        line = reader.line_num
        raw = (row.get(index_col) or "").strip()
        if not raw.isdigit():
            raise InputError(f"{path}:{line}: {index_col} {raw!r} is not a label index")
        index = int(raw)
        if index in names:
            raise InputError(f"{path}:{line}: label index {index} appears twice")
        names[index] = (row.get(name_col) or "").strip()
    if not names:
        raise InputError(f"{path}: the vocabulary has no labels")
    return Vocabulary(path, names)
