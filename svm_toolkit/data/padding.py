"""Batch :class:`~svm_toolkit.data.FeatureDataset` items: ragged sequences padded, with masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def collate(
    items: Sequence[dict[str, Any]], *, dtype: torch.dtype = torch.float32
) -> dict[str, Any]:
    """Stack items into a batch, padding ragged time steps with zeros.

    Pass it as a ``DataLoader``'s ``collate_fn``; for a float16 batch use
    ``functools.partial(collate, dtype=torch.float16)``. Each key of the items becomes:

    * a 2-D tensor (T_i, D) (a feature's steps): ``key`` -> ``dtype``, shape (B, T_max, D),
      zero where padded, and ``key + "_mask"`` -> bool, shape (B, T_max), True on real steps;
    * a 1-D tensor (T_i,) (e.g. ``<feature>_times_s``, seconds): shape (B, T_max), its own
      dtype, zero where padded (the feature's mask tells which entries are real);
    * an int (``group``): int64, shape (B,);
    * anything else (``sample_id``, ``split``, ``music_id``): a list of B values.

    Features are converted from float16 here, once per batch, not per item.

    Args:
        items: the B items, all with the same keys.
        dtype: floating dtype of the padded features (float32 by default).

    Returns:
        The batch, a dict as described above.

    Raises:
        ValueError: no items, or items whose keys or feature dimensions differ.
    """
    if not items:
        raise ValueError("collate needs at least one item")
    keys = list(items[0])
    for n, item in enumerate(items[1:], start=1):
        if list(item) != keys:
            raise ValueError(f"item {n} has keys {sorted(item)}, item 0 has {sorted(keys)}")
    batch: dict[str, Any] = {}
    for key in keys:
        values = [item[key] for item in items]
        first = values[0]
        if isinstance(first, torch.Tensor) and first.ndim == 2:
            batch[key], batch[key + "_mask"] = _pad_steps(key, values, dtype)
        elif isinstance(first, torch.Tensor) and first.ndim == 1:
            out = first.new_zeros((len(values), max(len(v) for v in values)))
            for i, v in enumerate(values):
                out[i, : len(v)] = v
            batch[key] = out
        elif isinstance(first, int) and not isinstance(first, bool):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        else:
            batch[key] = values
    return batch


def _pad_steps(
    key: str, values: list[torch.Tensor], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T_max, D) ``dtype`` zero-padded and its (B, T_max) bool mask."""
    dims = {int(v.shape[1]) for v in values}
    if len(dims) != 1:
        raise ValueError(f"{key}: items have dimensions {sorted(dims)}; one feature has one D")
    lengths = [int(v.shape[0]) for v in values]
    out = torch.zeros((len(values), max(lengths), dims.pop()), dtype=dtype)
    mask = torch.zeros((len(values), max(lengths)), dtype=torch.bool)
    for i, (v, n) in enumerate(zip(values, lengths, strict=True)):
        out[i, :n] = v  # float16 -> dtype here
        mask[i, :n] = True
    return out, mask
