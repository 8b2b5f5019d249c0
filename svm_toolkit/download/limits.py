"""Disk bounds of ``svm download``: a per-file size cap and a free-space guard.

The size cap ends one sample (``too_large``, not retried); the free-space guard stops the whole
run (:class:`LowDiskSpace`, exit code 4) with every finished row committed, before the disk is
full. Both are checked while bytes arrive, on the direct path and around yt-dlp.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from svm_toolkit.errors import SvmError

#: Video bitrate bound at 480p, Mbit/s: about 3x what YouTube serves at 480p H.264.
VIDEO_MBIT_S_AT_480P: Final = 3.0
#: Audio bitrate bound, Mbit/s (the highest common AAC/Opus rate).
AUDIO_MBIT_S: Final = 0.32
#: Longest media the default cap admits at those bitrates, seconds (2 h).
DURATION_BOUND_S: Final = 2 * 3600.0
#: How many direct-path bytes pass between two free-space checks.
CHECK_EVERY_BYTES: Final = 4 * 1024 * 1024


def default_file_cap_mb(max_height: int, *, audio_only: bool = False) -> float:
    """The default per-file cap, MB: a generous bitrate bound x :data:`DURATION_BOUND_S`.

    The video bound scales with the picture area above 480p (``3 Mbit/s x (h/480)^2``) and is
    never below the 480p one; audio-only fetches count the audio bound alone.

    Example:
        >>> round(default_file_cap_mb(480)), round(default_file_cap_mb(480, audio_only=True))
        (2988, 288)
    """
    video = 0.0 if audio_only else VIDEO_MBIT_S_AT_480P * (max(max_height, 480) / 480) ** 2
    return (video + AUDIO_MBIT_S) * DURATION_BOUND_S / 8


class LowDiskSpace(SvmError):
    """The dataset's disk has less free space than ``--min-free-gb``: the run stopped cleanly."""

    exit_code = 4


@dataclass(frozen=True, slots=True)
class DiskGuard:
    """Stops the run when the disk holding ``folder`` has less than ``min_free_bytes`` free.

    Attributes:
        folder: a folder on the disk the downloads land on (the dataset's ``media/``).
        min_free_bytes: the least free space a run leaves, bytes (0: no guard).
    """

    folder: Path
    min_free_bytes: int

    def check(self) -> None:
        """Raise :class:`LowDiskSpace` when the disk is below the bound.

        Raises:
            LowDiskSpace: with the folder, the free space and the flag that widens the bound.
        """
        if self.min_free_bytes <= 0:
            return
        folder = self.folder
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent
        free = shutil.disk_usage(folder).free
        if free < self.min_free_bytes:
            raise self.error(free)

    def error(self, free: int) -> LowDiskSpace:
        """The :class:`LowDiskSpace` for ``free`` bytes left (folder, bound, flag, what to do)."""
        return LowDiskSpace(
            f"only {free / 1e9:.2f} GB free on the disk of {self.folder} (the run keeps "
            f"{self.min_free_bytes / 1e9:g} GB free, --min-free-gb): stopped before the "
            "disk filled; finished samples are saved. Free some space or pass a smaller "
            "--min-free-gb, then run the same command again to resume."
        )


def largest_file(folder: Path) -> int:
    """The size of the largest file directly in ``folder``, bytes (0 when there is none)."""
    sizes = []
    try:
        for entry in folder.iterdir():
            try:
                sizes.append(entry.stat().st_size)
            except FileNotFoundError:  # renamed or removed meanwhile (yt-dlp's .part files)
                continue
    except FileNotFoundError:
        return 0
    return max(sizes, default=0)
