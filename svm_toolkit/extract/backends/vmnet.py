"""VM-NET / CBVMR music descriptors: 1140 handcrafted librosa statistics per video, no weights.

* :meth:`VMNetMusic.prepare` (decode worker) computes
  :func:`~svm_toolkit.extract.music_descriptors.music_descriptors` on the video's centre
  29.12 s. The result is one unit per video: data float32 (1, 1140), and times_s holding the
  clip's start in seconds.
* The model side is a pass-through. :meth:`VMNetMusic.build` is ``torch.nn.Identity``, and
  :meth:`VMNetMusic.load` needs no file. The runner batches, moves and pools these units like
  any model's.
* The steps are the raw descriptors: the ``embeddings`` column keeps them as computed (dB
  means, dB² variances and dB maxima, norms in the thousands), because VM-NET feeds them to its
  music branch as they are and any rescaling is the consumer's choice. The trainer and the
  evaluator read these steps, never the pooled vector.
* The pooled ``embedding`` is, as for every extractor, the L2-normalised mean of the steps
  (:meth:`Extractor.pool <svm_toolkit.extract.base.Extractor.pool>`): here the one descriptor
  divided by its norm. A pooled vector is meant for cosine similarity, where only the direction
  counts, and a raw norm of 1,100-16,700 would read differently from every other extractor's.
  float16 storage rounds both columns relative to each value (2^-11: about 1 at 1,500 raw,
  5e-4 of a unit component).

The layout and every constant are documented in :mod:`svm_toolkit.extract.music_descriptors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

import numpy as np

from svm_toolkit.errors import SampleError
from svm_toolkit.extract.base import Extractor, Media, Units
from svm_toolkit.extract.contract import InputContract
from svm_toolkit.extract.music_descriptors import DEFAULT_CONFIG, DIM, centre_clip, clip_descriptors
from svm_toolkit.extract.precision import Precision
from svm_toolkit.schema import Status

if TYPE_CHECKING:
    import torch

WEIGHTS_HELP: Final = "none: handcrafted librosa statistics (VM-NET, csehong/VM-NET)"


class VMNetMusic(Extractor):
    """VM-NET's 1140-d music descriptor of the centre 29.12 s of a video's audio.

    The descriptor takes the mean, variance and maximum of librosa features of the HPSS parts
    (Hong et al., arXiv 1704.06761; ``csehong/VM-NET``
    ``data/audio_feature_extractor/librosa_feature.py``). ``weights`` is accepted for interface
    compatibility and ignored.
    """

    name: ClassVar[str] = "vmnet_music"
    contract: ClassVar[InputContract] = InputContract(
        modality="audio",
        dim=DIM,
        step_s=DEFAULT_CONFIG.duration_s,
        sample_rate=16_000,
        recipe=None,
        weights=WEIGHTS_HELP,
    )
    has_network: ClassVar[bool] = False

    # -- CPU side -----------------------------------------------------------------------------

    def prepare(self, media: Media) -> Units:
        """One video's descriptor.

        Returns:
            ``data``: float32, shape (1, 1140). ``times_s``: float32, shape (1,), the start of
            the centre clip in seconds; it is 0 when the audio is shorter than 29.12 s and was
            zero-padded at the end.

        Raises:
            SampleError: ``no_audio`` when the video has no audio track or it is empty.
        """
        if media.audio is None or len(media.audio) == 0:
            raise SampleError(Status.NO_AUDIO, f"{self.name} needs an audio track; none found")
        clip = centre_clip(media.audio, media.sample_rate, DEFAULT_CONFIG)
        vector = clip_descriptors(clip.samples, DEFAULT_CONFIG)
        return Units(
            data=vector.reshape(1, DIM).astype(np.float32),
            times_s=np.asarray([clip.start_s], dtype=np.float32),
        )

    # -- model side ---------------------------------------------------------------------------

    @classmethod
    def default_weights(cls) -> Path | None:
        """None: there are no weights."""
        return None

    def build(self) -> torch.nn.Module:
        """A pass-through module (``torch.nn.Identity``): the descriptor is the embedding."""
        import torch

        return torch.nn.Identity()

    def check_weights(self) -> None:
        """Nothing to check: the descriptors have no weights."""

    def load(self, device: torch.device | str = "cpu", precision: Precision = "fp32") -> None:
        """Build the pass-through model on ``device``; no weights file is read.

        ``precision`` is ignored: the descriptors are computed in the decode workers, in float32.
        """
        import torch

        self.device = torch.device(device)
        self.set_precision(precision, self.device)
        self.model = self.build().eval().to(self.device)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Return the descriptors unchanged.

        Args:
            batch: float32, shape (N, 1140), units of any number of videos.

        Returns:
            float32, shape (N, 1140): the same values (no standardisation, no normalisation).
        """
        if self.model is None:
            raise RuntimeError(f"{self.name}: call load() before embed()")
        out: torch.Tensor = self.model(batch)
        return out.float().reshape(len(batch), DIM)
