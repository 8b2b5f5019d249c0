"""Shared set-up of the download fault and policy tests: a dataset from URLs, `svm download`."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from svm_toolkit.cli import main
from svm_toolkit.io.shards import read_shards
from svm_toolkit.manifest import ManifestConfig, build_manifest
from tests.manifest.helpers import write_list


def dataset(tmp_path: Path, urls: Mapping[str, str], name: str = "ds") -> Path:
    """A dataset whose manifest holds ``urls`` under their ids."""
    rows = [{"id": k, "url": v} for k, v in urls.items()]
    config = ManifestConfig(id_column="id")
    build_manifest([write_list(tmp_path / f"{name}.csv", rows)], tmp_path / name, config)
    return tmp_path / name


def ledger(ds: Path) -> dict[str, dict[str, object]]:
    """The committed download ledger: sample id -> newest row."""
    table = read_shards(ds / "ledger", "download")
    return {} if table is None else {str(r["sample_id"]): r for r in table.to_pylist()}


@dataclass(frozen=True)
class Result:
    """What one ``svm download`` printed and its exit code."""

    returncode: int
    stdout: str
    stderr: str


def svm_download(ds: Path, *args: str) -> Result:
    """Run ``svm download`` through the CLI's entry point, in this process (no start-up cost)."""
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["download", str(ds), *args])
        except SystemExit as exc:
            code = exc.code
    return Result(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


def svm_command(ds: Path, *args: str) -> list[str]:
    """The ``svm download`` command line, for a child process."""
    return [sys.executable, "-m", "svm_toolkit", "download", str(ds), *args]


def leftovers(ds: Path) -> list[Path]:
    """Scratch files a download left behind (none after any run)."""
    scratch = ds / "media" / ".tmp"
    return sorted(scratch.rglob("*")) if scratch.exists() else []
