"""yt-dlp child processes (:mod:`~svm_toolkit.download.ytdlp_child`): started, reused, killed.

A child serves one fetch at a time and is reused by the next one (a fresh child costs about
0.7 s of start-up: Python, yt-dlp and its extractor table); a child that overran its deadline,
its size cap or the disk bound is killed with its whole process group (yt-dlp's ffmpeg
children too) and never reused. Idle children exit when :func:`close_children` closes their
stdin, or by themselves when this process dies.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

#: The child's script, run with ``python -I`` (it imports yt-dlp and the standard library only).
CHILD: Final = Path(__file__).with_name("ytdlp_child.py")


class Child:
    """One running yt-dlp child process and its result channel."""

    def __init__(self) -> None:
        # its stderr, read when it dies; closed by _close_files
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(CHILD), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            bufsize=0,
            start_new_session=True,  # its own process group: killed as one with ffmpeg
        )
        self._buffer = b""

    def send(self, request: dict[str, Any]) -> None:
        """Hand the child one request (a pickled dict, length-prefixed)."""
        payload = pickle.dumps(request)
        assert self.proc.stdin is not None
        self.proc.stdin.write(len(payload).to_bytes(8, "big") + payload)
        self.proc.stdin.flush()

    def receive(self, wait_s: float) -> dict[str, Any] | None:
        """The child's answer, or ``None`` when none came within ``wait_s`` seconds.

        Raises:
            ChildDied: the child exited without answering (the message has its stderr's end).
        """
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], wait_s)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ChildDied(self._death())
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            raise ChildDied(f"the yt-dlp process answered {line[:200]!r}") from None
        if not isinstance(answer, dict):
            raise ChildDied(f"the yt-dlp process answered {line[:200]!r}")
        return answer

    def kill(self) -> None:
        """Kill the child's process group and reap the child."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._close_files()

    def close(self) -> None:
        """Let an idle child exit (end of its input), killing it if it does not."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_files()

    def _death(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-3:]
        return f"the yt-dlp process ended with code {self.proc.returncode}: {' | '.join(tail)}"

    def _close_files(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout, self.log):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class ChildDied(Exception):
    """A child exited without an answer (a crash in yt-dlp or ffmpeg, out of memory)."""


_idle: list[Child] = []
_lock = threading.Lock()


def run_in_child(
    request: dict[str, Any], watch: Callable[[], None], poll_s: float = 0.1
) -> dict[str, Any]:
    """Run one fetch in an idle (or new) child; ``watch`` runs every ``poll_s`` meanwhile.

    ``watch`` raises to end the fetch (deadline, size cap, disk bound): the child is then killed
    and the exception propagates. A child that answered goes back to the idle pool.

    Raises:
        ChildDied: the child exited without answering.
    """
    with _lock:
        child = _idle.pop() if _idle else None
    if child is not None and child.proc.poll() is not None:  # it died while idle
        child.kill()  # its group's leftovers, its pipes and its stderr file
        child = None
    if child is None:
        child = Child()
    answered = False
    try:
        child.send(request)
        while (answer := child.receive(poll_s)) is None:
            watch()
        answered = True
        return answer
    except BrokenPipeError:
        raise ChildDied(child._death()) from None
    finally:
        if answered:
            with _lock:
                _idle.append(child)
        else:
            child.kill()


def close_children() -> None:
    """End every idle child (at the end of a run, and when this process exits)."""
    with _lock:
        children = list(_idle)
        _idle.clear()
    for child in children:
        child.close()


atexit.register(close_children)
