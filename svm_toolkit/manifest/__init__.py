"""Manifests: URL lists -> ``manifest.parquet``, and dataset summaries."""

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
