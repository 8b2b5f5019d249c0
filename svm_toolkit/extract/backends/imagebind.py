"""ImageBind-Huge vision and audio extractors (MVBind's features), 1024-d.

Per-frame (vision) and per-clip (audio) vectors are unit norm; imagebind_video's per-clip steps
are means of 3 unit crop embeddings, as ImageBind averages them. Pooled vectors are unit norm.

Both load the official ``imagebind_huge.pth`` (all six modalities) into the project's own model
code (:mod:`svm_toolkit.models.imagebind`), keeping only their branch's entries. torch, the
architecture and the Mel recipe are imported inside methods so listing extractors stays instant.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np

from svm_toolkit.errors import SampleError
from svm_toolkit.extract.base import Extractor, Media, Units, cache_dir
from svm_toolkit.extract.contract import InputContract

if TYPE_CHECKING:
    import torch

    from svm_toolkit.models.imagebind import Branch, ImageBindArch

WEIGHTS_URL: Final = "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"
WEIGHTS_FILE: Final = "imagebind_huge.pth"
WEIGHTS_HELP: Final = (
    f"download the official ImageBind-Huge checkpoint from {WEIGHTS_URL} (CC-BY-NC 4.0) and save "
    f"it as {WEIGHTS_FILE} in the svm_toolkit cache ($SVM_CACHE_DIR, else "
    "$XDG_CACHE_HOME/svm_toolkit, else ~/.cache/svm_toolkit), or pass --weights PATH; one file "
    "serves imagebind_vision, imagebind_video and imagebind_audio"
)

#: ImageBind's video sampling: clips per video and their length, seconds.
CLIPS_PER_VIDEO: Final = 5
CLIP_S: Final = 2.0

#: CLIP's RGB statistics, which ImageBind's vision transform normalises with.
CLIP_MEAN: Final = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: Final = (0.26862954, 0.26130258, 0.27577711)


class _ImageBind(Extractor):
    """What both branches share: the weights file, building, loading one branch.

    Args:
        weights: ``imagebind_huge.pth`` (or a state dict of this branch only); ``None`` uses
            :meth:`default_weights`.
        arch: the model sizes; ``None`` is ImageBind-Huge (tests pass tiny ones).
    """

    branch: ClassVar[Branch]

    def __init__(self, weights: Path | None = None, *, arch: ImageBindArch | None = None) -> None:
        super().__init__(weights)
        self.arch = arch

    @classmethod
    def default_weights(cls) -> Path | None:
        """``<cache>/imagebind_huge.pth`` (see :func:`cache_dir`), whether it exists or not."""
        return cache_dir() / WEIGHTS_FILE

    def build(self) -> torch.nn.Module:
        """The branch with random weights."""
        from svm_toolkit.models.imagebind import ImageBindEncoder

        return ImageBindEncoder(self.branch, self.arch)

    def load_state(self, model: torch.nn.Module, state: dict[str, Any]) -> None:
        """Load this branch's ``modality_*.<branch>.*`` entries strictly.

        Other modalities' entries are ignored, so both the full checkpoint and a state dict of
        this branch only load; a missing or misshapen entry raises ``RuntimeError``.
        """
        from svm_toolkit.models.imagebind import branch_state

        if not isinstance(state, dict):
            raise ValueError(f"expected a state dict, found a {type(state).__name__}")
        model.load_state_dict(branch_state(state, self.branch), strict=True)

    def _model(self) -> torch.nn.Module:
        if self.model is None:
            raise RuntimeError(f"{self.name}: call load(device) before embed()")
        return self.model


class ImageBindVision(_ImageBind):
    """ImageBind-Huge image embeddings of the 1 fps frames, one 1024-d unit vector per frame.

    Each frame is prepared as ImageBind prepares an image: short side scaled to 224, centre crop
    224, CLIP mean/std. ImageBind scales with PIL bicubic; this uses
    :func:`~svm_toolkit.extract.images.resize_center_crop` (bilinear, antialiased), which only
    acts when the decoded frames' short side is not already 224. The model repeats the image to
    2 frames (``PadIm2Video``), as ImageBind does for images.
    """

    name: ClassVar[str] = "imagebind_vision"
    branch: ClassVar[Branch] = "vision"
    contract: ClassVar[InputContract] = InputContract(
        modality="visual",
        dim=1024,
        step_s=1.0,
        fps=1.0,
        image_size=224,
        resize=224,
        mean=CLIP_MEAN,
        std=CLIP_STD,
        weights=WEIGHTS_HELP,
    )

    def prepare(self, media: Media) -> Units:
        """Frames -> units.

        Returns:
            ``data``: uint8, shape (T, 3, 224, 224), RGB; ``times_s``: float32 (T,), the frame
            times, seconds.

        Raises:
            SampleError: ``decode_error`` when the media has no frames array.
        """
        from svm_toolkit.extract.images import resize_center_crop

        if media.frames is None:
            raise SampleError("decode_error", f"{self.name}: no decoded frames")
        size = self.contract.image_size or 224
        data = resize_center_crop(media.frames, self.contract.resize or size, size)
        if media.frame_times_s is not None:
            times = np.asarray(media.frame_times_s, dtype=np.float32)
        else:
            times = (np.arange(len(data)) / (self.contract.fps or 1.0)).astype(np.float32)
        return Units(data, times)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, 224, 224) frames -> float32 (N, 1024), unit norm."""
        import torch

        from svm_toolkit.extract.images import normalize

        model = self._model()
        with torch.inference_mode():
            x = normalize(batch, CLIP_MEAN, CLIP_STD)
            out: torch.Tensor = model(x)
        return out.float()


