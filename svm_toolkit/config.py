"""Helpers shared by the per-stage frozen config dataclasses: dict and YAML round trips.

Each stage owns its config class (paper constants as defaults, named presets as module-level
instances); YAML files and CLI flags only override fields. Precedence, lowest first: the
preset (or the class defaults), then the ``--config`` YAML file, then the flags given on the
command line. A flag not given is left out before merging (the CLI drops it); a ``null`` in
YAML is a value: it sets a field typed ``X | None`` to ``None`` (for filters: the bound is off).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from svm_toolkit.errors import ConfigError

C = TypeVar("C")


def to_dict(config: Any) -> dict[str, Any]:
    """Return a config dataclass as plain JSON/YAML-friendly values (tuples become lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return to_dict(value)
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def to_yaml(config: Any) -> str:
    """Return a config dataclass as YAML that ``--config`` reads back into the same config.

    Fields keep their declaration order; ``None`` is written ``null``.
    """
    text: str = yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)
    return text


@cache
def _hints(cls: Any) -> dict[str, Any]:
    """The resolved field types of a config class (``{}`` when they cannot be resolved)."""
    try:
        module = sys.modules.get(cls.__module__)
        return typing.get_type_hints(cls, vars(module) if module else None)
    except (NameError, TypeError):
        return {}


