"""Releases: make one, rebuild a dataset from one, compare the rebuild with it.

``svm release`` writes what another lab needs to rebuild a dataset (no media), ``svm rebuild``
builds a dataset from a release, ``svm compare`` says what survived and what changed.

The format is documented in :mod:`svm_toolkit.release.format`.
"""

from __future__ import annotations
