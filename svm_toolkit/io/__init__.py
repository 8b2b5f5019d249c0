"""Filesystem layout of a dataset root and the sharded Parquet writer.

Each public name is imported from its module when first asked for, so that importing one
submodule (a config, a constant for a ``--help`` text) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from svm_toolkit.io.paths import DatasetLayout, check_sample_id
    from svm_toolkit.io.shards import ShardLimits, ShardWriter, read_shards

__all__ = ["DatasetLayout", "ShardLimits", "ShardWriter", "check_sample_id", "read_shards"]

#: Public name -> the module of svm_toolkit.io that defines it.
_API: dict[str, str] = {
    "DatasetLayout": "svm_toolkit.io.paths",
    "ShardLimits": "svm_toolkit.io.shards",
    "ShardWriter": "svm_toolkit.io.shards",
    "check_sample_id": "svm_toolkit.io.paths",
    "read_shards": "svm_toolkit.io.shards",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module when first asked for."""
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names and the loaded submodules, for ``dir()`` and tab completion."""
    return sorted({*globals(), *_API})
