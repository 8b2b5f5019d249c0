"""Helpers shared by the per-stage frozen config dataclasses: dict and YAML round trips.

Each stage owns its config class (paper constants as defaults, named presets as module-level
instances); YAML files and CLI flags only override fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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


def replace(config: C, overrides: Mapping[str, Any], *, where: str = "config") -> C:
    """Return ``config`` with ``overrides`` applied; ``None`` values are ignored (flag not given).

    A mapping given for a field that holds a config is applied to that config (YAML
    ``filters: {max_speech_ratio: 0.7}``); a list given for a tuple field becomes a tuple.

    Raises:
        ConfigError: an override names a field the config does not have.
    """
    names = {f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(names)}")
    given: dict[str, Any] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        current = getattr(config, name)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            value = replace(current, value, where=f"{where}: {name}")
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        given[name] = value
    return dataclasses.replace(config, **given)  # type: ignore[type-var]


def load_overrides(path: Path) -> dict[str, Any]:
    """Read a YAML file of config overrides (a mapping of field names to values).

    Raises:
        ConfigError: missing file, invalid YAML, or not a mapping.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of field: value, got {type(data).__name__}")
    return data
