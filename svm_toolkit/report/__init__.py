"""``svm report``: one self-contained HTML page that shows what happened to a dataset's samples.

The funnel from manifest to features (the counts of ``svm manifest info``), thumbnails of the
samples filters dropped, crop boxes drawn on frames, linked samples side by side, split balance
plots, and, given a release, what survived of it (``svm compare``).
"""

from __future__ import annotations

from svm_toolkit.report.build import DEFAULT_NAME, ReportConfig, ReportSummary, write_report

__all__ = ["DEFAULT_NAME", "ReportConfig", "ReportSummary", "write_report"]
