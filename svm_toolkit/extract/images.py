"""Images for the visual extractors: resize + crops (CPU), normalise (on the device)."""

from __future__ import annotations

import math
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
    if len(frames) == 0:
        return np.zeros((0, 3, size, size), np.uint8)
    x = _short_side(frames, resize, size)
    top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
    return np.ascontiguousarray(x[:, :, top : top + size, left : left + size])


def _short_side(frames: npt.NDArray[np.uint8], resize: int, least: int) -> npt.NDArray[np.uint8]:
    """uint8 (T, H, W, 3) -> uint8 (T, 3, H', W'), short side ``resize``, neither under ``least``.

    Bilinear with antialiasing (torch). Frames already that size, as ffmpeg's ``scale`` delivers
    them for a run's largest ``resize``, are only transposed (a view), and torch is not imported:
    decode workers that never scale start without it.
    """
    h, w = frames.shape[1:3]
    scale = resize / min(h, w)
    new = (max(least, round(h * scale)), max(least, round(w * scale)))
    if new == (h, w):
        return frames.transpose(0, 3, 1, 2)
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    x = F.interpolate(x.float(), size=new, mode="bilinear", antialias=True, align_corners=False)
    scaled: npt.NDArray[np.uint8] = x.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return scaled


def normalize(
    batch: torch.Tensor, mean: tuple[float, float, float], std: tuple[float, float, float]
) -> torch.Tensor:
    """uint8 (N, 3, ...) on any device -> float32, same shape: ``(x / 255 - mean) / std``.

    Images (N, 3, S, S) and clips (N, 3, T, S, S) alike: the statistics are per channel (dim 1).
    """
    import torch

    shape = (1, 3) + (1,) * (batch.ndim - 2)
    m = torch.tensor(mean, device=batch.device).view(shape)
    s = torch.tensor(std, device=batch.device).view(shape)
    return (batch.float() / 255.0 - m) / s


def spatial_crops(frames: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.uint8]:
    """Three square crops along the long side: start, centre, end (ImageBind's ``SpatialCrop``).

    The short side is scaled to ``size`` first when it is not already (bilinear, antialiased;
    ImageBind's ``ShortSideScale``).
    Offsets follow pytorchvideo's ``uniform_crop``: 0, ``ceil((L - size) / 2)``, ``L - size``.

    Args:
        frames: uint8, shape (T, H, W, 3), RGB.
        size: crop side, pixels.

    Returns:
        uint8, shape (3, T, 3, size, size): crop, frame, channel, height, width.
    """
    chw = _short_side(frames, size, size)  # (T, 3, H, W)
    h, w = chw.shape[2:]
    long_side = max(h, w)
    offsets = (0, math.ceil((long_side - size) / 2), long_side - size)
    if w >= h:
        crops = [chw[:, :, :size, o : o + size] for o in offsets]
    else:
        crops = [chw[:, :, o : o + size, :size] for o in offsets]
    return np.stack(crops)
