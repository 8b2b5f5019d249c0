"""``--precision``: which format ``auto`` picks, and bf16 features staying close to fp32."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision

from svm_toolkit.errors import ConfigError
from svm_toolkit.extract.backends.efficientnet import EfficientNetLite0
from svm_toolkit.extract.backends.vggish import VGGish
from svm_toolkit.extract.backends.vmnet import VMNetMusic
from svm_toolkit.extract.batching import embed_batch
from svm_toolkit.extract.cnn import fast_runner
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.images import resize_center_crop
from svm_toolkit.extract.precision import autocast, native_bf16, resolve_precision
from svm_toolkit.models.efficientnet_lite import EfficientNetLite
from tests.extract.test_efficientnet import MILITARY_UNIFORM, grace_hopper  # noqa: F401

CPU = torch.device("cpu")


def cosines(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.mark.parametrize(("probe", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_only_on_cpus_that_have_it(
    monkeypatch: pytest.MonkeyPatch, probe: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: probe)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert native_bf16(CPU) is probe
    assert resolve_precision("auto", CPU) == expected
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"  # asked for: emulated where not native


def test_an_unknown_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'fp16'.*auto, bf16, fp32"):
        ExtractConfig(precision="fp16")  # type: ignore[arg-type]


NETWORKS = {
    "efficientnet_lite0": (EfficientNetLite, (3, 224, 224)),
    "resnet50": (torchvision.models.resnet50, (3, 224, 224)),
    "vggish": (lambda: VGGish().build(), (96, 64)),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_the_bf16_graph_stays_within_bf16_rounding_of_the_fp32_model(name: str) -> None:
    torch.manual_seed(0)
    build, unit_shape = NETWORKS[name]
    eager = build().eval()
    run = fast_runner(copy.deepcopy(eager), CPU, "bf16", unit_shape)
    images = torch.randn(3, *unit_shape)  # traced with 2: other batch sizes run too
    with torch.inference_mode():
        expected = eager(images)
        with autocast(CPU, "bf16"):
            got = run(images)
    assert got.dtype == torch.bfloat16  # it did compute in bf16
    assert cosines(got.float(), expected).min() > 0.999


def test_bf16_efficientnet_keeps_grace_hopper_in_uniform(
    grace_hopper: np.ndarray,  # noqa: F811
) -> None:
    square = torch.from_numpy(resize_center_crop(grace_hopper[None], 224, 224))
    runs = {}
    for precision in ("fp32", "bf16"):
        extractor = EfficientNetLite0()
        extractor.load("cpu", precision)
        assert extractor.precision == precision
        runs[precision] = (extractor, embed_batch(extractor, square.numpy()))
    fp32, bf16 = runs["fp32"][1], runs["bf16"][1]
    assert cosines(bf16, fp32).min() > 0.999
    head = runs["bf16"][0]._net()._fc
    with torch.inference_mode():
        logits = head(torch.from_numpy(bf16))
    assert int(logits.argmax()) == MILITARY_UNIFORM


def test_handcrafted_descriptors_always_say_fp32() -> None:
    extractor = VMNetMusic()
    extractor.load("cpu", "bf16")
    assert extractor.precision == "fp32"
