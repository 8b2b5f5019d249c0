"""svm_toolkit: build video-music datasets and the retrieval baselines that learn from them.

The public API; the ``svm`` command line (:mod:`svm_toolkit.cli`) is built on these.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from svm_toolkit.lazy import lazy_api

if TYPE_CHECKING:
    from svm_toolkit.data import FeatureDataset, collate, join_features, read_mel
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

#: Public name -> the module that defines it. Each is imported when first asked for, so that
#: ``import svm_toolkit`` (and ``svm --help``, which needs ``__version__``) loads no pyarrow,
#: pandas or torch (:mod:`svm_toolkit.data` reads torch for the Dataset).
_API: dict[str, str] = {
    "FeatureDataset": "svm_toolkit.data",
    "collate": "svm_toolkit.data",
    "join_features": "svm_toolkit.data",
    "read_mel": "svm_toolkit.data",
    "ConfigError": "svm_toolkit.errors",
    "InputError": "svm_toolkit.errors",
    "SchemaMismatchError": "svm_toolkit.errors",
    "SvmError": "svm_toolkit.errors",
    "canonicalize": "svm_toolkit.ids",
    "clip_id": "svm_toolkit.ids",
    "DatasetLayout": "svm_toolkit.io",
    "ShardLimits": "svm_toolkit.io",
    "ShardWriter": "svm_toolkit.io",
    "read_shards": "svm_toolkit.io",
    "MANIFEST_PRESETS": "svm_toolkit.manifest",
    "ManifestConfig": "svm_toolkit.manifest",
    "build_manifest": "svm_toolkit.manifest",
    "dataset_info": "svm_toolkit.manifest",
    "read_manifest": "svm_toolkit.manifest",
    "SCHEMA_VERSION": "svm_toolkit.schema",
    "Source": "svm_toolkit.schema",
    "Split": "svm_toolkit.schema",
    "Status": "svm_toolkit.schema",
}


__getattr__, __dir__ = lazy_api(__name__, _API)
