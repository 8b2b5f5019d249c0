"""Images for the visual extractors: resize + crops (CPU), normalise (on the device).

Two reference geometries, matched exactly:

* :func:`resize_center_crop` is torchvision's ``Resize(resize) + CenterCrop(size)`` on uint8
  tensors (``torchvision/transforms/functional.py``: ``_compute_resized_output_size``, ``resize``
  with ``antialias=True``, ``center_crop``).
* :func:`spatial_crops` is ImageBind's video transform (``imagebind/data.py``
  ``load_and_transform_video_data``): pytorchvideo's ``short_side_scale``
  (``pytorchvideo/transforms/functional.py``) and ImageBind's ``SpatialCrop`` / ``uniform_crop``.
"""

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

    This is torchvision's ``Resize(resize, antialias=True) + CenterCrop(size)`` on uint8
    tensors, pixel for pixel: the long side is truncated (``int(resize * long / short)``), the
    values are rounded back to uint8, and the crop starts at ``round((side - size) / 2)``
    (Python's round, half to even) on each axis.

    Args:
        frames: uint8, shape (T, H, W, 3), RGB.
        resize: short side after scaling, pixels.
        size: side of the square centre crop, pixels (<= ``resize``).

    Returns:
        uint8, shape (T, 3, size, size), RGB.
    """
    if len(frames) == 0:
        return np.zeros((0, 3, size, size), np.uint8)
    h, w = frames.shape[1:3]
    x = _scale(frames, torchvision_size(h, w, resize), antialias=True)
    top, left = round((x.shape[2] - size) / 2), round((x.shape[3] - size) / 2)
    return np.ascontiguousarray(x[:, :, top : top + size, left : left + size])


def torchvision_size(height: int, width: int, short: int) -> tuple[int, int]:
    """Height and width after torchvision's ``Resize(short)``: short side ``short``, long truncated.

    ``_compute_resized_output_size``: ``new_long = int(short * long / short_side)``; a 451 x 300
    (W x H) picture scaled to 224 becomes 336 x 224, not 337 x 224.
    """
    if width <= height:
        return int(short * height / width), short
    return short, int(short * width / height)


def pytorchvideo_size(height: int, width: int, short: int) -> tuple[int, int]:
    """Height and width after pytorchvideo's ``short_side_scale(x, short)``.

    ``floor(long / short_side * short)``, computed in that order as pytorchvideo does (the
    float product can differ from torchvision's ``short * long / short_side`` by one ulp).
    """
    if width < height:
        return math.floor(height / width * short), short
    return short, math.floor(width / height * short)


def _scale(
    frames: npt.NDArray[np.uint8], size: tuple[int, int], *, antialias: bool
) -> npt.NDArray[np.uint8]:
    """uint8 (T, H, W, 3) -> uint8 (T, 3, *size): bilinear (``align_corners=False``), rounded.

    Frames already that size, as ffmpeg's ``scale`` delivers them for a run's largest
    ``resize``, are only transposed (a view), and torch is not imported: decode workers that
    never scale start without it. The interpolation runs in float32 on contiguous NCHW, as
    torchvision's ``resize`` does on a uint8 tensor.
    """
    if size == frames.shape[1:3]:
        return frames.transpose(0, 3, 1, 2)
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()
    x = F.interpolate(
        x.float(), size=size, mode="bilinear", antialias=antialias, align_corners=False
    )
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

    The short side is first scaled to ``size`` as ImageBind's video transform does
    (pytorchvideo's ``ShortSideScale``: :func:`pytorchvideo_size`, bilinear, ``align_corners=
    False``, **no** antialiasing), then rounded to uint8 (the reference keeps floats in [0, 1]:
    at most 0.5 / 255 apart). Frames whose short side is already ``size`` (as the decode
    workers scale them) are only cropped: pytorchvideo's float ``floor(long / size * size)``
    would shave a column off 126 of the long sides 224-3999 at size 224 (230 -> 229) and
    resample them. Offsets follow ImageBind's ``uniform_crop``: 0, ``ceil((L - size) / 2)``,
    ``L - size`` along the long side (width when square), ``ceil((S - size) / 2)`` across it.

    Args:
        frames: uint8, shape (T, H, W, 3), RGB.
        size: crop side, pixels.

    Returns:
        uint8, shape (3, T, 3, size, size): crop, frame, channel, height, width.
    """
    h, w = frames.shape[1:3]
    target = (h, w) if min(h, w) == size else pytorchvideo_size(h, w, size)
    chw = _scale(frames, target, antialias=False)  # (T, 3, H, W)
    h, w = chw.shape[2:]
    top, left = math.ceil((h - size) / 2), math.ceil((w - size) / 2)
    if h > w:
        boxes = [(o, left) for o in (0, top, h - size)]
    else:
        boxes = [(top, o) for o in (0, left, w - size)]
    return np.stack([chw[:, :, y : y + size, x : x + size] for y, x in boxes])
