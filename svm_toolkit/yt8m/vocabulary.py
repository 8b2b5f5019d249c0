"""YouTube-8M ``vocabulary.csv``: label names <-> indices, and named label sets.

Indices differ between vocabulary versions ("Music video" is 9 in 2017 and 14 in 2018), so label
sets are defined by Knowledge Graph id and *name* and resolved through the vocabulary file the
user has; no index is a constant in code. Both layouts are read: 2018
(``Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,WikiDescription``)
and 2017 (``label_id,label_name``). The version is told by the row count (4,716 labels: 2017;
3,862: 2018), else by the columns; presets use the names of that version ("Drum kit" and "Drum"
are both "Drums" in 2017), and a preset name the file lacks is reported.

Names repeat: the 2017 vocabulary has 80-odd names listed more than once ("Drums" is 39 and 44).
A name selects all of its indices, with a warning that says so; an index selects only itself.

The ``music`` preset includes the instrument and performer labels Pianist, Saxophone, Cello,
Flute, Trumpet, Accordion, Brass instrument, Organ (music) ("Organ" in 2017), Fiddle, Electronic
keyboard, Snare drum and Cymbal: they are of the same kind as the Guitar, Piano, Violin and Drum
labels it already had, and every one is in both the 2017 and 2018 vocabularies.
"""

from __future__ import annotations

import csv
import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from svm_toolkit.errors import InputError

logger = logging.getLogger(__name__)

#: Which YT8M release a vocabulary file is ("2017": 4,716 labels; "2018": 3,862 labels).
VocabularyVersion = Literal["2017", "2018"]

_INDEX_COLUMNS: Final = ("Index", "label_id", "index")
_NAME_COLUMNS: Final = ("Name", "label_name", "name")
_KG_COLUMN: Final = "KnowledgeGraphId"
#: Labels in each release's vocabulary (the row count identifies a full file in any layout).
_VERSION_ROWS: Final[dict[int, VocabularyVersion]] = {4716: "2017", 3862: "2018"}


@dataclass(frozen=True, slots=True)
class PresetLabel:
    """One label of a named label set, as each vocabulary version names it.

    Attributes:
        name: the label's name in the 2018 vocabulary (and in ``labels.csv``).
        kg_id: its Knowledge Graph id (``/m/...``); ``""`` when not verified. A vocabulary
            with a ``KnowledgeGraphId`` column is matched by this id first.
        name_2017: its name in the 2017 vocabulary when that differs (``""``: the same).
    """

    name: str
    kg_id: str = ""
    name_2017: str = ""

    def names(self, version: VocabularyVersion | None) -> tuple[str, ...]:
        """Return the names to look for in a vocabulary of ``version`` (``None``: unknown)."""
        old = self.name_2017 or self.name
        if version == "2017":
            return (old,)
        if version == "2018":
            return (self.name,)
        return tuple(dict.fromkeys((self.name, old)))


_INSTRUMENTS: Final = (
    PresetLabel("Pianist"),
    PresetLabel("Saxophone"),
    PresetLabel("Cello"),
    PresetLabel("Flute"),
    PresetLabel("Trumpet"),
    PresetLabel("Accordion"),
    PresetLabel("Brass instrument"),
    PresetLabel("Organ (music)", name_2017="Organ"),
    PresetLabel("Fiddle"),
    PresetLabel("Electronic keyboard"),
    PresetLabel("Snare drum"),
    PresetLabel("Cymbal"),
)

#: Named label sets, resolved against the user's vocabulary: by Knowledge Graph id where the
#: file has them (2018 layout), else by the name of the file's version. Names and ids are those
#: of YT8M's ``vocabulary.csv`` (research.google.com/youtube8m); ``manifests/yt8m_music/
#: labels.csv`` lists the same labels with their 2017 and 2018 indices, for reference.
PRESET_LABELS: Final[dict[str, tuple[PresetLabel, ...]]] = {
    "music_video": (PresetLabel("Music video", "/m/0mdxd"),),
    "music": (
        PresetLabel("Music video", "/m/0mdxd"),
        PresetLabel("Concert", "/m/01jddz"),
        PresetLabel("Musician", "/m/09jwl"),
        PresetLabel("Guitar", "/m/0342h"),
        PresetLabel("String instrument", "/m/0d8lm"),
        PresetLabel("Musical ensemble", "/m/05229"),
        PresetLabel("Piano", "/m/05r5c"),
        PresetLabel("Drummer", "/m/09lbv"),
        PresetLabel("Choir", "/m/0l14jd"),
        PresetLabel("Orchestra", "/m/05pd6"),
        PresetLabel("Drum kit", "/m/02hnl", name_2017="Drums"),
        PresetLabel("Drum", "/m/026t6", name_2017="Drums"),
        PresetLabel("Acoustic guitar", "/m/042v_gx"),
        PresetLabel("Electric guitar", "/m/02sgy"),
        PresetLabel("Musical keyboard", "/m/057cc"),
        PresetLabel("Disc jockey", "/m/02dsz"),
        PresetLabel("Violin", "/m/07y_7"),
        PresetLabel("Marching band", "/m/09x9g"),
        PresetLabel("Music festival", "/m/0263qsk"),
        *_INSTRUMENTS,
    ),
}

