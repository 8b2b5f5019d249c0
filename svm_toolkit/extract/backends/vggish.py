"""VGGish audio embeddings (TIVM): 128-d per non-overlapping 0.96 s example of 16 kHz audio.

* :meth:`VGGish.prepare` (decode worker) computes
  :func:`~svm_toolkit.preprocess.mel.vggish_examples`: float32 units (T, 96, 64) starting at
  ``i * 0.96`` s.
* :meth:`VGGish.embed` returns the **raw** embeddings (TF's ``vggish/embedding``, no final ReLU,
  no PCA, not normalised), float32 (N, 128), as TIVM uses them.
* :func:`postprocess` is the optional AudioSet/YouTube-8M form (PCA with whitening, clip to
  [-2, 2], 8 bits by truncation): the runner applies it to the raw embeddings when the user
  passes the PCA parameters (``--vggish-pca PATH``: TF's ``vggish_pca_params.npz``, or a torch
  file with the same keys).

Weights: torchvggish's conversion of the TF checkpoint (see :data:`WEIGHTS_HELP`), loaded into
:class:`svm_toolkit.models.vggish.VGGish` (same state-dict names). torch is imported lazily.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import MissingWeightsError, SampleError
from svm_toolkit.extract.base import Extractor, Media, Units, cache_dir
from svm_toolkit.extract.contract import InputContract
from svm_toolkit.extract.precision import Precision
from svm_toolkit.preprocess.mel import VGGishAudio, vggish_examples
from svm_toolkit.schema import Status

if TYPE_CHECKING:
    import torch

    from svm_toolkit.extract.cnn import Runner
    from svm_toolkit.models.vggish import Postprocessor, VGGishConfig

logger = logging.getLogger(__name__)

#: torchvggish's release of the converted TF weights; torch.hub names files
#: ``<name>-<first hex digits of the file's SHA-256>.pth``, so its SHA-256 starts with 10086976.
WEIGHTS_URL: Final = (
    "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
)
WEIGHTS_FILE: Final = "vggish-10086976.pth"
WEIGHTS_SHA256_PREFIX: Final = "10086976"
#: The cache file name the extractor looks for first (then :data:`WEIGHTS_FILE`).
CACHE_FILE: Final = "vggish.pth"
#: TF's PCA parameters for :func:`postprocess` (torchvggish ships the same as
#: ``vggish_pca_params-970ea276.pth``).
PCA_URL: Final = "https://storage.googleapis.com/audioset/vggish_pca_params.npz"

WEIGHTS_HELP: Final = (
    f"torchvggish's conversion of the TensorFlow VGGish checkpoint, {WEIGHTS_FILE} (SHA-256 "
    f"starting {WEIGHTS_SHA256_PREFIX}, the hash prefix in its torch.hub file name), from "
    f"{WEIGHTS_URL}; save it as {CACHE_FILE} (or under its own name) in $SVM_CACHE_DIR, else "
    f"$XDG_CACHE_HOME/svm_toolkit, else ~/.cache/svm_toolkit, or pass its path with --weights"
)
PCA_HELP: Final = (
    f"VGGish's PCA parameters: TF's vggish_pca_params.npz ({PCA_URL}) or torchvggish's "
    "vggish_pca_params-970ea276.pth (keys pca_eigen_vectors, pca_means)"
)


class VGGish(Extractor):
    """VGGish embeddings, 128-d every 0.96 s (Hershey et al., ICASSP 2017).

    The model of ``tensorflow/models`` ``research/audioset/vggish``.

    Args:
        weights: state dict file (torchvggish's ``vggish-10086976.pth`` or this model's own
            ``state_dict()``); ``None`` looks in the cache (:meth:`default_weights`).
        config: model sizes; ``None`` is the published VGGish (tests pass a small one).

    Attributes:
        postprocessor: the PCA postprocessor when the state dict carried torchvggish's
            ``pproc.pca_eigen_vectors`` / ``pproc.pca_means``, else ``None`` (never applied by
            :meth:`embed`).
        pca: the postprocessor :meth:`embed` applies (:meth:`use_pca`), else ``None``: raw.
    """

    name: ClassVar[str] = "vggish"
    contract: ClassVar[InputContract] = InputContract(
        modality="audio",
        dim=128,
        step_s=0.96,
        sample_rate=16_000,
        recipe="vggish",
        weights=WEIGHTS_HELP,
    )

    def __init__(self, weights: Path | None = None, config: VGGishConfig | None = None) -> None:
        super().__init__(weights)
        self.config = config
        self.postprocessor: Postprocessor | None = None
        self.pca: Postprocessor | None = None
        self._run: Runner | None = None

    def use_pca(self, pca_params: Path) -> None:
        """Make :meth:`embed` return the AudioSet/YT8M form (``--vggish-pca PATH``).

        Raises:
            MissingWeightsError: the parameters file is missing or invalid.
        """
        self.pca = load_postprocessor(Path(pca_params))

    # -- CPU side -----------------------------------------------------------------------------

    def prepare(self, media: Media) -> Units:
        """Log-mel examples of one video's audio.

        Returns:
            data float32 (T, 96, 64), T = whole 0.96 s examples (0 under 0.96 s of audio);
            times_s float32 (T,) = ``i * 0.96`` s.

        Raises:
            SampleError: ``no_audio`` when the video has no audio track.
            ValueError: audio not at 16 kHz (the runner resamples before calling).
        """
        if media.audio is None:
            raise SampleError(Status.NO_AUDIO, "vggish needs an audio track; the video has none")
        if media.sample_rate != self.contract.sample_rate:
            raise ValueError(
                f"vggish reads {self.contract.sample_rate} Hz audio, got {media.sample_rate} Hz"
            )
        examples = vggish_examples(media.audio)
        hop_s = VGGishAudio().example_hop_s
        times = (np.arange(len(examples), dtype=np.float64) * hop_s).astype(np.float32)
        return Units(data=np.ascontiguousarray(examples, dtype=np.float32), times_s=times)

    # -- model side ---------------------------------------------------------------------------

    @classmethod
    def default_weights(cls) -> Path:
        """The cached weights: ``vggish.pth``, else ``vggish-10086976.pth``, in :func:`cache_dir`.

        The first name when neither exists, so the error message names it.
        """
        folder = cache_dir()
        for name in (CACHE_FILE, WEIGHTS_FILE):
            if (folder / name).is_file():
                return folder / name
        return folder / CACHE_FILE

    def build(self) -> torch.nn.Module:
        """VGGish with random weights (the published sizes unless :attr:`config` says else)."""
        from svm_toolkit.models.vggish import VGGish as VGGishNet
        from svm_toolkit.models.vggish import VGGishConfig

        return VGGishNet(self.config if self.config is not None else VGGishConfig())

    def load(self, device: torch.device | str = "cpu", precision: Precision = "fp32") -> None:
        """Load as :meth:`Extractor.load`, then build the device's fast forward.

        On the CPU that is a frozen graph, in which bf16 casts the weights once, not per call.
        """
        from svm_toolkit.extract.cnn import fast_runner

        super().load(device, precision)
        assert self.model is not None and self.device is not None  # loaded
        self._run = fast_runner(self.model, self.device, self.precision, unit_shape=(96, 64))

    def load_state(self, model: torch.nn.Module, state: dict[str, Any]) -> None:
        """Load a torchvggish or own state dict (strict).

        torchvggish's ``pproc.pca_eigen_vectors`` / ``pproc.pca_means`` (present when the
        torch.hub ``VGGish`` module with ``postprocess=True`` was saved) are taken out of the
        state dict and kept as :attr:`postprocessor`.
        """
        from svm_toolkit.models.vggish import Postprocessor

        pproc = {key: value for key, value in state.items() if key.startswith("pproc.")}
        if pproc:
            self.postprocessor = Postprocessor.from_mapping(pproc)
            logger.info("%s: the state dict carries PCA parameters (pproc.*)", self.weights)
        model.load_state_dict(
            {key: value for key, value in state.items() if key not in pproc}, strict=True
        )

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw VGGish embeddings.

        Args:
            batch: float32, shape (N, 96, 64), log-mel examples of any number of videos.

        Returns:
            float32, shape (N, 128), not PCA'd, not normalised; with :meth:`use_pca`, the
            8-bit AudioSet/YT8M codes dequantised to [-2, 2].
        """
        import torch

        if self._run is None:
            raise RuntimeError("vggish: call load() before embed()")
        with torch.inference_mode():
            out: torch.Tensor = self._run(batch.to(self.device, dtype=torch.float32))
        if self.pca is None:
            return out.float()
        from svm_toolkit.models.vggish import dequantize

        codes = postprocess(out.float().cpu().numpy(), self.pca)
        return torch.from_numpy(dequantize(codes)).to(out.device)


