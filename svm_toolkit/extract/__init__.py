"""Batch feature extraction into sharded Parquet (``svm extract``)."""
