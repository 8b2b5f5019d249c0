"""ImageBind's vision and audio encoders, state-dict compatible with ``imagebind_huge.pth``.

The project's own torch code for two of ImageBind's six branches (Girdhar et al., CVPR 2023). Module
names follow the official model (facebookresearch/ImageBind ``imagebind/models/imagebind_model.py``,
``multimodal_preprocessors.py``, ``transformer.py``, ``helpers.py``), so the official checkpoint's
``modality_*.vision.*`` or ``modality_*.audio.*`` entries load strictly into
:class:`ImageBindEncoder`. Per branch:

* **vision**: the image (N, 3, 224, 224) is repeated to 2 frames and cut into 2x14x14 tubelets by a
  bias-free Conv3d (-> 16 x 16 = 256 patches), a CLS token and learnt position embeddings (257)
  are added, a LayerNorm (eps 1e-6) precedes 32 pre-norm blocks of width 1280 with 16 heads; the
  head is LayerNorm -> CLS -> Linear(1280, 1024, bias=False) and the output is L2-normalised.
* **audio**: the log-Mel clip (N, 1, 128, 204) goes through a bias-free Conv2d (kernel 16,
  stride 10 -> 12 x 19 = 228 patches) and a LayerNorm (eps 1e-5), then CLS and learnt position
  embeddings (229); 12 blocks of width 768 with 12 heads whose attention has learnt key/value
  bias tokens (``add_bias_kv``); the head is as for vision (768 -> 1024) and the output is
  L2-normalised then multiplied by a fixed logit scale of 20.

Differences from the official code that do not change the weights or the function: attention is
computed batch-first with :func:`torch.nn.functional.scaled_dot_product_attention` instead of
``nn.MultiheadAttention`` on (L, B, D) tensors (same parameters, same maths, including the extra
key/value bias token); position embeddings are not interpolated (the input size is fixed); the
token sequence is kept in the parameters' dtype so that, under autocast, the residual stream stays
float32 and only matrix products run in bf16/fp16.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import torch
import torch.nn.functional as F
from torch import nn

Branch = Literal["vision", "audio"]

#: Top-level module groups of the official ``ImageBindModel``; each holds one entry per modality.
GROUPS: Final = (
    "modality_preprocessors",
    "modality_trunks",
    "modality_heads",
    "modality_postprocessors",
)


@dataclass(frozen=True, slots=True)
class ImageBindArch:
    """Sizes of the vision and audio branches; the defaults are ImageBind-Huge's.

    Attributes:
        out_dim: joint embedding dimension.
        mlp_ratio: MLP hidden width / model width.
        vision_dim: vision transformer width.
        vision_blocks: vision transformer blocks.
        vision_heads: vision attention heads.
        image_size: side of the square input image, pixels.
        patch: spatial side of a patch, pixels.
        frames: frames an image is repeated to (= the tubelet's temporal size).
        audio_dim: audio transformer width.
        audio_blocks: audio transformer blocks.
        audio_heads: audio attention heads.
        mel_bins: Mel bands of an audio clip.
        mel_frames: frames (10 ms) of an audio clip.
        audio_kernel: side of the audio patch, bins / frames.
        audio_stride: stride between audio patches, bins / frames.
        audio_logit_scale: fixed factor the normalised audio embedding is multiplied by.
    """

    out_dim: int = 1024
    mlp_ratio: int = 4
    vision_dim: int = 1280
    vision_blocks: int = 32
    vision_heads: int = 16
    image_size: int = 224
    patch: int = 14
    frames: int = 2
    audio_dim: int = 768
    audio_blocks: int = 12
    audio_heads: int = 12
    mel_bins: int = 128
    mel_frames: int = 204
    audio_kernel: int = 16
    audio_stride: int = 10
    audio_logit_scale: float = 20.0

    @property
    def vision_patches(self) -> int:
        """Patches per image (16 x 16 = 256 for Huge)."""
        return (self.image_size // self.patch) ** 2

    @property
    def audio_patches(self) -> int:
        """Patches per audio clip (12 x 19 = 228 for Huge)."""
        rows = (self.mel_bins - self.audio_kernel) // self.audio_stride + 1
        cols = (self.mel_frames - self.audio_kernel) // self.audio_stride + 1
        return rows * cols


# -- building blocks ------------------------------------------------------------------------------


class RepeatFrames(nn.Module):
    """Image (N, C, H, W) -> clip (N, C, T, H, W), the image repeated (``PadIm2Video``).

    A clip (N, C, T, H, W) passes unchanged unless T == 1, which is repeated too.
    """

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) or (N, C, T, H, W) -> (N, C, frames, H, W)."""
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.ndim != 5:
            raise ValueError(f"expected (N, C, H, W) or (N, C, T, H, W), got {tuple(x.shape)}")
        return x.repeat(1, 1, self.frames, 1, 1) if x.shape[2] == 1 else x


class PatchStem(nn.Module):
    """Patchify with ``proj`` and flatten to tokens (N, L, D), then an optional LayerNorm."""

    def __init__(self, proj: nn.Module, norm_layer: nn.Module | None = None) -> None:
        super().__init__()
        self.proj = proj
        self.norm_layer = norm_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input (N, C, ...) -> tokens (N, L, D)."""
        tokens: torch.Tensor = self.proj(x).flatten(2).transpose(1, 2)
        if self.norm_layer is not None:
            tokens = self.norm_layer(tokens)
        return tokens


class PositionEmbedding(nn.Module):
    """Learnt position embeddings of the CLS token and the patches, shape (1, 1 + L, D)."""

    def __init__(self, tokens: int, dim: int) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(nn.init.normal_(torch.empty(1, tokens, dim), std=dim**-0.5))


class Tokenizer(nn.Module):
    """Stem + CLS token + position embeddings (``RGBDTPreprocessor`` / ``AudioPreprocessor``).

    Args:
        stem: the patch stem (the official name ``rgbt_stem`` is kept for audio too).
        patches: patches per input, L.
        dim: token width, D.
    """

    def __init__(self, stem: PatchStem, patches: int, dim: int) -> None:
        super().__init__()
        self.rgbt_stem = stem
        self.pos_embedding_helper = PositionEmbedding(1 + patches, dim)
        self.cls_token = nn.Parameter(nn.init.normal_(torch.empty(1, 1, dim), std=dim**-0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input (N, ...) -> tokens (N, 1 + L, D) in the parameters' dtype."""
        patches = self.rgbt_stem(x).to(self.cls_token.dtype)
        pos = self.pos_embedding_helper.pos_embed
        if patches.shape[1] + 1 != pos.shape[1]:
            raise ValueError(
                f"input {tuple(x.shape[1:])} gives {patches.shape[1]} patches, the model expects "
                f"{pos.shape[1] - 1}"
            )
        cls = self.cls_token.expand(len(patches), -1, -1)
        return torch.cat((cls, patches), dim=1) + pos


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names and maths.

    Args:
        dim: model width, D.
        heads: attention heads (D must divide by it).
        bias_kv: append a learnt key and value token (``add_bias_kv=True``).
    """

    def __init__(self, dim: int, heads: int, *, bias_kv: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} does not divide into {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.bias_k: nn.Parameter | None = None
        self.bias_v: nn.Parameter | None = None
        if bias_kv:
            self.bias_k = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, 1, dim)))
            self.bias_v = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, 1, dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (N, L, D) -> (N, L, D)."""
        n, _, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        if self.bias_k is not None and self.bias_v is not None:
            k = torch.cat((k, self.bias_k.to(k.dtype).expand(n, 1, d)), dim=1)
            v = torch.cat((v, self.bias_v.to(v.dtype).expand(n, 1, d)), dim=1)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n, t.shape[1], self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        projected: torch.Tensor = self.out_proj(out.transpose(1, 2).flatten(2))
        return projected


class Mlp(nn.Module):
    """Linear -> GELU (exact) -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., D)."""
        out: torch.Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class Block(nn.Module):
    """Pre-norm transformer block (``BlockWithMasking``, no layer scale, no drop path at eval)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, *, bias_kv: bool) -> None:
        super().__init__()
        self.attn = SelfAttention(dim, heads, bias_kv=bias_kv)
        self.norm_1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio * dim)
        self.norm_2 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (N, L, D) -> (N, L, D)."""
        x = x + self.attn(self.norm_1(x))
        out: torch.Tensor = x + self.mlp(self.norm_2(x))
        return out


class Trunk(nn.Module):
    """``SimpleTransformer``: optional LayerNorm, then the blocks, batch-first (N, L, D)."""

    def __init__(
        self, dim: int, blocks: int, heads: int, mlp_ratio: int, *, pre_ln: bool, bias_kv: bool
    ) -> None:
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(
            nn.LayerNorm(dim, eps=1e-6) if pre_ln else nn.Identity()
        )
        self.blocks = nn.Sequential(
            *(Block(dim, heads, mlp_ratio, bias_kv=bias_kv) for _ in range(blocks))
        )
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (N, L, D) -> (N, L, D)."""
        out: torch.Tensor = self.blocks(self.pre_transformer_layer(tokens))
        return out


class SelectToken(nn.Module):
    """Tokens (N, L, D) -> token ``index`` (N, D)."""

    def __init__(self, index: int = 0) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, D) -> (N, D)."""
        return x[:, self.index]


class Normalize(nn.Module):
    """L2-normalise the last dimension (computed in float32)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> float32 (..., D), unit norm."""
        return F.normalize(x.float(), dim=-1)


class LogitScale(nn.Module):
    """Multiply by ``min(exp(log_logit_scale), 100)``; the log scale is a fixed (saved) buffer."""

    log_logit_scale: torch.Tensor

    def __init__(self, scale: float, max_scale: float = 100.0) -> None:
        super().__init__()
        self.max_scale = max_scale
        self.register_buffer("log_logit_scale", torch.tensor(math.log(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x``."""
        return self.log_logit_scale.exp().clamp(max=self.max_scale) * x


def _head(dim: int, out_dim: int) -> nn.Sequential:
    """LayerNorm -> CLS token -> bias-free projection."""
    return nn.Sequential(
        nn.LayerNorm(dim, eps=1e-6), SelectToken(0), nn.Linear(dim, out_dim, bias=False)
    )


# -- the encoders -------------------------------------------------------------------------------


class ImageBindEncoder(nn.Module):
    """One ImageBind branch with the official module names (``modality_*.<branch>.*``).

    Args:
        branch: ``vision`` or ``audio``.
        arch: the sizes (ImageBind-Huge by default).

    Forward:
        vision: float (N, 3, S, S) images normalised with CLIP's mean/std (or clips
        (N, 3, T, S, S)) -> float32 (N, out_dim), unit norm.
        audio: float (N, 1, mel_bins, mel_frames) normalised log-Mel clips -> float32
        (N, out_dim) of norm ``audio_logit_scale`` (20).
    """

    def __init__(self, branch: Branch, arch: ImageBindArch | None = None) -> None:
        super().__init__()
        arch = arch if arch is not None else ImageBindArch()
        self.branch: Branch = branch
        self.arch = arch
        post: nn.Module
        if branch == "vision":
            dim = arch.vision_dim
            kernel = (arch.frames, arch.patch, arch.patch)
            conv3d = nn.Conv3d(3, dim, kernel_size=kernel, stride=kernel, bias=False)
            stem = PatchStem(nn.Sequential(RepeatFrames(arch.frames), conv3d))
            tokenizer = Tokenizer(stem, arch.vision_patches, dim)
            trunk = Trunk(
                dim,
                arch.vision_blocks,
                arch.vision_heads,
                arch.mlp_ratio,
                pre_ln=True,
                bias_kv=False,
            )
            post = Normalize()
        elif branch == "audio":
            dim = arch.audio_dim
            conv2d = nn.Conv2d(
                1, dim, kernel_size=arch.audio_kernel, stride=arch.audio_stride, bias=False
            )
            stem = PatchStem(conv2d, norm_layer=nn.LayerNorm(dim))
            tokenizer = Tokenizer(stem, arch.audio_patches, dim)
            trunk = Trunk(
                dim,
                arch.audio_blocks,
                arch.audio_heads,
                arch.mlp_ratio,
                pre_ln=False,
                bias_kv=True,
            )
            post = nn.Sequential(Normalize(), LogitScale(arch.audio_logit_scale))
        else:
            raise ValueError(f"unknown ImageBind branch {branch!r}; expected 'vision' or 'audio'")
        self.modality_preprocessors = nn.ModuleDict({branch: tokenizer})
        self.modality_trunks = nn.ModuleDict({branch: trunk})
        self.modality_heads = nn.ModuleDict({branch: _head(dim, arch.out_dim)})
        self.modality_postprocessors = nn.ModuleDict({branch: post})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs (N, ...) -> embeddings float32 (N, out_dim) (see the class docstring)."""
        branch = self.branch
        tokens = self.modality_preprocessors[branch](x)
        tokens = self.modality_trunks[branch](tokens)
        embedding = self.modality_heads[branch](tokens)
        out: torch.Tensor = self.modality_postprocessors[branch](embedding)
        return out


def branch_state(state: Mapping[str, torch.Tensor], branch: Branch) -> dict[str, torch.Tensor]:
    """The entries of one branch from a state dict (the full official checkpoint or the branch's).

    Keeps keys ``<group>.<branch>.*`` for the four ``modality_*`` groups, unchanged; everything
    else (other modalities) is dropped.
    """
    out = {}
    for key, value in state.items():
        group, _, rest = key.partition(".")
        if group in GROUPS and rest.partition(".")[0] == branch:
            out[key] = value
    return out