class ImageBindVideo(_ImageBind):
    """ImageBind-Huge video embeddings sampled as ImageBind samples a video: clips x frames x crops.

    ImageBind's ``load_and_transform_video_data`` (facebookresearch/ImageBind
    ``imagebind/data.py``) takes 5 clips of 2 s placed by pytorchvideo's
    ``ConstantClipsPerVideoSampler``, the first and last frame of each clip
    (``UniformTemporalSubsample(2)``), short side 224 and three 224 px crops along the long
    side (``SpatialCrop(224, num_crops=3)``: start, centre, end;
    :func:`~svm_toolkit.extract.images.spatial_crops`). ``ImageBindModel.forward``
    (``imagebind/models/imagebind_model.py``) flattens the 15 crops into the batch, L2-normalises
    each embedding (the vision postprocessor) and returns their mean, **not** re-normalised.

    Here each clip is one time step: the mean of its 3 crops' unit embeddings, not re-normalised
    (norm <= 1), so the mean of the 5 steps is ImageBind's video embedding itself. :meth:`pool`
    (the base class's mean, then L2) returns it L2-normalised, like every pooled ``embedding``:
    the same direction, so cosine similarities are ImageBind's.

    The frames are the decoded ones (``--fps``, 1 by default) nearest the clip's start and end,
    where ImageBind picks them at the video's own frame rate: pass ``--fps 10`` or more for
    frames within 0.05 s of ImageBind's.
    """

    name: ClassVar[str] = "imagebind_video"
    branch: ClassVar[Branch] = "vision"
    contract: ClassVar[InputContract] = dataclasses.replace(ImageBindVision.contract, step_s=CLIP_S)

    def prepare(self, media: Media) -> Units:
        """Frames -> one unit per clip.

        Returns:
            ``data``: uint8, shape (5, 3 crops, 3, 2 frames, 224, 224), RGB; ``times_s``:
            float32 (5,), the clip starts, seconds.

        Raises:
            SampleError: ``decode_error`` when the media has no frames.
        """
        from svm_toolkit.extract.images import spatial_crops
        from svm_toolkit.preprocess.mel import clip_starts

        if media.frames is None or not len(media.frames):
            raise SampleError("decode_error", f"{self.name}: no decoded frames")
        fps = self.contract.fps or 1.0
        times = (
            np.arange(len(media.frames)) / fps
            if media.frame_times_s is None
            else np.asarray(media.frame_times_s, np.float64)
        )
        duration = float(times[-1]) + 1 / fps
        starts = clip_starts(duration, CLIP_S, CLIPS_PER_VIDEO)
        clips = []
        for start in starts:
            first = int(np.abs(times - start).argmin())
            last = int(np.abs(times - (start + CLIP_S - 1 / fps)).argmin())
            pair = spatial_crops(media.frames[[first, last]], self.contract.image_size or 224)
            clips.append(pair.transpose(0, 2, 1, 3, 4))  # (crops, 3, frames, S, S)
        return Units(np.stack(clips), np.asarray(starts, dtype=np.float32))

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3 crops, 3, 2, 224, 224) clips -> float32 (N, 1024).

        Each row is the mean of the clip's 3 crop embeddings (each unit norm), not
        re-normalised, as ``ImageBindModel.forward`` averages them: norm <= 1.
        """
        import torch

        from svm_toolkit.extract.images import normalize

        model = self._model()
        n, crops = batch.shape[:2]
        with torch.inference_mode():
            x = normalize(batch.flatten(0, 1), CLIP_MEAN, CLIP_STD)
            out: torch.Tensor = model(x).float().view(n, crops, -1).mean(dim=1)
        return out


class ImageBindAudio(_ImageBind):
    """ImageBind-Huge audio embeddings: one 1024-d unit vector per 2 s clip, 3 clips per video.

    Units are ImageBind's inputs (:func:`~svm_toolkit.preprocess.mel.imagebind_fbank`: 3 clips of
    2 s placed as pytorchvideo's ``ConstantClipsPerVideoSampler`` places them, 128 x 204 Kaldi
    fbank, normalised). ImageBind multiplies the audio embedding by a fixed logit scale of 20;
    :meth:`embed` returns it re-normalised to unit norm, and :meth:`pool` (mean, then L2) gives
    ImageBind's video embedding (mean over clips) re-normalised.
    """

    name: ClassVar[str] = "imagebind_audio"
    branch: ClassVar[Branch] = "audio"
    contract: ClassVar[InputContract] = InputContract(
        modality="audio",
        dim=1024,
        step_s=2.0,
        sample_rate=16_000,
        recipe="imagebind",
        weights=WEIGHTS_HELP,
    )

    def prepare(self, media: Media) -> Units:
        """Waveform -> units.

        Returns:
            ``data``: float32, shape (3, 1, 128, 204), normalised log-Mel clips; ``times_s``:
            float32 (3,), the clip starts, seconds.

        Raises:
            SampleError: ``no_audio`` when there is no waveform or it is empty.
        """
        from svm_toolkit.preprocess.mel import ImageBindAudio as Constants
        from svm_toolkit.preprocess.mel import clip_starts, imagebind_fbank

        if media.audio is None or len(media.audio) == 0:
            raise SampleError("no_audio", f"{self.name}: the video has no audio")
        config = Constants()
        if media.sample_rate != config.sample_rate:
            raise ValueError(
                f"{self.name} reads {config.sample_rate} Hz audio, got {media.sample_rate} Hz"
            )
        data = imagebind_fbank(media.audio, config)
        starts = clip_starts(
            len(media.audio) / config.sample_rate, config.clip_duration_s, config.clips_per_video
        )
        return Units(data, np.asarray(starts, dtype=np.float32))

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """float32 (N, 1, 128, 204) clips -> float32 (N, 1024), unit norm (the x20 scale undone)."""
        import torch
        import torch.nn.functional as F

        model = self._model()
        with torch.inference_mode():
            out: torch.Tensor = model(batch.float())
            return F.normalize(out.float(), dim=-1)
