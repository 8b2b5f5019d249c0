"""Which number format the models compute in: bf16 where the hardware has it, else fp32.

``auto`` picks bf16 on CUDA and on CPUs with native bf16 dot products (AVX512-BF16 or AMX: recent
Xeon and EPYC), where oneDNN ran the CNNs 1.7-2.8x faster than in fp32 (2-core EPYC, batch 8:
ResNet-50 65 against 38 frames/s, EfficientNet-Lite0 306 against 109). Other CPUs only emulate
bf16, so ``auto`` keeps fp32 there (not measured: no such CPU was at hand). bf16 runs under
``torch.autocast``: weights stay fp32 and each op that gains from it casts to bf16, so features
differ from fp32 by bf16 rounding: EfficientNet-Lite0's have cosine 0.9996 to fp32 on a photo
(tested, with the same top class) and >= 0.998 on generated test patterns
(``benchmarks/extract.py``). They are stored as float16 either way. ``fp32`` reproduces the
reference networks within float32 rounding.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "bf16", "fp32"]
Resolved = Literal["bf16", "fp32"]
"""A precision as it runs (``auto`` resolved for a device)."""
PRECISIONS: Final[tuple[Precision, ...]] = ("auto", "bf16", "fp32")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CUDA compute 8.0+, AVX512-BF16 or AMX CPUs)."""
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence getattr
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)


def resolve_precision(requested: Precision, device: torch.device) -> Resolved:
    """``auto`` -> ``bf16`` where :func:`native_bf16`, else ``fp32``; the others as given."""
    if requested == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return requested


def autocast(
    device: torch.device, precision: Resolved
) -> contextlib.AbstractContextManager[object]:
    """A context in which the models compute in ``precision`` on ``device``."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
