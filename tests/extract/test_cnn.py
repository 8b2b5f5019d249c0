"""The CPU fast path of the image CNNs: a frozen channels-last graph equal to the eager model."""

from __future__ import annotations

import copy

import pytest
import torch

from svm_toolkit.extract.cnn import fast_runner
from svm_toolkit.models.efficientnet_lite import EfficientNetLite


@pytest.mark.parametrize("batch", [1, 3, 8])  # traced with 2 images: any batch size runs
@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet50"])
def test_the_frozen_graph_equals_the_eager_model(name: str, batch: int) -> None:
    import torchvision

    torch.manual_seed(0)
    eager = EfficientNetLite() if name == "efficientnet_lite0" else torchvision.models.resnet50()
    eager = eager.eval()
    run = fast_runner(copy.deepcopy(eager), torch.device("cpu"))
    images = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        expected, got = eager(images), run(images)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_the_model_is_left_in_channels_last_memory() -> None:
    model = EfficientNetLite().eval()
    fast_runner(model, torch.device("cpu"))
    weight = next(p for p in model.parameters() if p.ndim == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)
