"""Images for the visual extractors: resize + centre crop (CPU), normalise (on the device)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch


def resize_center_crop(
    frames: npt.NDArray[np.uint8], resize: int, size: int
) -> npt.NDArray[np.uint8]:
    """Scale frames so the short side is ``resize`` (bilinear, antialiased), crop the centre.

    This is torchvision's ``Resize(resize) + CenterCrop(size)`` on uint8 tensors.

    Args:
        frames: uint8, shape (T, H, W, 3), RGB.
        resize: short side after scaling, pixels.
        size: side of the square centre crop, pixels (<= ``resize``).

    Returns:
        uint8, shape (T, 3, size, size), RGB.
    """
    import torch
    import torch.nn.functional as F

    if len(frames) == 0:
        return np.zeros((0, 3, size, size), np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    scale = resize / min(h, w)
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    if new != (h, w):
        x = F.interpolate(x.float(), size=new, mode="bilinear", antialias=True, align_corners=False)
        x = x.round_().clamp_(0, 255).to(torch.uint8)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return x[:, :, top : top + size, left : left + size].contiguous().numpy()


def normalize(
    batch: torch.Tensor, mean: tuple[float, float, float], std: tuple[float, float, float]
) -> torch.Tensor:
    """uint8 (N, 3, S, S) on any device -> float32 (N, 3, S, S): ``(x / 255 - mean) / std``."""
    import torch

    m = torch.tensor(mean, device=batch.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=batch.device).view(1, 3, 1, 1)
    return (batch.float() / 255.0 - m) / s
