"""Find and run the ffmpeg / ffprobe command-line tools (argument lists, never a shell)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from typing import Final

from svm_toolkit.errors import MissingToolError, SvmError

logger = logging.getLogger(__name__)

INSTALL_HINT: Final = "run scripts/setup.sh, or install it with 'sudo apt-get install ffmpeg'"


class FFmpegError(SvmError):
    """ffmpeg exited non-zero; the message ends with the tail of its stderr."""


def require(tool: str = "ffmpeg") -> str:
    """Return the path of ``tool`` (``ffmpeg`` or ``ffprobe``).

    Raises:
        MissingToolError: it is not on ``PATH``.
    """
    path = shutil.which(tool)
    if path is None:
        raise MissingToolError(f"{tool} not found on PATH; {INSTALL_HINT}")
    return path


def run(
    args: Sequence[str],
    *,
    tool: str = "ffmpeg",
    timeout_s: float = 600.0,
    stdin: bytes | None = None,
) -> bytes:
    """Run ``tool`` with ``args`` and return its stdout.

    Args:
        args: arguments after the program name.
        tool: ``ffmpeg`` or ``ffprobe``.
        timeout_s: kill the process after this many seconds.
        stdin: bytes fed to the process's standard input.

    Raises:
        FFmpegError: non-zero exit or timeout.
        MissingToolError: the tool is not installed.
    """
    cmd = [require(tool), *args]
    logger.debug("running %s", " ".join(cmd))
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise FFmpegError(f"{tool} timed out after {timeout_s:g} s: {' '.join(cmd)}") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise FFmpegError(f"{tool} exited {done.returncode}: {' | '.join(tail)}")
    return done.stdout


def version(tool: str = "ffmpeg") -> str | None:
    """Return the version string of ``tool`` (e.g. ``5.1.9-0+deb12u1``), or ``None`` if missing."""
    if shutil.which(tool) is None:
        return None
    first = run(["-version"], tool=tool, timeout_s=30).decode(errors="replace").splitlines()[0]
    parts = first.split()
    return parts[2] if len(parts) > 2 else first
