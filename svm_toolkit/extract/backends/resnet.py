"""ResNet-50 image features (TIVM's visual features): 2048-d global-average pool per 1 fps frame.

The architecture is torchvision's ``resnet50`` and the weights a torchvision ImageNet state dict,
read from the torch hub cache (``$TORCH_HOME/hub/checkpoints``, ``TORCH_HOME`` defaulting to
``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``) or given with ``weights=``; nothing is
downloaded. The full state dict (with ``fc``) loads strictly, then ``fc`` is replaced by an
identity so the model returns the pooled features.

torchvision's two weight sets need different preprocessing (its ``ImageClassification``
transforms: bilinear short-side resize, centre crop 224, ImageNet mean/std):

* :class:`ResNet50` (``resnet50``): ``IMAGENET1K_V2``, ``resnet50-11ad3fa6.pth``, resize 232;
* :class:`ResNet50V1` (``resnet50_v1``): ``IMAGENET1K_V1``, ``resnet50-0676ba61.pth``, resize 256.

The variant is a property of the class, so each contract (stored in feature provenance) states
the resize it really used. A weights file whose name carries the other variant's hash prefix is
refused with a :class:`~svm_toolkit.errors.ConfigError` naming the right extractor; a renamed
file cannot be told apart (both sets have the same tensor names and shapes).

torch and torchvision are imported inside methods so listing extractors stays instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from svm_toolkit.errors import ConfigError
from svm_toolkit.extract.backends.efficientnet import frame_units
from svm_toolkit.extract.base import Extractor, Media, Units
from svm_toolkit.extract.contract import InputContract
from svm_toolkit.extract.precision import Precision

if TYPE_CHECKING:
    import torch

    from svm_toolkit.extract.cnn import Runner

IMAGENET_MEAN: Final = (0.485, 0.456, 0.406)
IMAGENET_STD: Final = (0.229, 0.224, 0.225)

Variant = Literal["V1", "V2"]

#: variant -> torchvision weights file (its name carries the first 8 hex of the file's sha256).
WEIGHTS_FILES: Final[dict[Variant, str]] = {
    "V1": "resnet50-0676ba61.pth",
    "V2": "resnet50-11ad3fa6.pth",
}
#: variant -> the Resize short side of torchvision's transforms for that weight set, pixels.
RESIZE: Final[dict[Variant, int]] = {"V1": 256, "V2": 232}
#: Extractor name of each variant.
NAMES: Final[dict[Variant, str]] = {"V1": "resnet50_v1", "V2": "resnet50"}


def torch_hub_checkpoints() -> Path:
    """Torch hub's checkpoint folder, as ``torch.hub.get_dir()`` locates it, without torch.

    ``$TORCH_HOME/hub/checkpoints``; ``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch``, else
    ``~/.cache/torch``.
    """
    home = os.environ.get("TORCH_HOME")
    if not home:
        home = os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def weights_help(variant: Variant) -> str:
    """Where to get a variant's weights, for :class:`~svm_toolkit.errors.MissingWeightsError`."""
    file = WEIGHTS_FILES[variant]
    return (
        f"torchvision ResNet50_Weights.IMAGENET1K_{variant} state dict {file} (torchvision "
        f"checks that its sha256 starts with the hash in the name, {file[9:17]}): get it from "
        f"https://download.pytorch.org/models/{file} and put it in "
        "$TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch/hub/checkpoints/), or pass "
        "--weights PATH"
    )


def _contract(variant: Variant) -> InputContract:
    return InputContract(
        modality="visual",
        dim=2048,
        step_s=1.0,
        fps=1.0,
        image_size=224,
        resize=RESIZE[variant],
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights=weights_help(variant),
    )


class ResNet50(Extractor):
    """torchvision ResNet-50 ``IMAGENET1K_V2`` pooled features, 2048-d per frame.

    Units: uint8 (T, 3, 224, 224), the frames' short side scaled to 232, centre crop 224.
    :meth:`embed` gives the raw global-average-pool output (float32, after ReLU, not
    normalised); :meth:`pool` is the base L2-normalised mean over frames.

    Args:
        weights: torchvision state dict file; ``None`` uses
            ``$TORCH_HOME/hub/checkpoints/resnet50-11ad3fa6.pth`` (:meth:`default_weights`).

    Raises:
        ConfigError: ``weights`` is named as the other variant's torchvision file.
    """

    name: ClassVar[str] = "resnet50"
    variant: ClassVar[Variant] = "V2"
    contract: ClassVar[InputContract] = _contract("V2")

    def __init__(self, weights: Path | None = None) -> None:
        super().__init__(weights)
        self._run: Runner | None = None
        if self.weights is not None:
            for other, file in WEIGHTS_FILES.items():
                if other != self.variant and file[:17] in Path(self.weights).name:
                    raise ConfigError(
                        f"{self.weights} is torchvision's IMAGENET1K_{other} ResNet-50, which "
                        f"is preprocessed with resize {RESIZE[other]}: use the extractor "
                        f"{NAMES[other]} instead of {self.name} (resize {RESIZE[self.variant]})"
                    )

    @classmethod
    def default_weights(cls) -> Path | None:
        """The torch hub cache's file for this variant, whether it exists or not."""
        return torch_hub_checkpoints() / WEIGHTS_FILES[cls.variant]

    def prepare(self, media: Media) -> Units:
        """Frames -> units: uint8 (T, 3, 224, 224) RGB (short side ``contract.resize``, crop 224).

        Raises:
            SampleError: ``decode_error`` when the media has no frames array.
        """
        return frame_units(self.name, self.contract, media)

    def build(self) -> torch.nn.Module:
        """Torchvision ``resnet50(weights=None)``, with its ``fc`` so full state dicts load."""
        import torchvision

        net: torch.nn.Module = torchvision.models.resnet50(weights=None)
        return net

    def load_state(self, model: torch.nn.Module, state: dict[str, Any]) -> None:
        """Load the full torchvision state dict strictly, then drop ``fc`` (features = pool)."""
        import torch

        model.load_state_dict(state, strict=True)
        model.fc = torch.nn.Identity()

    def load(self, device: torch.device | str = "cpu", precision: Precision = "fp32") -> None:
        """Load as :meth:`Extractor.load`, then build the device's fast forward (channels-last)."""
        from svm_toolkit.extract.cnn import fast_runner

        super().load(device, precision)
        assert self.model is not None and self.device is not None  # loaded
        self._run = fast_runner(self.model, self.device, self.precision)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, 224, 224) RGB frames -> float32 (N, 2048) pooled features."""
        import torch

        from svm_toolkit.extract.images import normalize

        if self._run is None:
            raise RuntimeError(f"{self.name}: call load(device) before embed()")
        with torch.inference_mode():
            out: torch.Tensor = self._run(normalize(batch, IMAGENET_MEAN, IMAGENET_STD))
        return out.float()


class ResNet50V1(ResNet50):
    """torchvision ResNet-50 ``IMAGENET1K_V1`` (``resnet50-0676ba61.pth``): resize 256, crop 224.

    Same as :class:`ResNet50` otherwise. Not in the default registry; register it as
    ``resnet50_v1`` to use the V1 weights.
    """

    name: ClassVar[str] = "resnet50_v1"
    variant: ClassVar[Variant] = "V1"
    contract: ClassVar[InputContract] = _contract("V1")
