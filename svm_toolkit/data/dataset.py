"""A PyTorch ``Dataset`` over one or more feature sets of one split.

Each item is one sample: its steps of every feature as float16, kept so until
:func:`svm_toolkit.data.collate` pads a batch (half the memory of float32 while items wait in a
``DataLoader``'s queues).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from svm_toolkit.data.join import JoinedFeatures, join_features
from svm_toolkit.errors import ConfigError
from svm_toolkit.names import did_you_mean
from svm_toolkit.schema import Split

#: Item keys that are not features; a feature may not be named so.
RESERVED_KEYS: Final = frozenset({"sample_id", "split", "music_id", "group"})
#: Suffix of the key holding a feature's step start times.
TIMES_SUFFIX: Final = "_times_s"


class FeatureDataset(Dataset[dict[str, Any]]):
    """The samples of one split that have every requested feature, in sample-id order.

    Item ``i`` is a dict:

    * ``sample_id`` (str), ``split`` (str), ``music_id`` (str or ``None``);
    * ``group`` (int): samples with equal values share a song (``music_id``); a sample without
      one is alone. Equal groups in a batch are each other's positives in a multi-positive loss;
    * ``<feature>``: float16 tensor, shape (T, D): the feature's T time steps (T = 1 for a
      clip-level feature such as ``vmnet_music`` or YouTube-8M video-level records);
    * ``<feature>_times_s``: float32 tensor, shape (T,): each step's start, seconds.

    Samples are the ones with a split (``splits.parquet``, else the manifest's ``split``
    column) and a committed row in every feature's shards (a re-extracted sample's newest row).
    The join is :func:`~svm_toolkit.data.join_features`, the same one the bundled trainer uses.

    Args:
        dataset: the dataset root, or features already joined by
            :func:`~svm_toolkit.data.join_features` (to build the train and the val set from
            one read).
        features: extractor names, e.g. ``("efficientnet_lite0", "vggish")``.
        split: ``"train"``, ``"val"``, ``"test"``, or ``None`` for every sample with a split.
        cache: a folder for memory-mapped copies of the features (``None``: in memory); used
            only when ``dataset`` is a path.

    Raises:
        ConfigError: an unknown split, a feature name that is an item key, or features that
            ``dataset`` (already joined) does not hold.
        InputError: missing features or splits (see :func:`~svm_toolkit.data.join_features`).

    Example:
        >>> train = FeatureDataset("my_dataset", features=("efficientnet_lite0", "vggish"),
        ...                        split="train")  # doctest: +SKIP
        >>> train[0]["vggish"].shape  # doctest: +SKIP
        torch.Size([10, 128])
    """

    def __init__(
        self,
        dataset: Path | str | JoinedFeatures,
        features: Sequence[str],
        split: str | None = None,
        *,
        cache: Path | None = None,
    ) -> None:
        names = (features,) if isinstance(features, str) else tuple(features)
        clash = sorted(
            n for n in names if n in RESERVED_KEYS or n.endswith(("_mask", TIMES_SUFFIX))
        )
        if clash:
            raise ConfigError(
                f"feature name(s) {clash} collide with item keys; rename the feature folder"
            )
        if split is not None and split not in {s.value for s in Split}:
            splits = [s.value for s in Split]
            raise ConfigError(
                f"split {split!r}: use one of {', '.join(splits)}, or None"
                + did_you_mean(split, splits)
            )
        if isinstance(dataset, JoinedFeatures):
            joined = dataset
            missing = [n for n in names if n not in joined.banks]
            if missing:
                raise ConfigError(
                    f"the joined features hold {list(joined.features)}, not {missing}; "
                    "join them with join_features(..., features=...) first"
                )
        else:
            joined = join_features(dataset, names, cache=cache)
        self.features: tuple[str, ...] = names
        self.split = split
        self.joined = joined
        self._index: npt.NDArray[np.int64] = joined.split_rows(split)

    def __len__(self) -> int:
        """Number of samples."""
        return len(self._index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Sample ``i``: its ids, group, and each feature's float16 steps and start times."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        j = int(self._index[i])
        joined = self.joined
        item: dict[str, Any] = {
            "sample_id": joined.sample_ids[j],
            "split": joined.splits[j],
            "music_id": joined.music_ids[j],
            "group": int(joined.groups[j]),
        }
        for name in self.features:
            bank = joined.banks[name]
            row = int(joined.rows[name][j])
            a, b = int(bank.offsets[row]), int(bank.offsets[row + 1])
            # a copy: the bank may be a read-only memory map that torch cannot wrap
            item[name] = torch.from_numpy(np.array(bank.values[a:b], dtype=np.float16))
            item[name + TIMES_SUFFIX] = torch.from_numpy(
                np.array(bank.times_s[a:b], dtype=np.float32)
            )
        return item

    @property
    def sample_ids(self) -> tuple[str, ...]:
        """The samples' ids, in item order."""
        return tuple(self.joined.sample_ids[j] for j in self._index)

    @property
    def groups(self) -> npt.NDArray[np.int64]:
        """int64, shape (len(self),): each item's ``group``."""
        return self.joined.groups[self._index]

    @property
    def dims(self) -> dict[str, int]:
        """Each feature's dimension ``D``."""
        return {name: self.joined.banks[name].dim for name in self.features}

    def __repr__(self) -> str:
        dims = ", ".join(f"{n} ({d})" for n, d in self.dims.items())
        return f"FeatureDataset({len(self)} samples of split {self.split!r}: {dims})"