@functools.lru_cache(maxsize=4)
def load_postprocessor(pca_params: Path) -> Postprocessor:
    """The PCA postprocessor from a parameters file (cached per path).

    Args:
        pca_params: TF's ``vggish_pca_params.npz``, or a torch file with keys
            ``pca_eigen_vectors`` / ``pca_means`` (or torchvggish's ``pproc.*``).

    Raises:
        MissingWeightsError: no such file, or no readable 128 x 128 PCA parameters in it.
    """
    from svm_toolkit.models.vggish import EMBEDDING_SIZE, Postprocessor

    try:
        post = Postprocessor.from_file(Path(pca_params))
    except FileNotFoundError:
        raise MissingWeightsError(
            f"vggish PCA parameters not found ({pca_params}): {PCA_HELP}"
        ) from None
    except (KeyError, ValueError) as exc:
        raise MissingWeightsError(
            f"{pca_params}: not VGGish PCA parameters ({str(exc).splitlines()[0]}); {PCA_HELP}"
        ) from None
    if post.eigen_vectors.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE):
        raise MissingWeightsError(
            f"{pca_params}: PCA matrix has shape {post.eigen_vectors.shape}, expected "
            f"({EMBEDDING_SIZE}, {EMBEDDING_SIZE}); {PCA_HELP}"
        )
    return post


def postprocess(
    embeddings: npt.NDArray[np.floating], pca_params: Path | Postprocessor
) -> npt.NDArray[np.uint8]:
    """AudioSet/YT8M form of raw VGGish embeddings (used for ``--vggish-pca PATH``).

    ``E (x - mu)`` (PCA with whitening), clip to [-2, 2], ``(x + 2) * 255 / 4`` truncated to
    uint8, exactly as TF's ``vggish_postprocess.py``.
    :func:`svm_toolkit.models.vggish.dequantize` maps the codes back to [-2, 2].

    Args:
        embeddings: float, shape (N, 128), from :meth:`VGGish.embed`.
        pca_params: the parameters file (see :func:`load_postprocessor`) or a loaded
            :class:`~svm_toolkit.models.vggish.Postprocessor`.

    Returns:
        uint8, shape (N, 128).

    Raises:
        MissingWeightsError: the parameters file is missing or invalid.
    """
    post = (
        load_postprocessor(Path(pca_params)) if isinstance(pca_params, str | Path) else pca_params
    )
    return post(np.asarray(embeddings).reshape(-1, post.means.shape[0]))
