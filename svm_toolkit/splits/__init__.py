"""Leak-free splits: grouped creation (``svm splits make``) and checks (``svm splits validate``)."""

from svm_toolkit.splits.make import MakeSummary, SplitConfig, make_splits
from svm_toolkit.splits.matching import MatchConfig
from svm_toolkit.splits.report import Finding, Level, SplitReport
from svm_toolkit.splits.validate import ValidateConfig, validate_splits

__all__ = [
    "Finding",
    "Level",
    "MakeSummary",
    "MatchConfig",
    "SplitConfig",
    "SplitReport",
    "ValidateConfig",
    "make_splits",
    "validate_splits",
]
