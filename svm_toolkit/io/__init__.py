"""Filesystem layout of a dataset root and the sharded Parquet writer.

Each public name is imported from its module when first asked for, so that importing one
submodule (a config, a constant for a ``--help`` text) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svm_toolkit.lazy import lazy_api

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


__getattr__, __dir__ = lazy_api(__name__, _API)
