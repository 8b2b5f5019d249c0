"""``export_dataset``: a dataset's features in a layout other training code reads.

The export is planned before anything is written: which samples (those with a split and every
feature), in which order, in which files. The plan, the options and the hash of every committed
shard read go to ``OUT/.export.json`` (hidden from globs). A re-run with the same plan keeps the
files already finished and writes the rest, so a killed export, run again, ends with the same
files as an uninterrupted one; a re-run whose plan differs (other options, or a feature shard
committed since) is refused rather than mixing two exports in one folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.export.npy import INDEX_NAME, write_npy
from svm_toolkit.export.source import (
    FeatureSource,
    Sample,
    open_sources,
    parse_split_option,
    plan_samples,
)
from svm_toolkit.export.webdataset import plan_tars, write_webdataset
from svm_toolkit.io.atomic import atomic_path
from svm_toolkit.progress import Progress

logger = logging.getLogger(__name__)

DEFAULT_MAX_SAMPLES: Final = 10_000
"""webdataset: samples per tar at most, by default."""
DEFAULT_MAX_BYTES: Final = 256 * 2**20
"""webdataset: bytes per tar at most, by default (256 MiB)."""

STATE_NAME: Final = ".export.json"
"""The plan of the export in ``OUT`` (hidden: globs and readers skip it)."""


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """What to export and how.

    Attributes:
        format: ``webdataset`` (tar shards) or ``npy`` (one file per sample and feature).
        features: feature sets (extractor names) to export; empty: every one the dataset has.
        split: ``train``, ``val`` or ``test`` only; ``None``: every split.
        max_samples: webdataset: samples per tar at most.
        max_bytes: webdataset: bytes per tar at most (estimated; a single larger sample gets a
            tar of its own). 256 MiB by default: large enough to stream well, small enough
            that a training run shuffles across many shards.
        read_bytes: vectors read at a time, bytes: what bounds the memory (both formats).
    """

    format: str
    features: tuple[str, ...] = ()
    split: str | None = None
    max_samples: int = DEFAULT_MAX_SAMPLES
    max_bytes: int = DEFAULT_MAX_BYTES
    read_bytes: int = 32 * 2**20

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"--format {self.format!r}: use one of {', '.join(FORMATS)}")
        if self.max_samples < 1 or self.max_bytes < 1 or self.read_bytes < 1:
            raise ConfigError(
                f"export limits must be >= 1 (max_samples={self.max_samples}, "
                f"max_bytes={self.max_bytes}, read_bytes={self.read_bytes})"
            )
        parse_split_option(self.split)


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What one export run did.

    Attributes:
        out: the export folder.
        format: the format.
        features: the feature sets exported.
        by_split: samples exported per split.
        written: files (tars, ``.npy`` files) written by this run.
        kept: files an earlier run had finished, kept.
        bytes_written: bytes this run wrote.
        left_out: why samples with a split were not exported, e.g. ``{"no vggish": 3}``.
        read_with: where to start reading the export (a brace pattern, or the index).
    """

    out: Path
    format: str
    features: tuple[str, ...]
    by_split: Mapping[str, int]
    written: int
    kept: int
    bytes_written: int
    left_out: Mapping[str, int] = field(default_factory=dict)
    read_with: tuple[str, ...] = ()

    @property
    def samples(self) -> int:
        """Samples exported."""
        return sum(self.by_split.values())

    def describe(self) -> str:
        """One line: samples, splits, features, files written and kept, where to read."""
        splits = ", ".join(f"{k} {v}" for k, v in self.by_split.items())
        what = "tars" if self.format == "webdataset" else "files"
        line = (
            f"{self.samples} samples ({splits}) x {len(self.features)} feature(s) "
            f"({', '.join(self.features)}) -> {self.out} as {self.format}: {self.written} "
            f"{what} written ({self.bytes_written / 2**20:.1f} MiB), {self.kept} kept"
        )
        if self.left_out:
            line += f"; left out: {dict(self.left_out)}"
        return line + f"; read {' '.join(self.read_with)}"


