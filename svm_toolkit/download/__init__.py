"""Downloading with yt-dlp: pacing, retries, a per-sample ledger, atomic media files.

Each public name is imported from its module when first asked for, so that importing one
submodule (a config, a constant for a ``--help`` text) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svm_toolkit.lazy import lazy_api

if TYPE_CHECKING:
    from svm_toolkit.download.config import DownloadConfig
    from svm_toolkit.download.pacing import BreakerOpen
    from svm_toolkit.download.runner import DownloadSummary, run_download

__all__ = ["BreakerOpen", "DownloadConfig", "DownloadSummary", "run_download"]

#: Public name -> the module of svm_toolkit.download that defines it.
_API: dict[str, str] = {
    "BreakerOpen": "svm_toolkit.download.pacing",
    "DownloadConfig": "svm_toolkit.download.config",
    "DownloadSummary": "svm_toolkit.download.runner",
    "run_download": "svm_toolkit.download.runner",
}


__getattr__, __dir__ = lazy_api(__name__, _API)
