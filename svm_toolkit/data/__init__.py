"""The public data API: a dataset's features as PyTorch batches, and its Mel units as arrays.

Train your own model on a dataset the toolkit built::

    from torch.utils.data import DataLoader
    from svm_toolkit.data import FeatureDataset, collate

    train = FeatureDataset("my_dataset", features=("efficientnet_lite0", "vggish"), split="train")
    loader = DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate, num_workers=2)
    for batch in loader:
        video = batch["efficientnet_lite0"]      # float32 (B, T_max, 1280), zero where padded
        mask = batch["efficientnet_lite0_mask"]  # bool (B, T_max), True on real steps
        music = batch["vggish"]                  # float32 (B, T_max', 128); batch["vggish_mask"]
        video_clip = (video * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        positives = batch["group"][:, None] == batch["group"][None, :]  # same song

* :class:`FeatureDataset` -- the samples of a split that have every requested feature; item =
  ``sample_id``, ``split``, ``music_id``, ``group`` and per feature its float16 steps (T, D) and
  ``<feature>_times_s`` (T,) seconds. Reads the committed, newest rows only.
* :func:`collate` -- pads ragged steps to (B, T_max, D) float32 (``dtype=torch.float16`` to
  keep half) with bool masks ``<feature>_mask``.
* :func:`join_features` -- the same join without torch (:class:`JoinedFeatures`): the bundled
  trainer loads through it.
* :func:`read_mel` / :func:`iter_mel` -- a recipe's Mel units, float32 (n, *unit_shape) per
  sample with their start times.

``FeatureDataset`` and ``collate`` import torch when first used; the rest does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from svm_toolkit.data.join import JoinedFeatures, join_features
from svm_toolkit.data.mel import Mel, iter_mel, read_mel

if TYPE_CHECKING:
    from svm_toolkit.data.dataset import FeatureDataset
    from svm_toolkit.data.padding import collate

__all__ = [
    "FeatureDataset",
    "JoinedFeatures",
    "Mel",
    "collate",
    "iter_mel",
    "join_features",
    "read_mel",
]


def __getattr__(name: str) -> Any:
    """Import the torch-backed names on first use (``import svm_toolkit`` stays light)."""
    value: Any
    if name == "FeatureDataset":
        from svm_toolkit.data.dataset import FeatureDataset as value
    elif name == "collate":
        from svm_toolkit.data.padding import collate as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