def _arms(hint: Any) -> tuple[Any, ...]:
    """The members of a union type (``X | None``, ``Optional[X]``), else ``(hint,)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def nullable(config_class: type, name: str) -> bool:
    """Whether field ``name`` of ``config_class`` may hold ``None`` (typed ``X | None``)."""
    hint = _hints(config_class).get(name)
    if hint is not None:
        return type(None) in _arms(hint) or hint is Any
    declared = {f.name: f.type for f in dataclasses.fields(config_class)}[name]
    return isinstance(declared, str) and "None" in (s.strip() for s in declared.split("|"))


def nullable_fields(config_class: type, prefix: str = "") -> list[str]:
    """Dotted names of every field typed ``X | None``, nested configs included.

    Example: ``nullable_fields(PreprocessConfig)`` lists ``max_media_s``,
    ``filters.max_speech_ratio``, ``speech.max_scored_s``, ...
    """
    out = []
    for f in dataclasses.fields(config_class):
        if nullable(config_class, f.name):
            out.append(prefix + f.name)
        nested = _nested_class(config_class, f.name)
        if nested is not None and not nullable(config_class, f.name):
            out += nullable_fields(nested, f"{prefix}{f.name}.")
    return out


def _nested_class(config_class: type, name: str) -> type | None:
    """The config dataclass a field holds (``ResolveConfig`` for ``ResolveConfig | None``)."""
    hint = _hints(config_class).get(name)
    for arm in _arms(hint):
        if isinstance(arm, type) and dataclasses.is_dataclass(arm):
            return arm
    return None


def _allowed(config_class: type, name: str, current: Any) -> str:
    """What a field takes, for a message: its type, the choices of a Literal, its default."""
    hint = _hints(config_class).get(name)
    if typing.get_origin(hint) is typing.Literal:
        choices = ", ".join(str(c) for c in typing.get_args(hint))
        return f"one of {choices}"
    declared = {f.name: f.type for f in dataclasses.fields(config_class)}[name]
    kind = declared if isinstance(declared, str) else getattr(declared, "__name__", str(declared))
    if dataclasses.is_dataclass(current):
        return f"a mapping of {type(current).__name__} fields"
    shown = list(current) if isinstance(current, tuple) else current
    return f"a value of type {kind}, e.g. {shown!r}"


def _as_tuple(value: Any) -> Any:
    """YAML lists as tuples, nested lists too (``weights: [[name, path]]``)."""
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    return value


def replace(config: C, overrides: Mapping[str, Any], *, where: str = "config") -> C:
    """Return ``config`` with ``overrides`` applied, ``None`` included.

    ``None`` (YAML ``null``) sets a field typed ``X | None`` to ``None``; callers leave out
    the flags that were not given. A mapping given for a field that holds a config is applied
    to that config (YAML ``filters: {max_speech_ratio: 0.7}``; for a field that is ``None``
    now, to the class's defaults); a list given for a tuple field becomes a tuple.

    Args:
        config: a frozen config dataclass.
        overrides: field name -> new value (nested mappings for nested configs).
        where: where the overrides come from (a file name), for messages; ``""`` for flags,
            whose names the config's own messages already give.

    Raises:
        ConfigError: an override names a field the config does not have, is ``null`` for a
            field that cannot be ``None``, or makes the config invalid; the message names
            ``where``, the dotted key and what the field takes.
    """
    return _replace(config, overrides, where, "")


def _replace(config: C, overrides: Mapping[str, Any], where: str, prefix: str) -> C:
    cls: Any = type(config)
    at = f"{where}: " if where else ""  # flags name themselves in the config's own messages
    names = [f.name for f in dataclasses.fields(config)]  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        keys = [prefix + str(k) for k in unknown]
        raise ConfigError(f"{at}unknown field(s) {keys}; known fields: {sorted(names)}")
    given: dict[str, Any] = {}
    for name, value in overrides.items():
        current = getattr(config, name)
        key = prefix + name
        if value is None:
            if not nullable(cls, name):
                allowed = _allowed(cls, name, current)
                raise ConfigError(f"{at}{key}: null is not allowed here; give {allowed}")
            given[name] = None
            continue
        nested = _nested_class(cls, name)
        is_tuple = isinstance(current, tuple) or "tuple" in str(_hints(cls).get(name, ""))
        if nested is not None and isinstance(value, Mapping):
            start = current if current is not None else nested()
            value = _replace(start, value, where, f"{key}.")
        elif isinstance(value, list) and is_tuple:
            value = _as_tuple(value)
        elif is_tuple and not isinstance(value, list | tuple):
            shown = list(current) if isinstance(current, tuple) else current
            raise ConfigError(f"{at}{key}: give a list, e.g. {shown!r}")
        _check_value(cls, name, value, current, f"{at}{key}")
        given[name] = value
    try:
        return dataclasses.replace(config, **given)  # type: ignore[type-var]
    except ConfigError as exc:
        raise ConfigError(f"{at}{exc}") from None
    except TypeError as exc:  # a value of a wrong type: name the field it came from
        raise ConfigError(f"{at}{_culprit(config, given, prefix)}{exc}") from None
    except ValueError as exc:  # a config's own checks
        within = f"{prefix[:-1]}: " if prefix else ""
        raise ConfigError(f"{at}{within}{exc}") from None


_SCALARS: dict[type, tuple[type, ...]] = {
    bool: (bool,),
    int: (int,),
    float: (int, float),
    str: (str,),
}


def _check_value(cls: type, name: str, value: Any, current: Any, key: str) -> None:
    """Refuse a value outside a ``Literal`` or of the wrong scalar type (``X | None`` too).

    Raises:
        ConfigError: naming ``key`` and what the field takes.
    """
    hint = _hints(cls).get(name)
    if hint is None or value is None:
        return
    arms = [a for a in _arms(hint) if a is not type(None)]
    if arms and all(typing.get_origin(a) is typing.Literal for a in arms):
        literals = [c for a in arms for c in typing.get_args(a)]
        if not any(value == c and type(value) is type(c) for c in literals):
            choices = ", ".join(str(c) for c in literals)
            raise ConfigError(f"{key}: {value!r} is not allowed; give one of {choices}")
        return
    if not all(isinstance(a, type) and a in _SCALARS for a in arms):
        return
    accepted = tuple(t for a in arms for t in _SCALARS[a])
    wrong_bool = isinstance(value, bool) and bool not in arms
    if wrong_bool or not isinstance(value, accepted):
        kinds = " or ".join(a.__name__ for a in arms)
        raise ConfigError(f"{key}: give {kinds}, e.g. {current!r} (got {value!r})")


def _culprit(config: Any, given: Mapping[str, Any], prefix: str) -> str:
    """``"<dotted key>: "`` of the one override that alone raises TypeError, else the prefix."""
    for name, value in given.items():
        try:
            dataclasses.replace(config, **{name: value})
        except TypeError:
            return f"{prefix}{name}: "
        except (ValueError, ConfigError):
            continue
    return f"{prefix[:-1]}: " if prefix else ""


def load_overrides(path: Path) -> dict[str, Any]:
    """Read a YAML file of config overrides (a mapping of field names to values).

    Raises:
        ConfigError: missing file, invalid YAML, or not a mapping.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a YAML config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of field: value, got {type(data).__name__}")
    return data
