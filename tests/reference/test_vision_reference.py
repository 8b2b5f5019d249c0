"""Image geometry parity: our resize/crops against torchvision and ImageBind's reference code.

* :func:`~svm_toolkit.extract.images.resize_center_crop` against torchvision's
  ``Resize(r, bilinear, antialias=True) + CenterCrop(s)`` on uint8 tensors: equal (max abs
  diff 0).
* :func:`~svm_toolkit.extract.images.spatial_crops` against ImageBind's video transform
  (``imagebind/data.py``: pytorchvideo's ``ShortSideScale(224)``, ``SpatialCrop(224, 3)``) on
  the same frames as floats in [0, 1]: within the uint8 rounding, 0.5 / 255.
* ``imagebind_video``'s steps and pooled vector against the reference ``ImageBindModel.forward``
  (``imagebind/models/imagebind_model.py``, built small with random weights and loaded strictly
  into ours) on the same 5 clips x 3 crops: the mean of our steps is the reference's output
  (mean of the 15 unit embeddings) and the pooled vector is it L2-normalised, within 1e-5.

The frames are ffmpeg's ``testsrc2`` (gradients, edges, text) with temporal noise, cut to odd
sizes in RGB so no chroma subsampling evens them out.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Resize

from svm_toolkit.extract.backends.imagebind import ImageBindVideo
from svm_toolkit.extract.base import Media
from svm_toolkit.extract.decode import FramePlan, read_video_frames
from svm_toolkit.extract.images import (
    normalize,
    pytorchvideo_size,
    resize_center_crop,
    spatial_crops,
    torchvision_size,
)
from svm_toolkit.models.imagebind import ImageBindArch

#: (width, height): landscape, portrait, square, odd and extreme aspect ratios.
SIZES = [(451, 300), (300, 451), (641, 359), (1280, 720), (224, 224), (225, 1000), (333, 225)]
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def frames(width: int, height: int, count: int = 2) -> npt.NDArray[np.uint8]:
    """``count`` natural-looking RGB frames, uint8 (count, height, width, 3), from ffmpeg."""
    source = f"testsrc2=s={width + width % 2}x{height + height % 2}:r=1"
    graph = f"{source},noise=alls=30:allf=t,format=rgb24,crop={width}:{height}:0:0"
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", graph,
         "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(count, height, width, 3).copy()


@pytest.mark.parametrize(("resize", "crop"), [(256, 224), (224, 224)])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_resize_center_crop_equals_torchvision(
    width: int, height: int, resize: int, crop: int
) -> None:
    images = frames(width, height)
    chw = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    reference = Compose(
        [Resize(resize, InterpolationMode.BILINEAR, antialias=True), CenterCrop(crop)]
    )
    expected = reference(chw).numpy()
    resized = Resize(resize, InterpolationMode.BILINEAR, antialias=True)(chw)
    assert torchvision_size(height, width, resize) == tuple(resized.shape[2:])
    got = resize_center_crop(images, resize, crop)
    assert got.shape == expected.shape == (2, 3, crop, crop)
    assert np.abs(got.astype(int) - expected.astype(int)).max() == 0


def test_the_long_side_is_truncated_as_torchvision_does() -> None:
    assert torchvision_size(300, 451, 224) == (224, 336)  # 336.79: truncated, not 337
    assert torchvision_size(300, 451, 256) == (256, 384)  # 384.85
    assert torchvision_size(451, 300, 224) == (336, 224)
    for width, height in SIZES:  # ffmpeg's scale in the decode workers has the same geometry
        expected = torchvision_size(height, width, 224)[::-1]
        assert FramePlan(1.0, 224, None, (width, height)).output_size() == expected


def test_decoded_frames_are_close_to_torchvision_on_the_full_picture(tmp_path: Path) -> None:
    """ffmpeg's bilinear scale (the decode workers') vs torchvision on the native frames."""
    path = tmp_path / "odd.mkv"  # 641 x 359 lossless RGB: odd both ways
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=s=642x360:r=1:d=2,noise=alls=30:allf=t,format=rgb24,crop=641:359:0:0",
         "-c:v", "ffv1", str(path)],
        check=True, timeout=30,
    )  # fmt: skip
    native, _ = read_video_frames(path, FramePlan(1.0, 359, None, (641, 359)))
    assert native.shape == (2, 359, 641, 3)  # no scaling: the frames as stored
    scaled, _ = read_video_frames(path, FramePlan(1.0, 224, None, (641, 359)))
    assert scaled.shape == (2, 224, 399, 3)  # torchvision's 399, not 400
    ours = resize_center_crop(scaled, 224, 224).astype(int)
    expected = resize_center_crop(native, 224, 224).astype(int)  # = torchvision (tests above)
    diff = np.abs(ours - expected)
    assert diff.mean() < 0.5 and diff.max() <= 16  # swscale's bilinear, not torch's antialias


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_spatial_crops_equal_imagebind_video_transform(width: int, height: int) -> None:
    import pytorchvideo.transforms as pv_transforms
    from imagebind.data import NormalizeVideo, SpatialCrop

    images = frames(width, height)
    clip = torch.from_numpy(images).permute(3, 0, 1, 2).float() / 255.0  # (C, T, H, W)
    scaled = pv_transforms.ShortSideScale(224)(clip)
    assert tuple(scaled.shape[2:]) == pytorchvideo_size(height, width, 224)
    expected = torch.stack(SpatialCrop(224, num_crops=3)([scaled]))  # (crops, C, T, S, S)
    got = torch.from_numpy(spatial_crops(images, 224)).permute(0, 2, 1, 3, 4)  # same layout
    assert got.shape == expected.shape == (3, 3, 2, 224, 224)
    diff = (got.float() / 255.0 - expected).abs().max().item()
    assert diff <= 0.5 / 255 + 1e-6  # our uint8 rounding of the reference's floats
    # ImageBind normalises before cropping; ours normalises the crops on the device: same values
    normalised = NormalizeVideo(CLIP_MEAN, CLIP_STD)(clip)
    ours = normalize(torch.from_numpy(images).permute(0, 3, 1, 2), CLIP_MEAN, CLIP_STD)
    torch.testing.assert_close(ours.permute(1, 0, 2, 3), normalised, atol=1e-6, rtol=0)


#: A small ImageBind: the reference constructor's sizes and ours for the vision branch.
SMALL = {
    "kernel_size": (2, 32, 32),
    "out_embed_dim": 16,
    "vision_embed_dim": 32,
    "vision_num_blocks": 2,
    "vision_num_heads": 2,
    **{f"{m}_embed_dim": 16 for m in ("audio", "text", "depth", "thermal", "imu")},
    **{f"{m}_num_blocks": 1 for m in ("audio", "text", "depth", "thermal", "imu")},
    **{f"{m}_num_heads": 2 for m in ("audio", "text", "depth", "thermal", "imu")},
}
SMALL_ARCH = ImageBindArch(out_dim=16, vision_dim=32, vision_blocks=2, vision_heads=2, patch=32)


def test_imagebind_video_pools_as_the_reference_model(tmp_path: Path) -> None:
    from imagebind.data import NormalizeVideo
    from imagebind.models.imagebind_model import ImageBindModel

    torch.manual_seed(0)
    reference = ImageBindModel(**SMALL).eval()
    with torch.no_grad():  # move LayerNorms and biases off their 1 / 0 initialisation
        for param in reference.parameters():
            param.add_(0.05 * torch.randn_like(param))
    torch.save(reference.state_dict(), tmp_path / "imagebind_small.pth")
    ours = ImageBindVideo(weights=tmp_path / "imagebind_small.pth", arch=SMALL_ARCH)
    ours.load("cpu")  # strict load of the reference's vision entries

    images = frames(451, 300, count=10)  # 10 s at 1 fps, landscape
    units = ours.prepare(Media(images, np.arange(10, dtype=np.float32), None, 16_000))
    assert units.data.shape == (5, 3, 3, 2, 224, 224)
    steps = ours.embed(torch.from_numpy(units.data))
    pooled = torch.from_numpy(ours.pool(steps.numpy()))

    normalise = NormalizeVideo(CLIP_MEAN, CLIP_STD)
    clips = torch.from_numpy(units.data).flatten(0, 1).float() / 255.0  # (15, C, T, S, S)
    inputs = torch.stack([normalise(clip) for clip in clips])[None]  # (B=1, S=15, C, T, H, W)
    with torch.no_grad():
        expected = reference({"vision": inputs})["vision"][0]
    assert float(expected.norm()) < 1.0  # the reference's mean of unit vectors
    assert (steps.mean(dim=0) - expected).abs().max().item() <= 1e-5
    unit = expected / expected.norm()
    assert (pooled - unit).abs().max().item() <= 1e-5


def test_frames_already_at_the_short_side_are_only_cropped() -> None:
    images = frames(230, 224)  # pytorchvideo's floor(230 / 224 * 224) is 229
    assert pytorchvideo_size(224, 230, 224) == (224, 229)
    crops = spatial_crops(images, 224)
    chw = images.transpose(0, 3, 1, 2)
    for crop, left in zip(crops, (0, 3, 6), strict=True):  # 0, ceil(6 / 2), 230 - 224
        np.testing.assert_array_equal(crop, chw[:, :, :, left : left + 224])
