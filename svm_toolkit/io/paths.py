"""Where everything lives inside a dataset root (DESIGN §2), and safe sample ids.

A sample id becomes part of file names, so it is checked before it is used: nothing a manifest
holds can make the toolkit write outside the dataset root.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from svm_toolkit.errors import InputError

MAX_ID_LENGTH: Final = 128
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
#: :data:`_SAFE_ID` with the length bound, anchored, for Arrow's RE2 (``pyarrow.compute``) over
#: whole columns: the rule of :func:`id_problem` less its ``..``, which callers test apart.
SAFE_ID_RE2: Final = rf"^{_SAFE_ID.pattern[:-1]}{{0,{MAX_ID_LENGTH - 1}}}$"


def id_problem(sample_id: str) -> str | None:
    """Return why ``sample_id`` is not a safe file-name component, or ``None`` when it is.

    Safe ids are 1-128 characters of ``A-Z a-z 0-9 _ - .``, do not start with ``.`` and do not
    contain ``..`` (so ``../x``, absolute paths, NUL and path separators are all refused).
    """
    if not sample_id:
        return "it is empty"
    if len(sample_id) > MAX_ID_LENGTH:
        return f"it is {len(sample_id)} characters long (at most {MAX_ID_LENGTH})"
    if not _SAFE_ID.fullmatch(sample_id) or ".." in sample_id:
        return "only letters, digits, '_', '-' and '.' are allowed (no leading '.', no '..')"
    return None


def check_sample_id(sample_id: str) -> str:
    """Return ``sample_id`` if it is safe to use in a path (see :func:`id_problem`).

    Raises:
        InputError: the id is unsafe.
    """
    problem = id_problem(sample_id)
    if problem:
        raise InputError(f"sample id {sample_id[:80]!r} cannot be used: {problem}")
    return sample_id


@dataclass(frozen=True, slots=True)
class DatasetLayout:
    """Paths of one dataset root.

    Example:
        >>> DatasetLayout(Path("ds")).media_path("dQw4w9WgXcQ", ".mp4").as_posix()
        'ds/media/dQ/dQw4w9WgXcQ.mp4'
    """

    root: Path

    @property
    def manifest(self) -> Path:
        """The manifest, one row per sample."""
        return self.root / "manifest.parquet"

    @property
    def ledger_dir(self) -> Path:
        """Per-stage status shards: ``ledger/<stage>-00000.parquet``."""
        return self.root / "ledger"

    @property
    def media_dir(self) -> Path:
        """Downloaded media, fanned out by the first two characters of the id."""
        return self.root / "media"

    @property
    def preprocess_dir(self) -> Path:
        """Fingerprints, Mel shards and cropped videos (the preprocess ledger is in ``ledger/``)."""
        return self.root / "preprocess"

    @property
    def fingerprints_dir(self) -> Path:
        """Perceptual hashes and audio fingerprints: ``preprocess/fingerprints/``."""
        return self.preprocess_dir / "fingerprints"

    def mel_dir(self, recipe: str) -> Path:
        """Shards of one Mel recipe: ``preprocess/mel_<recipe>/``."""
        return self._inside(self.preprocess_dir / f"mel_{check_sample_id(recipe)}")

    def cropped_path(self, sample_id: str) -> Path:
        """A sample's materialised cropped video: ``preprocess/cropped/ab/<id>.mp4``."""
        check_sample_id(sample_id)
        fan = sample_id[:2].ljust(2, "_")
        return self._inside(self.preprocess_dir / "cropped" / fan / f"{sample_id}.mp4")

    @property
    def splits(self) -> Path:
        """``sample_id -> split`` table."""
        return self.root / "splits.parquet"

    @property
    def split_links(self) -> Path:
        """The links ``svm splits make`` found: which samples it tied together, and by what."""
        return self.root / "splits_links.parquet"

    def features_dir(self, extractor: str) -> Path:
        """Feature shards of one extractor."""
        return self._inside(self.root / "features" / check_sample_id(extractor))

    def run_dir(self, name: str) -> Path:
        """A training run's checkpoints, metrics and report."""
        return self._inside(self.root / "runs" / check_sample_id(name))

    def media_path(self, sample_id: str, suffix: str) -> Path:
        """Path of a sample's media file, e.g. ``media/ab/abXXXXXXX.mp4``.

        Raises:
            InputError: the id is unsafe.
        """
        check_sample_id(sample_id)
        fan = sample_id[:2].ljust(2, "_")
        return self._inside(self.media_dir / fan / f"{sample_id}{suffix}")

    def _inside(self, path: Path) -> Path:
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if os.path.commonpath([root, real]) != root:
            raise InputError(f"{path} resolves outside the dataset root {self.root}")
        return path
