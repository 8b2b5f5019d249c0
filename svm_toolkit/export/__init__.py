"""Export a dataset's features for training code that expects other layouts (``svm export``).

Two formats (:data:`FORMATS`):

* ``webdataset``: ``OUT/<split>-NNNNNN.tar`` shards, one sample per key (``<key>.json`` and
  ``<key>.<feature>.npy``), read by the ``webdataset`` library or any tar reader
  (:mod:`svm_toolkit.export.webdataset`);
* ``npy``: ``OUT/<feature>/<id[:2]>/<id>.npy`` per sample and feature plus
  ``OUT/index.parquet`` (:mod:`svm_toolkit.export.npy`).

Both stream (memory: one read batch of ``read_bytes``, never a whole tar or feature set), are
resumable (a finished file is kept, an unfinished one rewritten) and keep float16 vectors
exactly as stored.
"""

from __future__ import annotations

from svm_toolkit.export.core import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SAMPLES,
    FORMATS,
    STATE_NAME,
    ExportConfig,
    ExportSummary,
    export_dataset,
)
from svm_toolkit.export.npy import INDEX_NAME, npy_path
from svm_toolkit.export.webdataset import sample_id_of, sample_key, tar_name

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_SAMPLES",
    "FORMATS",
    "INDEX_NAME",
    "STATE_NAME",
    "ExportConfig",
    "ExportSummary",
    "export_dataset",
    "npy_path",
    "sample_id_of",
    "sample_key",
    "tar_name",
]
