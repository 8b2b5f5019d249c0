"""VGGish (Hershey et al., ICASSP 2017) in torch, with the YouTube-8M PCA postprocessor.

The network is the TensorFlow original (``tensorflow/models`` ``research/audioset/vggish``,
``vggish_slim.py``): VGG configuration "A" with its last conv group removed, on one
log-mel example of 96 frames x 64 bands:

=============  ======================================  ==============================
group          layers (3x3 convs, stride 1, pad 1)      output (C, frames, bands)
=============  ======================================  ==============================
conv1          conv 64, ReLU, max-pool 2x2               64 x 48 x 32
conv2          conv 128, ReLU, max-pool 2x2              128 x 24 x 16
conv3          conv 256, ReLU, conv 256, ReLU, pool      256 x 12 x 8
conv4          conv 512, ReLU, conv 512, ReLU, pool      512 x 6 x 4
fc1            12288 -> 4096, ReLU, 4096 -> 4096, ReLU
fc2            4096 -> 128, **no activation** (the ``vggish/embedding`` tensor)
=============  ======================================  ==============================

State-dict names follow the widely used torch port (harritaylor/torchvggish), so its converted
weights ``vggish-10086976.pth`` load as they are: ``features.{0,3,6,8,11,13}.{weight,bias}``
(the convs; ReLUs and pools sit at the other indices of the ``features`` Sequential) and
``embeddings.{0,2,4}.{weight,bias}`` (the three linear layers). torchvggish ends the embedding
MLP with a ReLU (``embeddings.5``, no parameters); the TF model's current definition has none,
so this module has none by default (:attr:`VGGishConfig.final_relu` restores it).

**Layout and flatten order.** The TF model is NHWC with the example as H = 96 frames,
W = 64 bands, C = 1. This module takes ``(N, 96, 64)`` (or ``(N, 1, 96, 64)``), runs the convs
NCHW with the same H/W meaning, and before the FC layers permutes the ``(N, 512, 6, 4)`` feature
map to NHWC ``(N, 6, 4, 512)`` and flattens it, so flat index = ``(h * 4 + w) * 512 + c``, the
order of TF's ``slim.flatten``. A TF ``fc1/fc1_1/weights`` kernel (12288, 4096) therefore only
needs transposing (:func:`convert_tf_variables`); conv kernels go HWIO -> OIHW. Max-pools are
2x2/2 with TF's ``SAME`` padding, which equals no padding here since every size is even.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

#: VGGish's fixed sizes (``vggish_params.py``).
NUM_FRAMES: Final = 96
NUM_BANDS: Final = 64
EMBEDDING_SIZE: Final = 128
#: The YT8M quantisation range (``QUANTIZE_MIN_VAL`` / ``QUANTIZE_MAX_VAL``).
QUANTIZE_MIN: Final = -2.0
QUANTIZE_MAX: Final = 2.0
#: Keys of ``vggish_pca_params.npz`` (``PCA_EIGEN_VECTORS_NAME`` / ``PCA_MEANS_NAME``).
PCA_EIGEN_VECTORS: Final = "pca_eigen_vectors"
PCA_MEANS: Final = "pca_means"
#: Where a torchvggish ``VGGish`` module's state dict keeps its postprocessor's parameters: the
#: torch.hub model (harritaylor/torchvggish ``torchvggish/vggish.py``, ``Postprocessor`` since
#: commit 48521ec) holds ``nn.Parameter`` s ``pca_eigen_vectors`` (128, 128) and ``pca_means``
#: (128, 1) under ``pproc``. (The PyPI release 0.2 keeps them outside the state dict.)
TORCHVGGISH_PCA_EIGEN_VECTORS: Final = "pproc.pca_eigen_vectors"
TORCHVGGISH_PCA_MEANS: Final = "pproc.pca_means"
#: The same matrix as the torch.hub model named it before commit 48521ec (commit 1bedc9d).
TORCHVGGISH_PCA_MATRIX_OLD: Final = "pproc.pca_matrix"


@dataclass(frozen=True, slots=True)
class VGGishConfig:
    """VGGish's sizes; the defaults are the published model.

    Attributes:
        width: channels of the first conv group; the groups have ``width * (1, 2, 4, 8)``
            (64, 128, 256, 512 in VGGish). Smaller values give a model for tests.
        hidden: width of the two hidden FC layers (4096).
        embedding: embedding size (128).
        final_relu: apply a ReLU to the embedding, as torchvggish (and the first TF release)
            does; the current TF definition does not (``False``).
    """

    width: int = 64
    hidden: int = 4096
    embedding: int = EMBEDDING_SIZE
    final_relu: bool = False


def _conv_plan(width: int) -> tuple[int | str, ...]:
    """The ``features`` Sequential as channels per conv and ``"M"`` per max-pool."""
    return (width, "M", 2 * width, "M", 4 * width, 4 * width, "M", 8 * width, 8 * width, "M")


class VGGish(nn.Module):
    """The VGGish network: log-mel examples -> raw 128-d embeddings (before PCA).

    Args:
        config: sizes; the default is the published model (72.1 M parameters).
    """

    def __init__(self, config: VGGishConfig = VGGishConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        channels = 1
        for step in _conv_plan(config.width):
            if step == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(step, int)
                layers += [nn.Conv2d(channels, step, kernel_size=3, padding=1), nn.ReLU(True)]
                channels = step
        self.features = nn.Sequential(*layers)
        flat = 8 * config.width * (NUM_FRAMES // 16) * (NUM_BANDS // 16)
        head: list[nn.Module] = [
            nn.Linear(flat, config.hidden),
            nn.ReLU(True),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(True),
            nn.Linear(config.hidden, config.embedding),
        ]
        if config.final_relu:
            head.append(nn.ReLU(True))
        self.embeddings = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed log-mel examples.

        Args:
            x: float, shape (N, 96, 64) or (N, 1, 96, 64): frames (10 ms each) x Mel bands,
                ``log(mel + 0.01)`` as :func:`svm_toolkit.preprocess.mel.vggish_examples` gives.

        Returns:
            shape (N, 128), the raw embedding (TF's ``vggish/embedding:0``), float32 unless
            autocast chose a lower precision.
        """
        if x.ndim == 3:
            x = x.unsqueeze(1)
        feats = self.features(x)  # (N, 8 * width, 6, 4)
        flat = feats.permute(0, 2, 3, 1).flatten(1)  # TF's NHWC flatten order
        out: torch.Tensor = self.embeddings(flat)
        return out