Exporter = Callable[
    [Path, Mapping[str, FeatureSource], list[Sample], ExportConfig, Progress],
    tuple[tuple[int, int, int], tuple[str, ...]],
]
"""Writes one format: ``(written, kept, bytes_written)`` and where to start reading."""


def _webdataset(
    out: Path,
    sources: Mapping[str, FeatureSource],
    samples: list[Sample],
    config: ExportConfig,
    bar: Progress,
) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    plans = plan_tars(samples, sources, max_samples=config.max_samples, max_bytes=config.max_bytes)
    bar.reset(total=len(samples))
    counts = Counter(p.name.rsplit("-", 1)[0] for p in plans)
    patterns = tuple(
        str(out / f"{split}-{{000000..{n - 1:06d}}}.tar") for split, n in counts.items()
    )
    done = write_webdataset(out, sources, plans, read_bytes=config.read_bytes, bar=bar)
    return done, patterns


def _npy(
    out: Path,
    sources: Mapping[str, FeatureSource],
    samples: list[Sample],
    config: ExportConfig,
    bar: Progress,
) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    bar.reset(total=len(samples) * len(sources))
    counts = write_npy(out, sources, samples, read_bytes=config.read_bytes, bar=bar)
    return counts, (str(out / INDEX_NAME),)


FORMATS: Final[Mapping[str, Exporter]] = {"webdataset": _webdataset, "npy": _npy}
"""The export formats, by ``--format`` name."""


def export_dataset(dataset: Path | str, out: Path | str, config: ExportConfig) -> ExportSummary:
    """Export the features of ``dataset`` to ``out`` in ``config.format``.

    Features are read shard by shard (committed shards only, each sample's newest row: the
    rules of :func:`svm_toolkit.io.shards.read_shards`), splits from ``splits.parquet`` (else
    the manifest's split column), songs from the manifest. Memory holds one read batch
    (``config.read_bytes`` of vectors) and each feature's index of ids and step times, never
    a whole tar or feature set.

    Args:
        dataset: the dataset root.
        out: the export folder (created; must be empty or hold this same export).
        config: format, features, split and limits.

    Returns:
        The summary (one line with :meth:`ExportSummary.describe`).

    Raises:
        InputError: no features or splits, ``out`` not empty and not this export, or a damaged
            shard (the message names the file and the fix).
        ConfigError: a bad option.
    """
    dataset, out = Path(dataset), Path(out)
    sources = open_sources(dataset, config.features)
    samples, left_out = plan_samples(dataset, sources, config.split)
    exporter = FORMATS[config.format]
    options = {k: v for k, v in asdict(config).items() if k != "read_bytes"}  # changes no file
    state = {
        "config": options | {"features": list(sources)},
        "features": {name: source.digest for name, source in sources.items()},
        "samples": _digest([[s.sample_id, s.split, s.music_id] for s in samples]),
    }
    _claim(out, state)
    with Progress("export", unit="file") as bar:
        (written, kept, nbytes), read_with = exporter(out, sources, samples, config, bar)
    by_split = Counter(s.split for s in samples)
    return ExportSummary(
        out=out,
        format=config.format,
        features=tuple(sources),
        by_split={k: by_split[k] for k in ("train", "val", "test") if by_split[k]},
        written=written,
        kept=kept,
        bytes_written=nbytes,
        left_out=left_out,
        read_with=read_with,
    )


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _claim(out: Path, state: Mapping[str, object]) -> None:
    """Make ``out`` this export's folder, or check that it already is.

    Raises:
        InputError: ``out`` holds other files, or an export with another plan.
    """
    path = out / STATE_NAME
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    if path.exists():
        if path.read_text() != text:
            raise InputError(
                f"{out}: holds another export (other options, or features committed since it "
                f"began: see {path}); export to a new folder, or remove {out} and run again"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out}: not empty and not an export; choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
