"""The exception hierarchy.

Every error a user can cause is an :class:`SvmError` whose message says what is wrong and how to fix
it; the CLI prints the message (no traceback) and exits with :attr:`SvmError.exit_code`.
Per-sample failures are not exceptions that escape a stage: they become ledger rows with a status.
"""

from __future__ import annotations


class SvmError(Exception):
    """Base class of the toolkit's user-facing errors."""

    exit_code: int = 1


class ConfigError(SvmError):
    """A configuration value is invalid."""

    exit_code = 2


class InputError(SvmError):
    """A user-supplied file, row or value is invalid (the message names file, line and fix)."""

    exit_code = 2


class SchemaMismatchError(SvmError):
    """A Parquet file was written by an incompatible schema version or has the wrong columns."""


class MissingToolError(SvmError):
    """A required external program (ffmpeg, ffprobe) is not installed."""


class MissingWeightsError(SvmError):
    """A model's weights file is missing or is not that model's (message says where to get it)."""


class BusyError(SvmError):
    """Another process is writing the same output."""


class WorkerCrashError(SvmError):
    """A worker process died (out of memory, or a crash in native code); finished work is kept."""


class TrainingDivergedError(SvmError):
    """Training produced a non-finite loss (the message says which step and what to change)."""


class SampleError(SvmError):
    """An expected per-sample failure; stages turn it into a ledger row, never a crash.

    Attributes:
        status: the row's status (a :class:`svm_toolkit.schema.Status` value).
        detail: what went wrong, for the row's ``detail`` (may be shortened).
        message: the raw message the status was read from (``detail`` when not given); the
            download breaker reads it to tell a connect failure, which a short detail may cut.
    """

    def __init__(self, status: str, detail: str, message: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.message = detail if message is None else message