def convert_tf_variables(variables: Mapping[str, npt.NDArray[Any]]) -> dict[str, torch.Tensor]:
    """A state dict for :class:`VGGish` from the TF checkpoint's variables.

    Args:
        variables: TF variable name (``vggish/conv1/weights``, ``vggish/conv3/conv3_1/biases``,
            ``vggish/fc1/fc1_2/weights``, ``vggish/fc2/weights``...; an optional ``:0`` suffix is
            ignored) -> array, e.g. read with ``tf.train.load_checkpoint(...).get_tensor``.

    Returns:
        ``features.*`` / ``embeddings.*`` tensors: conv kernels HWIO -> OIHW, FC kernels
        (in, out) -> (out, in), biases as they are.

    Raises:
        KeyError: a variable is missing.
    """
    values = {name.removesuffix(":0"): value for name, value in variables.items()}
    scopes = {
        "features.0": "conv1",
        "features.3": "conv2",
        "features.6": "conv3/conv3_1",
        "features.8": "conv3/conv3_2",
        "features.11": "conv4/conv4_1",
        "features.13": "conv4/conv4_2",
        "embeddings.0": "fc1/fc1_1",
        "embeddings.2": "fc1/fc1_2",
        "embeddings.4": "fc2",
    }
    state: dict[str, torch.Tensor] = {}
    for prefix, scope in scopes.items():
        kernel = torch.as_tensor(np.asarray(values[f"vggish/{scope}/weights"], np.float32))
        bias = torch.as_tensor(np.asarray(values[f"vggish/{scope}/biases"], np.float32))
        weight = kernel.permute(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
        state[f"{prefix}.weight"] = weight.contiguous()
        state[f"{prefix}.bias"] = bias
    return state


def quantize(values: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """YT8M's 8-bit quantisation: clip to [-2, 2], ``(x + 2) * 255 / 4``, truncate to uint8.

    Truncation (``astype(np.uint8)``) as ``vggish_postprocess.py`` does, not rounding
    (``vggish_postprocess.py``; torchvggish rounds, the YT8M video extractor rounds too).

    Args:
        values: any shape.

    Returns:
        uint8, same shape; 0 for x <= -2, 255 for x >= 2.
    """
    clipped = np.clip(np.asarray(values, np.float64), QUANTIZE_MIN, QUANTIZE_MAX)
    scaled = (clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN))
    return scaled.astype(np.uint8)


class Postprocessor:
    """AudioSet/YT8M postprocessing of raw VGGish embeddings: PCA (with whitening) + 8 bits.

    ``pca = E (x - mu)``, then :func:`quantize` (``vggish_postprocess.py``). Computed in float64.

    Args:
        eigen_vectors: shape (128, 128), ``pca_eigen_vectors`` (rows are output dimensions,
            whitening included).
        means: shape (128,) or (128, 1), ``pca_means``.

    Raises:
        ValueError: wrong shapes.
    """

    def __init__(self, eigen_vectors: npt.ArrayLike, means: npt.ArrayLike) -> None:
        matrix = np.asarray(eigen_vectors, dtype=np.float64)
        mu = np.asarray(means, dtype=np.float64).reshape(-1)
        if matrix.ndim != 2 or matrix.shape[1] != mu.shape[0]:
            raise ValueError(
                f"bad PCA parameters: eigen vectors {matrix.shape}, means {mu.shape}; "
                f"expected ({EMBEDDING_SIZE}, {EMBEDDING_SIZE}) and ({EMBEDDING_SIZE},)"
            )
        self.eigen_vectors = matrix
        self.means = mu

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> Postprocessor:
        """From ``pca_eigen_vectors``/``pca_means`` or torchvggish's ``pproc.*`` state-dict keys.

        Raises:
            KeyError: neither pair of keys is present.
            ValueError: wrong shapes.
        """
        for matrix_key, means_key in (
            (PCA_EIGEN_VECTORS, PCA_MEANS),
            (TORCHVGGISH_PCA_EIGEN_VECTORS, TORCHVGGISH_PCA_MEANS),
            (TORCHVGGISH_PCA_MATRIX_OLD, TORCHVGGISH_PCA_MEANS),
        ):
            if matrix_key in params and means_key in params:
                return cls(_numpy(params[matrix_key]), _numpy(params[means_key]))
        raise KeyError(
            f"no PCA parameters: expected keys '{PCA_EIGEN_VECTORS}' and '{PCA_MEANS}' "
            f"(vggish_pca_params.npz) or '{TORCHVGGISH_PCA_EIGEN_VECTORS}' and "
            f"'{TORCHVGGISH_PCA_MEANS}' (a torchvggish VGGish state dict)"
        )

    @classmethod
    def from_file(cls, path: Path) -> Postprocessor:
        """From TF's ``vggish_pca_params.npz`` or a torch file holding the same keys.

        A ``.npz`` is read without pickles; anything else with ``torch.load(weights_only=True)``
        (torchvggish's ``vggish_pca_params-970ea276.pth`` or a torchvggish state dict).

        Raises:
            FileNotFoundError: no such file.
            KeyError: no PCA parameters in it.
            ValueError: wrong shapes, or not a readable file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(path)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return cls.from_mapping({key: npz[key] for key in npz.files})
        try:
            params = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
            raise ValueError(f"{path}: not readable as a torch file ({exc})") from None
        if not isinstance(params, Mapping):
            raise ValueError(f"{path}: holds a {type(params).__name__}, not a mapping")
        return cls.from_mapping(params)

    def pca(self, embeddings: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``E (x - mu)`` per row: shape (N, 128) -> (N, 128), float64, not clipped."""
        x = np.asarray(embeddings, dtype=np.float64)
        return (x - self.means) @ self.eigen_vectors.T

    def __call__(self, embeddings: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """Raw embeddings, shape (N, 128) -> PCA'd, clipped, 8-bit, uint8 (N, 128)."""
        return quantize(self.pca(embeddings))


def dequantize(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """8-bit codes back to the PCA'd scale: ``code * 4 / 255 - 2`` (YT8M's readers do this)."""
    scale = (QUANTIZE_MAX - QUANTIZE_MIN) / 255.0
    return (np.asarray(codes, np.float32) * np.float32(scale) + np.float32(QUANTIZE_MIN)).astype(
        np.float32
    )


def _numpy(value: Any) -> npt.NDArray[np.float64]:
    """A tensor or array-like as a float64 array."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)
