"""ResNet-50 extractor: torchvision's architecture with random weights saved to a tmp file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
import torchvision

from svm_toolkit.errors import ConfigError, MissingWeightsError, SampleError
from svm_toolkit.extract.backends.efficientnet import EfficientNetLite0
from svm_toolkit.extract.backends.resnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ResNet50,
    ResNet50V1,
    torch_hub_checkpoints,
)
from svm_toolkit.extract.base import Media
from svm_toolkit.extract.images import normalize, resize_center_crop
from svm_toolkit.extract.registry import get_extractor


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None)
    # Non-trivial BN statistics, so a wrong preprocessing or layer order would show.
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("resnet") / "resnet50-random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def extractor(weights: Path) -> ResNet50:
    ext = ResNet50(weights=weights)
    ext.load("cpu")
    return ext


def _media(frames: npt.NDArray[np.uint8]) -> Media:
    times = np.arange(len(frames), dtype=np.float32)
    return Media(frames=frames, frame_times_s=times, audio=None, sample_rate=16_000)


def _frames(n: int, seed: int, h: int = 240, w: int = 320) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_registered_and_contracts() -> None:
    assert get_extractor("resnet50") is ResNet50
    v2, v1 = ResNet50.contract, ResNet50V1.contract
    assert (v2.modality, v2.dim, v2.image_size, v2.fps) == ("visual", 2048, 224, 1.0)
    assert (v2.resize, v1.resize) == (232, 256)
    assert v2.mean == v1.mean == IMAGENET_MEAN and v2.std == v1.std == IMAGENET_STD
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in v2.weights
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in v1.weights


def test_default_weights_in_torch_hub_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert ResNet50.default_weights() == tmp_path / "th/hub/checkpoints/resnet50-11ad3fa6.pth"
    assert ResNet50V1.default_weights() == tmp_path / "th/hub/checkpoints/resnet50-0676ba61.pth"
    assert torch_hub_checkpoints() == Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert torch_hub_checkpoints() == tmp_path / "xdg/torch/hub/checkpoints"
    assert torch_hub_checkpoints() == Path(torch.hub.get_dir()) / "checkpoints"


def test_missing_weights_names_file_url_and_hash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as info:
        ResNet50().load("cpu")
    message = str(info.value)
    assert str(tmp_path / "hub/checkpoints/resnet50-11ad3fa6.pth") in message
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in message
    assert "sha256" in message and "11ad3fa6" in message


def test_wrong_weights_file() -> None:
    wrong = EfficientNetLite0.default_weights()  # a real state dict of another model
    assert wrong is not None
    with pytest.raises(MissingWeightsError, match="not resnet50 weights"):
        ResNet50(weights=wrong).load("cpu")


def test_variant_named_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="resnet50_v1"):
        ResNet50(weights=tmp_path / "resnet50-0676ba61.pth")
    with pytest.raises(ConfigError, match="use the extractor resnet50 "):
        ResNet50V1(weights=tmp_path / "resnet50-11ad3fa6.pth")


def test_full_state_dict_loads_strictly_and_fc_is_dropped(
    weights: Path, extractor: ResNet50
) -> None:
    state = torch.load(weights, weights_only=True, mmap=True)
    assert "fc.weight" in state and state["fc.weight"].shape == (1000, 2048)
    assert extractor.model is not None
    assert isinstance(extractor.model.fc, torch.nn.Identity)
    assert not extractor.model.training
    for key, value in extractor.model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


@pytest.fixture(scope="module")
def video_units(extractor: ResNet50) -> list[npt.NDArray[np.uint8]]:
    """Units of two videos of different sizes, one frame each (ResNet-50 is slow on CPU)."""
    videos = [_frames(1, 1), _frames(1, 2, h=360, w=270)]
    return [extractor.prepare(_media(v)).data for v in videos]


@pytest.fixture(scope="module")
def mixed(extractor: ResNet50, video_units: list[npt.NDArray[np.uint8]]) -> torch.Tensor:
    return extractor.embed(torch.from_numpy(np.concatenate(video_units)))


def test_embed_is_the_pooled_features(
    extractor: ResNet50, video_units: list[npt.NDArray[np.uint8]], mixed: torch.Tensor
) -> None:
    assert mixed.shape == (2, 2048) and mixed.dtype == torch.float32
    assert (mixed >= 0).all()  # pooled ReLU activations
    # Reference: torchvision's forward through every child before ``fc`` (conv1 ... avgpool).
    assert extractor.model is not None
    body = torch.nn.Sequential(*list(extractor.model.children())[:-1])
    with torch.no_grad():
        x = normalize(torch.from_numpy(np.concatenate(video_units)), IMAGENET_MEAN, IMAGENET_STD)
        expected = torch.flatten(body(x), 1)
    torch.testing.assert_close(mixed, expected, atol=1e-5, rtol=1e-4)


def test_mixed_batch_equals_per_video(
    extractor: ResNet50, video_units: list[npt.NDArray[np.uint8]], mixed: torch.Tensor
) -> None:
    alone = torch.cat([extractor.embed(torch.from_numpy(u)) for u in video_units])
    torch.testing.assert_close(mixed, alone, atol=1e-4, rtol=1e-4)
    pooled = extractor.pool(mixed.numpy())
    assert pooled.shape == (2048,) and np.isclose(np.linalg.norm(pooled), 1.0)


def test_v1_and_v2_resize_sizes() -> None:
    frames = _frames(2, 5, h=300, w=400)
    v2 = ResNet50(weights=Path("unused.pth")).prepare(_media(frames))
    v1 = ResNet50V1(weights=Path("unused.pth")).prepare(_media(frames))
    assert v2.data.shape == v1.data.shape == (2, 3, 224, 224)
    assert v2.data.dtype == v1.data.dtype == np.uint8
    np.testing.assert_array_equal(v2.data, resize_center_crop(frames, 232, 224))
    np.testing.assert_array_equal(v1.data, resize_center_crop(frames, 256, 224))
    assert not np.array_equal(v1.data, v2.data)
    np.testing.assert_array_equal(v2.times_s, [0.0, 1.0])
    with pytest.raises(SampleError):
        ResNet50(weights=Path("unused.pth")).prepare(Media(None, None, None, 16_000))
