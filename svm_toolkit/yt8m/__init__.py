"""YouTube-8M: TFRecords + vocabulary -> music-video manifests, pseudo-id lookup, YT8M features."""

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
