"""Contrastive objectives over a batch of B (video, music) pairs, both directions.

Both take L2-normalised embeddings ``(B, E)`` and the pairs' groups ``(B,)``: with
``multi_positive`` pairs that share a group (the same song) are positives of each other, never
negatives. Losses are computed in float32 whatever the autocast dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import torch
from torch import nn

from svm_toolkit.errors import ConfigError
from svm_toolkit.train.config import LossConfig

#: CLIP's clamp on the learnt logit scale (temperature >= 0.01).
MAX_LOGIT_SCALE: Final = 100.0


def positive_mask(groups: torch.Tensor, multi_positive: bool) -> torch.Tensor:
    """Bool (B, B): True where column j is a positive of row i (always on the diagonal)."""
    eye = torch.eye(len(groups), dtype=torch.bool, device=groups.device)
    return eye | (groups[:, None] == groups[None, :]) if multi_positive else eye


class InfoNCE(nn.Module):
    """Symmetric InfoNCE with a (learnable) temperature, as CLIP trains.

    Each row's loss is ``-log`` of the softmax mass on its positives, ``logsumexp(all) -
    logsumexp(positives)`` of the scaled cosine similarities (MIL-NCE; with one positive the
    usual cross-entropy), so videos of one song are pulled together, never apart, matching the
    evaluator's "any positive is a hit". The two directions are averaged.
    """

    def __init__(self, config: LossConfig) -> None:
        super().__init__()
        scale = torch.tensor(math.log(1.0 / config.temperature))
        self.log_scale = nn.Parameter(scale, requires_grad=config.learn_temperature)
        self.multi_positive = config.multi_positive

    @property
    def temperature(self) -> float:
        """The current temperature."""
        return 1.0 / float(self.log_scale.detach().exp().clamp(max=MAX_LOGIT_SCALE))

    def forward(
        self, video: torch.Tensor, audio: torch.Tensor, groups: torch.Tensor
    ) -> torch.Tensor:
        """Scalar loss of (B, E) video and music embeddings."""
        logits = self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE) * (video.float() @ audio.float().T)
        positives = positive_mask(groups, self.multi_positive)

        def direction(scores: torch.Tensor) -> torch.Tensor:
            on_positives = scores.masked_fill(~positives, float("-inf"))
            return (torch.logsumexp(scores, dim=1) - torch.logsumexp(on_positives, dim=1)).mean()

        return (direction(logits) + direction(logits.T)) / 2


class Triplet(nn.Module):
    """Bidirectional triplet margin loss on cosine similarities (VSE++ with hard negatives).

    For each pair, ``max(0, margin + s(negative) - s(positive))`` for video→music and
    music→video negatives; the mean over all negatives for the first ``hard_after_steps``
    training steps, then the hardest negative of each row (``hard_negatives``). The step count
    is a buffer, so it is saved and resumed with the checkpoint.
    """

    steps: torch.Tensor

    def __init__(self, config: LossConfig) -> None:
        super().__init__()
        self.margin = config.margin
        self.hard = config.hard_negatives
        self.hard_after = config.hard_after_steps
        self.multi_positive = config.multi_positive
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def temperature(self) -> float:
        """Not used by the triplet loss (NaN in the logs)."""
        return float("nan")

    def forward(
        self, video: torch.Tensor, audio: torch.Tensor, groups: torch.Tensor
    ) -> torch.Tensor:
        """Scalar loss of (B, E) video and music embeddings."""
        scores = video.float() @ audio.float().T
        own = scores.diagonal()
        negatives = ~positive_mask(groups, self.multi_positive)
        count = negatives.sum(dim=1).clamp(min=1)
        hard = self.hard and int(self.steps) >= self.hard_after
        if self.training:
            self.steps += 1

        def direction(violation: torch.Tensor) -> torch.Tensor:
            violation = violation.clamp(min=0) * negatives
            rows = violation.max(dim=1).values if hard else violation.sum(dim=1) / count
            return rows.mean()

        return (
            direction(self.margin + scores - own[:, None])
            + direction(self.margin + scores.T - own[:, None])
        ) / 2


#: loss name -> class.
LOSSES: Final[dict[str, Callable[[LossConfig], nn.Module]]] = {
    "infonce": InfoNCE,
    "triplet": Triplet,
}


def build_loss(config: LossConfig) -> nn.Module:
    """Build a registered loss.

    Raises:
        ConfigError: an unknown loss (the message lists the known ones).
    """
    if config.name not in LOSSES:
        raise ConfigError(f"unknown loss '{config.name}'; known: {', '.join(LOSSES)}")
    return LOSSES[config.name](config)
