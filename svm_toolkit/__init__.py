"""svm_toolkit: build video-music datasets and the retrieval baselines that learn from them.

The public API; the ``svm`` command line (:mod:`svm_toolkit.cli`) is built on these.
"""

__version__ = "0.1.0"

from typing import Any

from svm_toolkit.errors import ConfigError, InputError, SchemaMismatchError, SvmError
from svm_toolkit.ids import canonicalize, clip_id
from svm_toolkit.io import DatasetLayout, ShardLimits, ShardWriter, read_shards
from svm_toolkit.manifest import (
    MANIFEST_PRESETS,
    ManifestConfig,
    build_manifest,
    dataset_info,
    read_manifest,
)
from svm_toolkit.schema import SCHEMA_VERSION, Source, Split, Status

__all__ = [
    "MANIFEST_PRESETS",
    "SCHEMA_VERSION",
    "ConfigError",
    "DatasetLayout",
    "FeatureDataset",
    "InputError",
    "ManifestConfig",
    "SchemaMismatchError",
    "ShardLimits",
    "ShardWriter",
    "Source",
    "Split",
    "Status",
    "SvmError",
    "__version__",
    "build_manifest",
    "canonicalize",
    "clip_id",
    "collate",
    "dataset_info",
    "join_features",
    "read_manifest",
    "read_mel",
    "read_shards",
]

#: Names of :mod:`svm_toolkit.data`, imported on first use (it reads torch for the Dataset).
_DATA_API = frozenset({"FeatureDataset", "collate", "join_features", "read_mel"})


def __getattr__(name: str) -> Any:
    """The public data API (:mod:`svm_toolkit.data`), imported when first asked for."""
    if name in _DATA_API:
        from svm_toolkit import data

        return getattr(data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
