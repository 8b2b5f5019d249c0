"""Type aliases shared across the package (units live in the names)."""

from __future__ import annotations

import os
from typing import TypeAlias

PathLike: TypeAlias = str | os.PathLike[str]
Seconds: TypeAlias = float
Hz: TypeAlias = int
