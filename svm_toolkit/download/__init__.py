"""Downloading with yt-dlp: pacing, retries, a per-sample ledger, atomic media files."""

from svm_toolkit.download.config import DownloadConfig
from svm_toolkit.download.pacing import BreakerOpen
from svm_toolkit.download.runner import DownloadSummary, run_download

__all__ = ["BreakerOpen", "DownloadConfig", "DownloadSummary", "run_download"]
