"""The bundled baselines: dual encoders that map video and music into one embedding space.

``tivm`` (TIVM): per modality, a branch of linear layers applied to every time step, a temporal
encoder over the steps (``transformer`` | ``lstm`` | ``mean``), masked mean pooling and a linear
head. ``mvbind`` (MVBind): the steps are pooled first (ImageBind gives one 1024-d embedding per
clip) and go through a projection head. Both end L2-normalised, and both standardise their
inputs with the training set's per-dimension mean and standard deviation (stored as buffers),
so features on any scale (dB descriptors, unit-norm embeddings) train alike.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Final

import torch
import torch.nn.functional as F
from torch import nn

from svm_toolkit.errors import ConfigError
from svm_toolkit.train.config import ModelConfig


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real steps: x (B, L, D), mask (B, L) bool -> (B, D)."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class Standardize(nn.Module):
    """``(x - mean) / std`` per input dimension; the statistics are fitted, not learned."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the statistics (shape (D,) each); a zero std is replaced by 1."""
        self.mean.copy_(mean)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(…, D) -> (…, D)."""
        return (x - self.mean) / self.std


def mlp(dim_in: int, width: int, layers: int, dropout: float) -> nn.Sequential:
    """``layers`` x (Linear -> GELU -> Dropout), the first from ``dim_in`` to ``width``."""
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(dim_in if i == 0 else width, width), nn.GELU(), nn.Dropout(dropout)]
    return nn.Sequential(*blocks)


class MeanEncoder(nn.Module):
    """No temporal modelling: the steps pass through (pooling averages them)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, L, d)."""
        return x


class TransformerEncoder(nn.Module):
    """Pre-LN transformer over the steps with sinusoidal positions (any length).

    Dropout is on the residual branches only; the activation and attention-weight dropouts are
    off, as in fairseq's transformer defaults. On CPU, drawing dropout masks costs more than
    the small matmuls they guard (a quarter of a training step when all three are on).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            config.width,
            config.heads,
            4 * config.width,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        layer.dropout.p = 0.0  # activation dropout off
        layer.self_attn.dropout = 0.0  # attention-weight dropout off
        self.layers = nn.TransformerEncoder(
            layer,
            config.encoder_layers,
            norm=nn.LayerNorm(config.width),
            enable_nested_tensor=False,
        )
        self.width = config.width

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, d), mask (B, L) -> (B, L, d)."""
        out: torch.Tensor = self.layers(
            x + self._positions(x.shape[1], x), src_key_padding_mask=~mask
        )
        return out

    def _positions(self, length: int, like: torch.Tensor) -> torch.Tensor:
        position = torch.arange(length, device=like.device, dtype=torch.float32)[:, None]
        rate = torch.exp(
            torch.arange(0, self.width, 2, device=like.device, dtype=torch.float32)
            * (-math.log(10_000.0) / self.width)
        )
        table = torch.zeros(length, self.width, device=like.device)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate)
        return table.to(like.dtype)


class LSTMEncoder(nn.Module):
    """Bidirectional LSTM over the real steps (padding is packed away), ``width`` outputs."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.width % 2:
            raise ConfigError(f"the lstm encoder needs an even width, got {config.width}")
        self.lstm = nn.LSTM(
            config.width,
            config.width // 2,
            config.encoder_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.encoder_layers > 1 else 0.0,
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, d), mask (B, L) -> (B, L, d); padded steps come out as zeros."""
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return padded


#: encoder name -> builder.
ENCODERS: Final[dict[str, Callable[[ModelConfig], nn.Module]]] = {
    "transformer": TransformerEncoder,
    "lstm": LSTMEncoder,
    "mean": lambda _config: MeanEncoder(),
}


class Tower(nn.Module):
    """One modality: standardise -> (pool) -> branch -> encoder -> pool -> head -> L2 norm.

    Args:
        dim_in: input feature dimension ``D``.
        config: the model config.
        pool_first: pool the steps before the branch (MVBind's heads over clip embeddings).
    """

    def __init__(self, dim_in: int, config: ModelConfig, *, pool_first: bool) -> None:
        super().__init__()
        self.standardize = Standardize(dim_in)
        self.pool_first = pool_first
        self.branch = mlp(dim_in, config.width, config.branch_layers, config.dropout)
        self.encoder = ENCODERS[config.encoder](config)
        self.head = nn.Linear(config.width, config.embed_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Embed: x float (B, L, D), mask bool (B, L) -> float32 (B, E), unit length."""
        x = self.standardize(x)
        if self.pool_first:
            x, mask = masked_mean(x, mask)[:, None, :], mask.any(dim=1, keepdim=True)
        h = self.encoder(self.branch(x), mask)
        return F.normalize(self.head(masked_mean(h, mask)).float(), dim=-1)


class DualEncoder(nn.Module):
    """A video tower and a music tower with the same embedding size."""

    def __init__(self, video: Tower, audio: Tower) -> None:
        super().__init__()
        self.video = video
        self.audio = audio

    def forward(
        self,
        video: torch.Tensor,
        video_mask: torch.Tensor,
        audio: torch.Tensor,
        audio_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed both sides: ((B, E) video, (B, E) music), L2-normalised."""
        return self.video(video, video_mask), self.audio(audio, audio_mask)


def _tivm(config: ModelConfig, video_dim: int, audio_dim: int) -> DualEncoder:
    return DualEncoder(
        Tower(video_dim, config, pool_first=False), Tower(audio_dim, config, pool_first=False)
    )


def _mvbind(config: ModelConfig, video_dim: int, audio_dim: int) -> DualEncoder:
    head = dataclasses.replace(config, encoder="mean")  # steps are pooled before the head
    return DualEncoder(
        Tower(video_dim, head, pool_first=True), Tower(audio_dim, head, pool_first=True)
    )


#: model name -> builder(config, video dim, audio dim).
MODELS: Final[dict[str, Callable[[ModelConfig, int, int], DualEncoder]]] = {
    "tivm": _tivm,
    "mvbind": _mvbind,
}


def build_model(config: ModelConfig, *, video_dim: int, audio_dim: int) -> DualEncoder:
    """Build a registered model.

    Raises:
        ConfigError: an unknown model or encoder (the message lists the known ones).
    """
    if config.name not in MODELS:
        raise ConfigError(f"unknown model '{config.name}'; known: {', '.join(MODELS)}")
    if config.encoder not in ENCODERS:
        raise ConfigError(f"unknown encoder '{config.encoder}'; known: {', '.join(ENCODERS)}")
    return MODELS[config.name](config, video_dim, audio_dim)
