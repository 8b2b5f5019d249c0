"""Filesystem layout of a dataset root and the sharded Parquet writer."""

from svm_toolkit.io.paths import DatasetLayout, check_sample_id
from svm_toolkit.io.shards import ShardLimits, ShardWriter, read_shards

__all__ = ["DatasetLayout", "ShardLimits", "ShardWriter", "check_sample_id", "read_shards"]