#: Each preset's label names (2018 names), e.g. for ``--preset`` choices and messages.
LABEL_PRESETS: Final[dict[str, tuple[str, ...]]] = {
    preset: tuple(label.name for label in labels) for preset, labels in PRESET_LABELS.items()
}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The labels of one YT8M vocabulary file.

    Attributes:
        path: the file.
        names: vocabulary index -> label name.
        version: the release the file is (by its row count, else its columns), ``None`` when
            neither tells.
        kg_ids: vocabulary index -> Knowledge Graph id, for files that have them (2018).
    """

    path: Path
    names: dict[int, str]
    version: VocabularyVersion | None = None
    kg_ids: dict[int, str] = field(default_factory=dict)
    _by_name: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    _by_kg: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, list[int]] = {}
        for index, name in self.names.items():
            if name:
                by_name.setdefault(name.casefold(), []).append(index)
        by_kg: dict[str, list[int]] = {}
        for index, kg in self.kg_ids.items():
            if kg:
                by_kg.setdefault(kg, []).append(index)
        object.__setattr__(self, "_by_name", {k: tuple(v) for k, v in by_name.items()})
        object.__setattr__(self, "_by_kg", {k: tuple(v) for k, v in by_kg.items()})

    def name(self, index: int) -> str:
        """Return a label's name (``#<index>`` for an index the file does not list)."""
        return self.names.get(index, f"#{index}")

    def indices(self, label: str) -> tuple[int, ...]:
        """Return every index of a label given by name (any case) or by index; ``()`` if none.

        A name can occur more than once (the 2017 vocabulary lists "Drums" as 39 and 44).
        """
        text = label.strip()
        if text.isdigit():
            index = int(text)
            return (index,) if index in self.names else ()
        return self._by_name.get(text.casefold(), ()) if text else ()

    def lookup(self, label: str) -> int | None:
        """Return the first index of a label given by name (any case) or by index, else ``None``."""
        found = self.indices(label)
        return found[0] if found else None

    def split(self, value: str) -> tuple[str, ...]:
        """Split one ``labels`` value into label names or indices.

        A value that is itself a label (``"Nike, Inc."``) is taken whole; otherwise it is a
        comma-separated list, read in the one way whose every part is a label.

        Raises:
            InputError: no reading names only labels (the message suggests close names), or
                more than one does (give each label separately, e.g. repeat ``--labels``).
        """
        text = value.strip()
        if not text or self.indices(text):
            return (text,) if text else ()
        pieces = text.split(",")
        readings = self._readings(tuple(pieces), 0)
        if len(readings) == 1:
            return readings[0]
        if readings:
            ways = " or ".join(" + ".join(repr(p) for p in r) for r in readings)
            raise InputError(
                f"{self.path}: labels value {text!r} can be read as {ways}; give each label "
                "separately (repeat --labels, one label each)"
            )
        bad = next((p.strip() for p in pieces if p.strip() and not self.indices(p)), text)
        raise InputError(f"{self.path}: no label {bad!r}{self._suggest(bad)}")

    def _readings(self, pieces: tuple[str, ...], start: int) -> list[tuple[str, ...]]:
        """Up to two ways to group ``pieces[start:]`` (comma-separated) into known labels."""
        if start == len(pieces):
            return [()]
        out: list[tuple[str, ...]] = []
        for stop in range(start + 1, len(pieces) + 1):
            part = ",".join(pieces[start:stop]).strip()
            if part and not self.indices(part):
                continue
            if not part and stop > start + 1:
                continue
            head = (part,) if part else ()
            out.extend(head + rest for rest in self._readings(pieces, stop))
            if len(out) > 1:
                return out[:2]
        return out

    def resolve(self, labels: Sequence[str]) -> tuple[int, ...]:
        """Resolve label names or indices (each value possibly a comma list) to indices.

        A name that occurs more than once selects all its indices, and a warning says so.

        Raises:
            InputError: a label is not in the vocabulary (the message suggests close names), or
                a comma list can be read in more than one way.
        """
        out: list[int] = []
        for value in labels:
            for label in self.split(value):
                found = self.indices(label)
                if not label.strip().isdigit():
                    self._note_repeats(found)
                out.extend(found)
        return tuple(dict.fromkeys(out))

    def resolve_preset(self, preset: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """Resolve a named label set: by Knowledge Graph id where both have one, else by name.

        Returns:
            The indices found, and the preset's (2018) names this vocabulary lacks.

        Raises:
            InputError: ``preset`` is not in :data:`PRESET_LABELS`.
        """
        if preset not in PRESET_LABELS:
            raise InputError(f"unknown label preset {preset!r}; use one of {sorted(PRESET_LABELS)}")
        out: list[int] = []
        missing: list[str] = []
        noted: set[tuple[int, ...]] = set()
        for label in PRESET_LABELS[preset]:
            found = self._by_kg.get(label.kg_id, ()) if label.kg_id else ()
            names = label.names(self.version)
            if not found:
                hit = next((n for n in names if self.indices(n)), None)
                found = self.indices(hit) if hit is not None else ()
                if hit is not None and hit != label.name:
                    logger.info("%s: %r is %r in this vocabulary", self.path.name, label.name, hit)
            if not found:
                missing.append(label.name)
                continue
            if found not in noted:
                noted.add(found)
                self._note_repeats(found)
            out.extend(found)
        return tuple(dict.fromkeys(out)), tuple(missing)

    def _note_repeats(self, indices: tuple[int, ...]) -> None:
        """Log that a name selected several labels (the vocabulary repeats it)."""
        if len(indices) < 2:
            return
        which = "both" if len(indices) == 2 else f"all {len(indices)}"
        logger.warning(
            "%r is %d labels in this vocabulary (%s): %s selected",
            self.name(indices[0]),
            len(indices),
            ", ".join(map(str, indices)),
            which,
        )

    def _suggest(self, label: str) -> str:
        """Close names, first those that go on after a comma ("Nike" -> "Nike, Inc.")."""
        text = label.strip()
        choices = [n for n in self.names.values() if n]
        start = f"{text.casefold()},"
        longer = [n for n in choices if n.casefold().startswith(start)]
        close = difflib.get_close_matches(text, choices, n=3, cutoff=0.6)
        names = list(dict.fromkeys(longer + close))[:3]
        return f"; did you mean {', '.join(repr(c) for c in names)}?" if names else ""


def detect_version(columns: Sequence[str], rows: int) -> VocabularyVersion | None:
    """Tell a vocabulary's release from its row count, else from its columns.

    Args:
        columns: the header's column names.
        rows: the number of labels (data rows).

    Returns:
        ``"2017"`` (4,716 labels, or ``label_id,label_name`` columns), ``"2018"`` (3,862 labels,
        or the ``Index,...,KnowledgeGraphId,Name,...`` header), else ``None``.
    """
    if rows in _VERSION_ROWS:
        return _VERSION_ROWS[rows]
    if "label_id" in columns and "label_name" in columns:
        return "2017"
    if {"Index", _KG_COLUMN, "Name"} <= set(columns):
        return "2018"
    return None


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
    kg_ids: dict[int, str] = {}
    for row in reader:
        line = reader.line_num
        raw = (row.get(index_col) or "").strip()
        if not raw.isdigit():
            raise InputError(f"{path}:{line}: {index_col} {raw!r} is not a label index")
        index = int(raw)
        if index in names:
            raise InputError(f"{path}:{line}: label index {index} appears twice")
        names[index] = (row.get(name_col) or "").strip()
        kg = (row.get(_KG_COLUMN) or "").strip()
        if kg:
            kg_ids[index] = kg
    if not names:
        raise InputError(f"{path}: the vocabulary has no labels")
    version = detect_version(columns, len(names))
    logger.debug("%s: %d labels, version %s", path.name, len(names), version or "unknown")
    return Vocabulary(path, names, version, kg_ids)
