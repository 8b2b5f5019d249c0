"""Read the Mel units ``svm preprocess --mel RECIPE`` stored, in their real shape.

Shards (``preprocess/mel_<recipe>/part-NNNNN.parquet``) hold one row per sample:
``mel: list<unit>`` and ``timestamps_s: list<float32>`` (each unit's start, seconds). A unit is
stored as nested fixed-size lists of float32 in its real shape, e.g. ``imagebind``:
``fixed_size_list<fixed_size_list<fixed_size_list<float32>[204]>[128]>[1]`` (1 x 128 x 204
Kaldi fbank frames x bins per 2 s clip, three clips), ``vggish``:
``fixed_size_list<fixed_size_list<float32>[64]>[96]`` (96 x 64 log-mel frames x bands per
0.96 s example), so outside readers see the shape: polars ``List(Array(Float32, shape=(96,
64)))``, Hugging Face ``datasets`` arrays of that shape, DuckDB ``FLOAT[][][]``. Shards written
before this layout hold each unit flat (``fixed_size_list<float32>[prod(shape)]``) with the shape
only in the provenance (``unit_shape``); :func:`read_mel` and :func:`iter_mel` read both.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from svm_toolkit.errors import InputError
from svm_toolkit.io.checked import iter_batches, read_schema, read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import committed_shards
from svm_toolkit.schema import COL, read_provenance

SHARD_PREFIX = "part"


class Mel(NamedTuple):
    """One sample's Mel units.

    Attributes:
        units: float32, shape (n, *unit_shape): the recipe's n units (``imagebind``:
            (3, 1, 128, 204); ``vggish``: (n, 96, 64), one per 0.96 s); n = 0 when the video
            has no sound.
        times_s: float32, shape (n,): each unit's start in the clip, seconds.
    """

    units: npt.NDArray[np.float32]
    times_s: npt.NDArray[np.float32]


def read_mel(dataset: Path | str, recipe: str) -> dict[str, Mel]:
    """Every sample's Mel units of one recipe, in one call.

    Holds the whole recipe in memory (an ``imagebind`` sample is 313 KB of float32); for a large
    dataset iterate with :func:`iter_mel` instead.

    Args:
        dataset: the dataset root.
        recipe: the Mel recipe (``imagebind``, ``vggish``, ``librosa``).

    Returns:
        ``sample_id -> Mel(units, times_s)`` (a plain tuple too): float32 (n, *unit_shape) and
        float32 (n,) seconds, for every sample with a committed row (a redone sample's newest).

    Raises:
        InputError: no committed shard of the recipe, or a damaged shard.
    """
    return dict(iter_mel(dataset, recipe))


def iter_mel(dataset: Path | str, recipe: str) -> Iterator[tuple[str, Mel]]:
    """Stream ``(sample_id, Mel)`` of one recipe, one shard batch at a time (bounded memory).

    Each sample comes once, with its newest committed row (the rule of
    :func:`svm_toolkit.io.shards.read_shards`), in shard order.

    Args:
        dataset: the dataset root.
        recipe: the Mel recipe (``imagebind``, ``vggish``, ``librosa``).

    Raises:
        InputError: no committed shard of the recipe, or a damaged shard.
    """
    directory = DatasetLayout(Path(dataset)).mel_dir(recipe)
    shards = committed_shards(directory, SHARD_PREFIX)
    if not shards:
        raise InputError(
            f"{directory}: no Mel units of recipe '{recipe}'; run "
            f"`svm preprocess {dataset} --mel {recipe}` first"
        )
    ids = [read_table(p, columns=[COL.sample_id]).column(0).to_pylist() for p in shards]
    newest = {s: (k, r) for k, part in enumerate(ids) for r, s in enumerate(part)}
    for k, shard in enumerate(shards):
        shape = unit_shape(read_schema(shard), where=str(shard))
        row = 0
        for batch in iter_batches(shard, columns=[COL.mel, COL.timestamps_s]):
            units = mel_units(batch.column(0), shape)
            times = batch.column(1)
            for i in range(batch.num_rows):
                sample_id = ids[k][row + i]
                if newest[sample_id] == (k, row + i):
                    stamps = times[i].values.to_numpy(zero_copy_only=False)
                    # copies: writable, and no sample holds its batch's buffer alive
                    yield sample_id, Mel(units[i].copy(), np.array(stamps, dtype=np.float32))
            row += batch.num_rows


def unit_shape(schema: pa.Schema, *, where: str) -> tuple[int, ...]:
    """The shape of one unit in a Mel shard of ``schema`` (its nested type, else provenance).

    Raises:
        InputError: a flat (old-layout) shard whose provenance lacks a ``unit_shape`` that fits.
    """
    kind = schema.field(COL.mel).type.value_type
    dims = []
    while pa.types.is_fixed_size_list(kind):
        dims.append(kind.list_size)
        kind = kind.value_type
    stored = read_provenance(schema, where=where).get("unit_shape")
    if stored and math.prod(stored) == math.prod(dims) and len(stored) >= len(dims):
        return tuple(int(d) for d in stored)
    if len(dims) > 1 or stored is None:
        return tuple(dims)
    raise InputError(
        f"{where}: units of {dims[0]} values do not fit the stated unit_shape {stored}; "
        "delete the folder and run `svm preprocess` with --mel again"
    )


def mel_units(
    column: pa.Array | pa.ChunkedArray, shape: tuple[int, ...]
) -> list[npt.NDArray[np.float32]]:
    """Each row's units of a ``mel`` column as float32 (n_i, *shape) arrays (views of one buffer).

    Reads both layouts: nested fixed-size lists and flat ones.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = np.asarray(array.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    leaves = array.flatten()
    while pa.types.is_fixed_size_list(leaves.type):
        leaves = leaves.flatten()
    values = np.asarray(leaves.to_numpy(zero_copy_only=False), dtype=np.float32)
    units = values.reshape(-1, *shape)
    start = offsets[0]
    return [units[a - start : b - start] for a, b in itertools.pairwise(offsets)]
