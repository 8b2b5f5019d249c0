"""Suggestions for a mistyped name: the one helper behind every "unknown X" message.

Wherever a user types a name the toolkit must know (an extractor, a Mel recipe, a preset, a
feature set, a status in ``--retry``, a split), an unknown one is refused with the closest known
names (:func:`difflib.get_close_matches`) and the full list::

    unknown extractor 'efficientnet_lite'; did you mean 'efficientnet_lite0'? Known: ...
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import click

#: How alike a known name must be to be suggested (``difflib``'s ratio, 0-1).
CUTOFF: Final = 0.6
#: Most names suggested.
MOST: Final = 3


def suggest(name: str, known: Iterable[str], *, most: int = MOST) -> list[str]:
    """The known names closest to ``name``, closest first (empty when none is close).

    A name that differs only in case is always suggested first.

    Example:
        >>> suggest("efficientnet_lite", ["resnet50", "efficientnet_lite0"])
        ['efficientnet_lite0']
    """
    names = list(dict.fromkeys(known))
    same_case = [n for n in names if n.lower() == name.lower() and n != name]
    close = difflib.get_close_matches(name, names, n=most, cutoff=CUTOFF)
    return list(dict.fromkeys([*same_case, *close]))[:most]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` (or ``'x' or 'y'``), or ``""`` when no known name is close."""
    close = suggest(name, known)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{n}'" for n in close) + "?"


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """The message refusing an unknown name, with suggestions and every known name.

    Args:
        kind: what the name names, e.g. ``"extractor"`` or ``"Mel recipe"``.
        name: what the user typed.
        known: the names that exist, in the order to list them.

    Example:
        >>> unknown_name("split", "tset", ["train", "val", "test"])
        "unknown split 'tset'; did you mean 'test'? Known: train, val, test"
    """
    names = list(dict.fromkeys(known))
    listed = ", ".join(names) if names else "none"
    hint = did_you_mean(name, names)
    return f"unknown {kind} '{name}'{hint}{' Known' if hint else '; known'}: {listed}"


def check_feature_sets(dataset: Path, names: Sequence[str]) -> None:
    """Refuse a feature-set name that is neither extracted in ``dataset`` nor an extractor.

    A registered extractor not extracted yet passes: its reader says which ``svm extract`` to
    run. A typo (``efficientnet_lite``) is refused here, before any command is recommended
    for a name that does not exist.

    Raises:
        ConfigError: an unknown name (the message suggests the closest and lists the known:
            the dataset's feature folders first, then the registered extractors).
    """
    from svm_toolkit.errors import ConfigError
    from svm_toolkit.extract.registry import EXTRACTORS

    folder = Path(dataset) / "features"
    present = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    known = [*present, *(e for e in EXTRACTORS if e not in present)]
    for name in names:
        if name not in known:
            raise ConfigError(
                f"{dataset}: {unknown_name('feature set', name, known)} "
                f"(`svm manifest info {dataset}` shows what is extracted)"
            )


def suggest_choice(exc: click.ClickException) -> click.ClickException:
    """Click's "'x' is not one of ..." error with the closest choices added.

    Every ``click.Choice`` option (presets, splits, models, formats, ...) is covered by the one
    ``except`` in :func:`svm_toolkit.cli.main`; any other error is returned as it is.

    Example:
        ``Invalid value for '--preset': 'tivn' is not one of 'tivm', 'mvbind', 'offline';
        did you mean 'tivm'?``
    """
    import click

    if not isinstance(exc, click.BadParameter) or exc.param is None:
        return exc
    if not isinstance(exc.param.type, click.Choice):
        return exc
    typed = _typed_value(exc.message)
    hint = "" if typed is None else did_you_mean(typed, [str(c) for c in exc.param.type.choices])
    if not hint:
        return exc
    return click.BadParameter(
        exc.message.rstrip(".") + hint, ctx=exc.ctx, param=exc.param, param_hint=exc.param_hint
    )


def _typed_value(message: str) -> str | None:
    """The value of click's ``"'x' is not one of ..."`` message (``None`` for another)."""
    head, sep, _ = message.partition(" is not ")
    if not sep:
        return None
    try:
        value = ast.literal_eval(head)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


__all__ = [
    "CUTOFF",
    "MOST",
    "check_feature_sets",
    "did_you_mean",
    "suggest",
    "suggest_choice",
    "unknown_name",
]
