"""The extractor interface: prepare inputs on CPU (decode workers), embed batches on a device.

An extractor works in two halves so that decoding and inference overlap and batches mix videos:

* :meth:`Extractor.prepare` runs in a decode worker (a process, no model): it turns one video's
  decoded media into model-ready *units*, one per time step, plus their start times;
* :meth:`Extractor.embed` runs in the model process: it maps a batch of units, stacked across
  any number of videos, to one embedding per unit.

Weights are loaded by :meth:`Extractor.load` from a state dict file (``weights_only=True``).
"""

from __future__ import annotations

import logging
import os
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import MissingWeightsError
from svm_toolkit.extract.contract import InputContract
from svm_toolkit.extract.precision import Precision, Resolved, resolve_precision
from svm_toolkit.io.digest import file_sha256

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Media:
    """One video's decoded inputs, as a decode worker hands them to :meth:`Extractor.prepare`.

    Attributes:
        frames: uint8, shape (T, H, W, 3), RGB, cropped and scaled so the short side is the
            largest ``resize`` the visual extractors asked for; ``None`` when no visual
            extractor runs.
        frame_times_s: float32, shape (T,), presentation time of each frame, seconds.
        audio: float32, shape (samples,), mono at ``sample_rate``; ``None`` when no audio
            extractor runs or the video has no audio.
        sample_rate: Hz.
    """

    frames: npt.NDArray[np.uint8] | None
    frame_times_s: npt.NDArray[np.float32] | None
    audio: npt.NDArray[np.float32] | None
    sample_rate: int


@dataclass(frozen=True, slots=True)
class Units:
    """Model-ready inputs of one video.

    Attributes:
        data: shape (T, ...) with the unit shape the extractor's :meth:`Extractor.embed` takes
            (uint8 images, float32 spectrograms...).
        times_s: float32, shape (T,), start time of each unit, seconds.
    """

    data: npt.NDArray[Any]
    times_s: npt.NDArray[np.float32]


class Extractor(ABC):
    """A feature extractor; subclasses set :attr:`name` and :attr:`contract`.

    Args:
        weights: state dict file; ``None`` uses :meth:`default_weights` (an error if that is
            ``None`` too and the model has weights).
    """

    name: ClassVar[str]
    contract: ClassVar[InputContract]
    has_network: ClassVar[bool] = True
    """Whether :meth:`embed` runs a network (its precision then follows ``--precision``)."""

    def __init__(self, weights: Path | None = None) -> None:
        self.weights = weights if weights is not None else self.default_weights()
        self.model: torch.nn.Module | None = None
        self.device: torch.device | None = None
        self.precision: Resolved = "fp32"

    # -- CPU side -----------------------------------------------------------------------------

    @abstractmethod
    def prepare(self, media: Media) -> Units:
        """Turn one video's decoded media into units (runs in decode workers, no model)."""

    # -- model side ---------------------------------------------------------------------------

    @classmethod
    def default_weights(cls) -> Path | None:
        """Weights used when none are given (bundled or in the cache), else ``None``."""
        return None

    @abstractmethod
    def build(self) -> torch.nn.Module:
        """The architecture with random weights (loading fills them in)."""

    def load(self, device: torch.device | str = "cpu", precision: Precision = "fp32") -> None:
        """Build the model, load the weights file, move it to ``device`` in eval mode.

        Args:
            device: where the model runs.
            precision: what :meth:`embed` computes in (``auto``: bf16 where the device has it;
                :mod:`svm_toolkit.extract.precision`); sets :attr:`precision`.

        Raises:
            MissingWeightsError: no weights file, or one that does not fit the architecture.
        """
        import torch

        model = self.build()
        self.check_weights()
        assert self.weights is not None  # checked
        try:
            state = torch.load(self.weights, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:  # HTML, empty, truncated
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MissingWeightsError(
                f"{self.weights}: not a torch checkpoint ({reason}); {self.contract.weights}"
            ) from None
        if not isinstance(state, dict):
            raise MissingWeightsError(
                f"{self.weights}: holds a {type(state).__name__}, not a state dict; "
                + self.contract.weights
            )
        try:
            self.load_state(model, state)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise MissingWeightsError(
                f"{self.weights}: not {self.name} weights ({str(exc).splitlines()[0]}); "
                + self.contract.weights
            ) from None
        self.device = torch.device(device)
        self.set_precision(precision, self.device)
        self.model = model.eval().to(self.device)

    def set_precision(self, requested: Precision, device: torch.device) -> None:
        """Set :attr:`precision` to what ``requested`` means on ``device`` (:meth:`load` calls it).

        Extractors without a network (:attr:`has_network` false) always compute in fp32.
        """
        self.precision = resolve_precision(requested, device) if self.has_network else "fp32"

    def check_weights(self) -> None:
        """Raise :class:`MissingWeightsError` now if the weights file is missing.

        Models without weights (handcrafted features) override this to do nothing.
        """
        if self.weights is None or not Path(self.weights).is_file():
            raise MissingWeightsError(self.missing_weights_message())

    def load_state(self, model: torch.nn.Module, state: dict[str, Any]) -> None:
        """Put a state dict into the model (strict); override to convert names first."""
        model.load_state_dict(state, strict=True)

    def missing_weights_message(self) -> str:
        """What to tell the user when the weights file is missing."""
        where = self.weights if self.weights is not None else "no file given"
        return f"{self.name} needs its weights ({where}): {self.contract.weights}"

    @abstractmethod
    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Embed units stacked across videos.

        Args:
            batch: shape (N, *unit shape) on :attr:`device`.

        Returns:
            float32, shape (N, D).
        """

    def pool(self, steps: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One vector per video from its time steps, shape (T, D) -> (D,): L2-normalised mean."""
        mean = steps.mean(axis=0) if len(steps) else np.zeros(self.contract.dim, np.float32)
        norm = float(np.linalg.norm(mean))
        return (mean / norm if norm > 0 else mean).astype(np.float32)


def cache_dir() -> Path:
    """The toolkit's weights cache folder.

    ``$SVM_CACHE_DIR``, else ``$XDG_CACHE_HOME/svm_toolkit``, else ``~/.cache/svm_toolkit``.
    """
    if explicit := os.environ.get("SVM_CACHE_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "svm_toolkit"


#: Hex SHA-256 of a file (weights provenance).
sha256 = file_sha256
