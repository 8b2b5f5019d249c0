"""What ``svm env`` reports: versions of the toolkit and of everything it drives."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Final

from svm_toolkit import __version__, ffmpeg

#: Python distributions reported by ``svm env`` (optional ones say "not installed").
PACKAGES: Final = (
    "pyarrow",
    "pandas",
    "numpy",
    "yt-dlp",
    "click",
    "tqdm",
    "torch",
    "torchvision",
    "ray",
)


def environment() -> dict[str, str]:
    """Return ``name -> version`` for the toolkit, Python, packages, CUDA and ffmpeg.

    torch is only imported when it is installed, to read its CUDA state.
    """
    info = {
        "svm_toolkit": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
    }
    for name in PACKAGES:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = "not installed"
    info["cuda"] = _cuda()
    for tool in ("ffmpeg", "ffprobe"):
        info[tool] = ffmpeg.version(tool) or f"not found ({ffmpeg.INSTALL_HINT})"
    return info


def _cuda() -> str:
    if "torch" not in sys.modules:
        try:
            importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            return "n/a (torch not installed)"
    import torch

    if not torch.cuda.is_available():
        return f"not available (torch built with CUDA {torch.version.cuda or 'none'})"
    names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return f"{torch.version.cuda} ({names})"
