"""YouTube-8M: TFRecords + vocabulary -> music-video manifests, pseudo-id lookup, YT8M features.

Each public name is imported from its module when first asked for, so that importing one
submodule (a config, a constant for a ``--help`` text) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svm_toolkit.lazy import lazy_api

if TYPE_CHECKING:
    from svm_toolkit.yt8m.build import Yt8mSummary, build_yt8m_manifest
    from svm_toolkit.yt8m.config import OFFICIAL_LOOKUP_BASE, ResolveConfig, Yt8mConfig
    from svm_toolkit.yt8m.records import Layout, Yt8mVideo, dequantize, parse_record
    from svm_toolkit.yt8m.vocabulary import LABEL_PRESETS, Vocabulary, load_vocabulary

__all__ = [
    "LABEL_PRESETS",
    "OFFICIAL_LOOKUP_BASE",
    "Layout",
    "ResolveConfig",
    "Vocabulary",
    "Yt8mConfig",
    "Yt8mSummary",
    "Yt8mVideo",
    "build_yt8m_manifest",
    "dequantize",
    "load_vocabulary",
    "parse_record",
]

#: Public name -> the module of svm_toolkit.yt8m that defines it.
_API: dict[str, str] = {
    "LABEL_PRESETS": "svm_toolkit.yt8m.vocabulary",
    "OFFICIAL_LOOKUP_BASE": "svm_toolkit.yt8m.config",
    "Layout": "svm_toolkit.yt8m.records",
    "ResolveConfig": "svm_toolkit.yt8m.config",
    "Vocabulary": "svm_toolkit.yt8m.vocabulary",
    "Yt8mConfig": "svm_toolkit.yt8m.config",
    "Yt8mSummary": "svm_toolkit.yt8m.build",
    "Yt8mVideo": "svm_toolkit.yt8m.records",
    "build_yt8m_manifest": "svm_toolkit.yt8m.build",
    "dequantize": "svm_toolkit.yt8m.records",
    "load_vocabulary": "svm_toolkit.yt8m.vocabulary",
    "parse_record": "svm_toolkit.yt8m.records",
}


__getattr__, __dir__ = lazy_api(__name__, _API)
