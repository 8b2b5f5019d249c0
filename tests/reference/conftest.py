"""Shared set-up for the parity tests against the reference implementations.

The references (torchaudio, torchvggish, pytorchvideo, Meta's ImageBind code) are installed by
``scripts/setup.sh --dev``; these tests never skip. pytorchvideo 0.1.5 imports
``torchvision.transforms.functional_tensor``, which torchvision renamed to ``_functional_tensor``
in 0.17: the alias below is the one stub, and it changes no arithmetic.
"""

from __future__ import annotations

import sys

import torchvision.transforms._functional_tensor as _functional_tensor

sys.modules.setdefault("torchvision.transforms.functional_tensor", _functional_tensor)
