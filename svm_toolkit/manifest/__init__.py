"""Manifests: URL lists -> ``manifest.parquet``, and dataset summaries.

Each public name is imported from its module when first asked for, so that importing one
submodule (a config, a constant for a ``--help`` text) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svm_toolkit.lazy import lazy_api

if TYPE_CHECKING:
    from svm_toolkit.manifest.build import (
        ManifestSummary,
        build_manifest,
        read_manifest,
        write_manifest,
    )
    from svm_toolkit.manifest.config import MANIFEST_PRESETS, ManifestConfig
    from svm_toolkit.manifest.info import DatasetInfo, dataset_info

__all__ = [
    "MANIFEST_PRESETS",
    "DatasetInfo",
    "ManifestConfig",
    "ManifestSummary",
    "build_manifest",
    "dataset_info",
    "read_manifest",
    "write_manifest",
]

#: Public name -> the module of svm_toolkit.manifest that defines it.
_API: dict[str, str] = {
    "MANIFEST_PRESETS": "svm_toolkit.manifest.config",
    "DatasetInfo": "svm_toolkit.manifest.info",
    "ManifestConfig": "svm_toolkit.manifest.config",
    "ManifestSummary": "svm_toolkit.manifest.build",
    "build_manifest": "svm_toolkit.manifest.build",
    "dataset_info": "svm_toolkit.manifest.info",
    "read_manifest": "svm_toolkit.manifest.build",
    "write_manifest": "svm_toolkit.manifest.build",
}


__getattr__, __dir__ = lazy_api(__name__, _API)
