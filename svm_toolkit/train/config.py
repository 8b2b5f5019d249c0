"""Frozen configs of the bundled baselines and their training, with named presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from svm_toolkit.errors import ConfigError
from svm_toolkit.names import unknown_name

LossName = Literal["infonce", "triplet"]

#: The registered names (the registries in ``models`` and ``losses`` are keyed by these; kept
#: here so that the CLI can list them without importing torch).
MODEL_NAMES: Final = ("tivm", "mvbind")
ENCODER_NAMES: Final = ("transformer", "lstm", "mean")
LOSS_NAMES: Final = ("infonce", "triplet")


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A dual encoder: one tower per modality, each ending in an L2-normalised embedding.

    Attributes:
        name: ``tivm`` (per-step branch, temporal encoder, pooling) or ``mvbind`` (pooled
            embeddings through projection heads); see ``svm_toolkit.train.models.MODELS``.
        encoder: temporal encoder of ``tivm``: ``transformer``, ``lstm`` or ``mean``.
        width: hidden width ``d`` of the branch and the encoder.
        embed_dim: size of the joint embedding.
        branch_layers: linear layers of each modality's branch (TIVM: 2 to 3) or projection head.
        encoder_layers: transformer or LSTM layers.
        heads: attention heads (``width`` must divide by it).
        dropout: dropout in the branch and the encoder.
    """

    name: str = "tivm"
    encoder: str = "transformer"
    width: int = 256
    embed_dim: int = 256
    branch_layers: int = 2
    encoder_layers: int = 2
    heads: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:  # refused before a run folder is written
            raise ConfigError(unknown_name("model.name", self.name, MODEL_NAMES))
        if self.encoder not in ENCODER_NAMES:
            raise ConfigError(unknown_name("model.encoder", self.encoder, ENCODER_NAMES))
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        if min(self.width, self.embed_dim, self.branch_layers, self.encoder_layers) < 1:
            raise ValueError(f"sizes and layer counts must be >= 1: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True, slots=True)
class LossConfig:
    """The contrastive objective.

    Attributes:
        name: ``infonce`` (symmetric, CLIP-style) or ``triplet`` (margin ranking, both ways).
        temperature: InfoNCE's initial temperature (CLIP: 0.07).
        learn_temperature: learn it (as a clamped log logit scale) or keep it fixed.
        margin: the triplet margin on cosine similarities.
        hard_negatives: triplet on the hardest negative of each row (VSE++), else the mean.
        hard_after_steps: optimiser steps on the mean of all negatives before the hardest take
            over (hardest negatives from a random start collapse the embedding; VSE++ warms up).
        multi_positive: samples sharing a ``music_id`` are positives, not negatives.
    """

    name: LossName = "infonce"
    temperature: float = 0.07
    learn_temperature: bool = True
    margin: float = 0.2
    hard_negatives: bool = True
    hard_after_steps: int = 500
    multi_positive: bool = True

    def __post_init__(self) -> None:
        if self.name not in LOSS_NAMES:
            raise ConfigError(unknown_name("loss.name", self.name, LOSS_NAMES))
        if self.temperature <= 0 or self.margin < 0 or self.hard_after_steps < 0:
            raise ValueError(f"temperature must be > 0 and margin >= 0: {self}")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """One training run.

    Attributes:
        audio: the audio extractor whose features the music tower reads.
        video: the visual extractor whose features the video tower reads.
        model: the dual encoder.
        loss: the objective.
        epochs: most epochs (early stopping may end sooner).
        batch_size: pairs per step (more negatives per step for InfoNCE).
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup: share of all steps with a linear warm-up, then cosine decay to zero.
        window_s: seconds of each training crop and evaluation window.
        patience: epochs without a better validation MRR before stopping (0: never stop early).
        seed: fixes initialisation, shuffling, crops and dropout.
        device: ``cpu``, ``cuda`` or ``auto``.
        threads: CPU threads for torch (0: torch's default).
    """

    audio: str
    video: str
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    epochs: int = 50
    batch_size: int = 256
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup: float = 0.05
    window_s: float = 30.0
    patience: int = 8
    seed: int = 0
    device: str = "auto"
    threads: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"epochs must be >= 1 and batch_size >= 2: {self}")
        if self.lr <= 0 or not 0.0 <= self.warmup < 1.0 or self.window_s <= 0:
            raise ValueError(f"lr and window_s must be > 0 and warmup in [0, 1): {self}")


#: Named starting points; flags override their fields.
TRAIN_PRESETS: Final[dict[str, TrainConfig]] = {
    # TIVM: VGGish audio + ResNet-50 frames, per second, transformer + InfoNCE.
    "tivm": TrainConfig(audio="vggish", video="resnet50"),
    # MVBind: pooled ImageBind audio and vision embeddings through projection heads.
    "mvbind": TrainConfig(
        audio="imagebind_audio",
        video="imagebind_vision",
        model=ModelConfig(name="mvbind", encoder="mean", width=1024, embed_dim=1024),
    ),
    # The offline defaults that `svm demo` extracts.
    "offline": TrainConfig(audio="vmnet_music", video="efficientnet_lite0"),
}
