"""Shared fixtures. ffmpeg is required: a missing ffmpeg fails the run, it never skips tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from svm_toolkit.testing import LoopbackServer, MediaSpec, make_media


def pytest_sessionstart(session: pytest.Session) -> None:
    # Every test server is on 127.0.0.1, which the network policy refuses unless asked for; tests
    # of the policy itself delete this (monkeypatch.delenv). Child processes inherit it.
    os.environ["SVM_ALLOW_PRIVATE_HOSTS"] = "1"
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise pytest.UsageError(f"{', '.join(missing)} not installed: run scripts/setup.sh --dev")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def probe(path: Path) -> dict[str, Any]:
    """ffprobe a file: {'format': {...}, 'streams': [...]}."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        capture_output=True,
        check=True,
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small generated clips shared by the whole session."""
    root = tmp_path_factory.mktemp("media")
    make_media(root / "clip.mp4", MediaSpec(seconds=2.0, size=(160, 120), content=(160, 88)))
    make_media(root / "silent.mp4", MediaSpec(seconds=1.0, audio=None))
    return root


@pytest.fixture(scope="session")
def server(media_dir: Path):  # type: ignore[no-untyped-def]
    with LoopbackServer(media_dir, slow_s=0.5) as srv:
        yield srv
