"""The ``svm`` executable: process-wide settings that must come before torch is imported.

``OMP_WAIT_POLICY=PASSIVE`` (unless the user set it): OpenMP threads sleep between parallel
regions instead of spinning. ``svm extract`` runs its models beside decode worker processes on
the same cores, and spinning threads took the decoders' cycles: on a 2-core VM, extracting 240
EfficientNet-Lite0 frames (bf16) took 3.3-3.6 s passive against 3.9-5.2 s spinning (OpenMP's
default), six runs each in a process whose workers had started. One epoch of
``benchmarks/train.py --pairs 3000`` took 17.8-19.1 s either way.
Library users who call :func:`svm_toolkit.extract.runner.run_extract` in their own process can
set the variable themselves, before importing torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

PROCESS_ENV: Final = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Environment defaults of an ``svm`` process; a variable the user set is left as it is."""


def main(argv: Sequence[str] | None = None) -> None:
    """Set :data:`PROCESS_ENV`, then run the CLI (which imports torch)."""
    for name, value in PROCESS_ENV.items():
        os.environ.setdefault(name, value)
    from svm_toolkit.cli import main as cli

    cli(argv)
