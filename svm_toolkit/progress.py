"""One progress display for every long stage: a bar on a terminal, log lines everywhere else.

On a terminal (stderr is a TTY) a :class:`Progress` is a tqdm bar, as before. Without one
(``nohup``, a batch scheduler, a pipe) a bar would be invisible, so it logs instead: an INFO line
every :data:`ENV_PROGRESS_S` seconds (default 30) with the count, the total, the rate, the ETA and
the failures so far, and a final line when it closes. The lines come from a timer, so a stage that
finishes nothing for minutes still shows it is alive (the count stands still). INFO lines show
with ``svm -v``; nothing runs when INFO is off.

Example:
    >>> with Progress("download", total=3, unit="video") as bar:  # doctest: +SKIP
    ...     bar.update(1)
    ...     bar.update(1, failed=True)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TextIO

from svm_toolkit.errors import ConfigError

if TYPE_CHECKING:
    from tqdm import tqdm

logger = logging.getLogger(__name__)

ENV_PROGRESS_S: Final = "SVM_PROGRESS_S"
"""Environment variable: seconds between progress lines when stderr is not a terminal."""
DEFAULT_PROGRESS_S: Final = 30.0
"""Seconds between progress lines by default: often enough to see a stage move in a log, rare
enough that a day-long run writes a few thousand lines."""


def progress_interval_s() -> float:
    """The seconds between progress log lines: :data:`ENV_PROGRESS_S`, else 30.

    Raises:
        ConfigError: the variable is set to something other than a positive number.
    """
    raw = os.environ.get(ENV_PROGRESS_S, "").strip()
    if not raw:
        return DEFAULT_PROGRESS_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"{ENV_PROGRESS_S}={raw!r}: give the seconds between progress lines in logs, a "
            f"number > 0 (e.g. {ENV_PROGRESS_S}=10), or unset it for {DEFAULT_PROGRESS_S:g}"
        )
    return value


def _is_tty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):  # replaced, closed or detached streams
        return False


class Progress:
    """A progress bar on a terminal, periodic INFO log lines elsewhere (the tqdm calls used here).

    Args:
        desc: what is counted, first word of every line (``"download"``).
        total: units expected (``None``: unknown; no percentage or ETA).
        unit: name of one unit (``"video"``, ``"row"``, ``"B"``).
        unit_scale: show counts with SI prefixes (``1.2 G``), for bytes.
        interval_s: seconds between log lines (``None``: :func:`progress_interval_s`).
        tty: draw a bar (``None``: when stderr is a terminal).

    Raises:
        ConfigError: a bad :data:`ENV_PROGRESS_S` (read only when INFO lines are on).
    """

    def __init__(
        self,
        desc: str,
        *,
        total: float | None = None,
        unit: str = "it",
        unit_scale: bool = False,
        interval_s: float | None = None,
        tty: bool | None = None,
    ) -> None:
        self.desc = desc
        self.unit = unit
        self.unit_scale = unit_scale
        self.n: float = 0
        self.failed = 0
        self._total = total
        self._postfix: dict[str, object] = {}
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._closed = False
        self._bar: tqdm[Any] | None = None
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        if _is_tty(sys.stderr) if tty is None else tty:
            from tqdm import tqdm  # only a terminal needs it

            self._bar = tqdm(
                total=total, desc=desc, unit=unit, unit_scale=unit_scale, leave=False,
                file=sys.stderr,
            )  # fmt: skip
            return
        if logger.isEnabledFor(logging.INFO):  # SVM_PROGRESS_S is read only when it is used
            interval = progress_interval_s() if interval_s is None else interval_s
            self._timer = threading.Thread(
                target=self._tick, args=(interval,), name=f"progress-{desc}", daemon=True
            )
            self._timer.start()

    # -- the tqdm calls the stages make ------------------------------------------------------

    @property
    def total(self) -> float | None:
        """Units expected (``None``: unknown)."""
        return self._total

    @total.setter
    def total(self, value: float | None) -> None:
        self._total = value
        if self._bar is not None:
            self._bar.total = value

    def update(self, n: float = 1, *, failed: bool = False) -> None:
        """Count ``n`` more units done; ``failed``: they ended in a failure.

        Only the stage's thread updates; the timer thread reads (no lock: the hot path of a
        million-row manifest).
        """
        self.n += n
        if failed:
            self.failed += int(n)
        if self._bar is not None:
            if failed:
                self._bar.set_postfix(self._shown(), refresh=False)
            self._bar.update(n)

    def set_postfix(self, values: Mapping[str, object] | None = None, **kwargs: object) -> None:
        """Extra figures shown after the count (``ok=3, MB="12"``), replacing earlier ones."""
        with self._lock:
            self._postfix = {**(values or {}), **kwargs}
        if self._bar is not None:
            self._bar.set_postfix(self._shown())

    def set_description(self, desc: str) -> None:
        """Rename what is counted (e.g. ``"epoch 3"``)."""
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc)

    def reset(self, total: float | None = None) -> None:
        """Start counting again from 0 (and the clock with it), with a new total."""
        with self._lock:
            self.n, self.failed, self._total = 0, 0, total
            self._started = time.monotonic()
        if self._bar is not None:
            self._bar.reset(total=total)

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """Hide the bar while the caller (the CLI) prints a line, then draw it again."""
        if self._bar is None:
            yield
            return
        with self._bar.external_write_mode(file=sys.stderr):
            yield

    def close(self) -> None:
        """Remove the bar, or stop the timer and log the final line. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        if self._timer is not None:
            self._stop.set()
            self._timer.join()
            if self.n or self._total:  # a stage with nothing to do says so itself
                logger.info("%s", self.line(final=True))

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the log lines -----------------------------------------------------------------------

    def line(self, *, final: bool = False) -> str:
        """The progress as one line.

        E.g. ``download: 120/500 videos (24%), 3.2 videos/s, ETA 2 min 00 s, failed 4``; with
        ``final``: ``download done: 500/500 videos (100%) in 2 min 36 s (3.2 videos/s), ...``.
        """
        with self._lock:
            n, total, failed = self.n, self._total, self.failed
            elapsed = time.monotonic() - self._started
            postfix = dict(self._postfix)
        if self.unit_scale:  # 1.2 GB/3.4 GB
            count = self._scaled(n) + (f"/{self._scaled(total)}" if total is not None else "")
            per_s = f"{self._scaled(n / elapsed if elapsed > 0 else 0.0)}/s"
        else:  # 120/500 videos
            count = f"{n:,.0f}" + (f"/{total:,.0f}" if total is not None else "")
            count += f" {self.unit if n == 1 and total is None else self.unit + 's'}"
            per_s = f"{n / elapsed if elapsed > 0 else 0.0:,.1f} {self.unit}s/s"
        if total:
            count += f" ({n / total:.0%})"
        rate = n / elapsed if elapsed > 0 else 0.0
        if final:
            word = "done" if total is None or n >= total else "stopped"
            parts = [f"{self.desc} {word}: {count} in {_duration(elapsed)} ({per_s})"]
        else:
            parts = [f"{self.desc}: {count}", per_s]
            if total is not None and n < total:
                eta = (total - n) / rate if rate > 0 else None
                parts.append(f"ETA {_duration(eta)}" if eta is not None else "ETA unknown")
        if failed:
            parts.append(f"failed {failed:,}")
        parts += [f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in postfix.items()]
        return ", ".join(parts)

    def _shown(self) -> dict[str, object]:
        return {**self._postfix, "failed": self.failed} if self.failed else dict(self._postfix)

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            logger.info("%s", self.line())

    def _scaled(self, value: float) -> str:
        for prefix in ("", "k", "M", "G", "T"):
            if abs(value) < 1000 or prefix == "T":
                return f"{value:.1f} {prefix}{self.unit}"
            value /= 1000
        raise AssertionError("unreachable")


def _duration(seconds: float | None) -> str:
    """``75.2`` -> ``"1 min 15 s"``; ``None`` -> ``"unknown"``."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


__all__ = ["DEFAULT_PROGRESS_S", "ENV_PROGRESS_S", "Progress", "progress_interval_s"]
