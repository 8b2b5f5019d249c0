"""Which torch device a ``--device`` value means, checked before any work starts."""

from __future__ import annotations

import re
from typing import Final

from svm_toolkit.errors import ConfigError

#: The ``--device`` values the toolkit takes.
DEVICE_SPEC: Final = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(spec: str, *, flag: str = "--device") -> None:
    """Refuse a device this machine cannot use, in one line, before any work starts.

    ``cpu`` and ``auto`` always pass (``cpu`` without importing torch); ``cuda`` needs a
    visible CUDA GPU and ``cuda:N`` at least N + 1 of them.

    Args:
        spec: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        flag: the option or config key the value came from, for the message.

    Raises:
        ConfigError: an unknown value, no CUDA GPU, or fewer GPUs than ``cuda:N`` needs.
    """
    if not DEVICE_SPEC.match(spec):
        raise ConfigError(f"{flag} {spec}: unknown device; use cpu, cuda, cuda:N or auto")
    if not spec.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"{flag} {spec}: no CUDA GPU is visible (torch.cuda.is_available() is False); "
            "use --device cpu or auto"
        )
    index = int(spec.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"{flag} {spec}: only {count} CUDA GPU(s) are visible (cuda:0 to cuda:{count - 1}); "
            "use one of them, --device cpu or auto"
        )


def resolve_device(spec: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; anything else as given, checked.

    Raises:
        ConfigError: see :func:`check_device`.
    """
    check_device(spec)
    if spec != "auto":
        return spec
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
