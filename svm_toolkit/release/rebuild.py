"""``svm rebuild RELEASE -o DATASET``: a dataset rebuilt from a release, stage by stage.

The release's checksums are verified first. The manifest is the release's samples as they
were (ids, URLs, clip bounds, metadata, and each sample's split, which ``svm splits make``
keeps); then the normal stages run with the release's settings: download (its ``max_height``),
preprocess (its filters, frames and fingerprint settings), extract (the release's extractors
that need no weights file unless others are named, with its frame rate and precision), and
splits. Each stage skips what is done, so re-running the command continues where it stopped;
``until`` stops after a stage.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import pyarrow as pa

from svm_toolkit.config import replace as replace_config
from svm_toolkit.download import DownloadConfig, run_download
from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.io.checked import read_table
from svm_toolkit.io.paths import DatasetLayout, id_problem
from svm_toolkit.io.shards import write_table_atomic
from svm_toolkit.manifest.build import write_manifest
from svm_toolkit.release import format as fmt
from svm_toolkit.release.write import DOWNLOAD_FIELDS, EXTRACT_FIELDS, PREPROCESS_FIELDS
from svm_toolkit.schema import (
    COL,
    MANIFEST_SCHEMA,
    SPLITS_SCHEMA,
    Split,
    Status,
    with_provenance,
)

logger = logging.getLogger(__name__)

C = TypeVar("C")
#: The most work per sample a release may ask of the machine that rebuilds it (a release is
#: untrusted input: a larger value could exhaust that machine's memory or time). Keys are
#: setting names at any depth (``librosa.n_fft`` is ``n_fft``); ``None`` (no bound) counts as
#: over the limit for ``max_media_s``.
RELEASE_LIMITS: Final[Mapping[str, float]] = {
    "frames": 64,
    "fingerprint_s": 600.0,
    "max_media_s": 4 * 3600.0,
    "fps": 30.0,
    "n_fft": 65_536,
    "win_length": 65_536,
    "hop_length": 65_536,
    "n_mels": 512,
}

#: The steps of a rebuild, in order (``until`` names one).
STEPS: Final = ("manifest", "download", "preprocess", "extract", "splits")
#: Extractors a rebuild runs unless others are named: their weights ship with the toolkit's
#: dependencies (or they have none), so they run offline.
OFFLINE: Final = ("efficientnet_lite0", "vmnet_music")


@dataclass(frozen=True, slots=True)
class RebuildConfig:
    """How ``svm rebuild`` runs.

    Attributes:
        until: the last step to run (one of :data:`STEPS`).
        extractors: extractors to run; ``None``: those of the release that run offline.
        download: download settings (the release's ``max_height`` replaces this one's).
        device: where the extractors run (``cpu``, ``cuda``, ``auto``).
        weights: ``(extractor, path)`` weights files of extractors that need one.
        workers: preprocess and decode worker processes (``None``: one per CPU core).
    """

    until: str = "splits"
    extractors: tuple[str, ...] | None = None
    download: DownloadConfig = field(default_factory=DownloadConfig)
    device: str = "auto"
    weights: tuple[tuple[str, str], ...] = ()
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.until not in STEPS:
            raise ConfigError(f"until must be one of {', '.join(STEPS)}, got {self.until!r}")


@dataclass(frozen=True, slots=True)
class StepReport:
    """One step of a rebuild: its name and its summary line."""

    step: str
    summary: str
    seconds: float


@dataclass(frozen=True, slots=True)
class RebuildSummary:
    """What ``svm rebuild`` did.

    Attributes:
        release: the release folder.
        dataset: the dataset root.
        samples: samples in the release.
        steps: each step that ran, in order.
        extractors: the extractors run (or to run).
        skipped_extractors: the release's extractors not run (weights needed: name them).
        seconds: wall time, seconds.
    """

    release: Path
    dataset: Path
    samples: int
    steps: tuple[StepReport, ...]
    extractors: tuple[str, ...] = ()
    skipped_extractors: tuple[str, ...] = ()
    seconds: float = 0.0

    def describe(self) -> str:
        """One line: the samples and the last step's summary."""
        last = self.steps[-1] if self.steps else None
        tail = f"; {last.step}: {last.summary}" if last else ""
        return f"{self.samples:,} samples from {self.release}{tail}"


def release_manifest(release: fmt.Release) -> pa.Table:
    """The manifest of a rebuild: one ``ok`` row per released sample, its split given.

    Raises:
        InputError: ``samples.parquet`` does not match the format, or holds an unsafe or
            duplicate id (the message names the file and the row).
    """
    path = release.path(fmt.SAMPLES)
    table = release.samples()
    seen: set[str] = set()
    columns: dict[str, list[Any]] = {f.name: [] for f in MANIFEST_SCHEMA}
    for row_number, row in enumerate(table.to_pylist()):
        sample_id = row[COL.sample_id]
        problem = id_problem(sample_id) or ("listed twice" if sample_id in seen else None)
        if problem:
            raise InputError(f"{path} row {row_number}: sample id {sample_id!r}: {problem}")
        seen.add(sample_id)
        for name, values in columns.items():
            if name == COL.status:
                values.append(Status.OK.value)
            elif name == COL.input_ref:
                values.append(f"{fmt.SAMPLES}:{row_number + 1}")
            else:
                values.append(row.get(name))
    schema = with_provenance(
        MANIFEST_SCHEMA,
        "manifest",
        {},
        inputs=[{"file": fmt.SAMPLES, "rows": table.num_rows}],
        release={
            "format": fmt.FORMAT_NAME,
            "version": release.meta.get("version"),
            "created": release.meta.get("created"),
            "sha256": release.meta["files"][fmt.SAMPLES]["sha256"],
        },
    )
    return pa.table(columns, schema=schema)


def rebuild_release(
    release_dir: Path,
    dataset: Path,
    config: RebuildConfig = RebuildConfig(),
    *,
    on_step: Callable[[StepReport], None] | None = None,
) -> RebuildSummary:
    """Rebuild ``dataset`` from the release in ``release_dir`` (resumable; see the module).

    Raises:
        InputError: the release is damaged (checksums), of a newer version, or the dataset
            holds a manifest with other samples.
        ConfigError: an extractor that is not in the release, or a stored stage setting this
            toolkit does not know.
    """
    from svm_toolkit.extract.config import ExtractConfig
    from svm_toolkit.extract.runner import run_extract
    from svm_toolkit.preprocess.config import PreprocessConfig
    from svm_toolkit.preprocess.runner import run_preprocess

    started = time.perf_counter()
    release = fmt.read_release(Path(release_dir))
    layout = DatasetLayout(Path(dataset))
    layout.root.mkdir(parents=True, exist_ok=True)
    stages = release.stages
    names, skipped = _extractors(release, config.extractors)
    steps: list[StepReport] = []

    def done(step: str, summary: str, since: float) -> None:
        report = StepReport(step, summary, time.perf_counter() - since)
        steps.append(report)
        logger.info("rebuild %s: %s", step, summary)
        if on_step is not None:
            on_step(report)

    since = time.perf_counter()
    manifest = release_manifest(release)
    _check_other_samples(layout, manifest)
    unchanged = write_manifest(manifest, layout.root, overwrite=False)
    done("manifest", f"{manifest.num_rows:,} samples{' (unchanged)' if unchanged else ''}", since)

    def wanted(step: str) -> bool:
        return STEPS.index(step) <= STEPS.index(config.until)

    if wanted("download"):
        since = time.perf_counter()
        download = _settings(
            config.download, stages.get("download", {}), "download", DOWNLOAD_FIELDS
        )
        done("download", run_download(layout.root, download).describe(), since)
    if wanted("preprocess"):
        since = time.perf_counter()
        preprocess = _settings(
            _workers(PreprocessConfig(), config.workers),
            stages.get("preprocess", {}),
            "preprocess",
            PREPROCESS_FIELDS,
        )
        done("preprocess", run_preprocess(layout.root, preprocess).describe(), since)
    if wanted("extract") and names:
        since = time.perf_counter()
        stored = _mapping(release.extractors[names[0]].get("provenance"), "provenance")
        stored = _mapping(stored.get("config"), "provenance.config")
        keep = {k: v for k, v in stored.items() if k in EXTRACT_FIELDS}
        extract = _settings(
            ExtractConfig(
                extractors=names,
                device=config.device,
                weights=config.weights,
                workers=config.workers or 0,
            ),
            keep,
            "extract",
            EXTRACT_FIELDS,
        )
        done("extract", run_extract(layout.root, extract).describe(), since)
    if wanted("splits"):
        since = time.perf_counter()
        done("splits", write_surviving_splits(release, layout), since)
    summary = RebuildSummary(
        release=release.root,
        dataset=layout.root,
        samples=manifest.num_rows,
        steps=tuple(steps),
        extractors=names,
        skipped_extractors=skipped,
        seconds=time.perf_counter() - started,
    )
    return summary


def _check_other_samples(layout: DatasetLayout, manifest: pa.Table) -> None:
    """Refuse a dataset whose manifest holds samples the release does not (another dataset).

    Raises:
        InputError: naming the folder, a few of those samples, and the fix.
    """
    if not layout.manifest.exists():
        return
    old = read_table(layout.manifest, columns=[COL.sample_id]).column(0).to_pylist()
    ours = set(manifest.column(COL.sample_id).to_pylist())
    other = [s for s in old if s not in ours]
    if other:
        shown = ", ".join(repr(s) for s in other[:3]) + (", ..." if len(other) > 3 else "")
        raise InputError(
            f"{layout.manifest}: holds {len(other)} samples that are not in this release "
            f"({shown}), so it is another dataset; rebuild into an empty folder (-o)"
        )


def write_surviving_splits(release: fmt.Release, layout: DatasetLayout) -> str:
    """Write ``splits.parquet``: the release's split and group of each sample that survived.

    A sample survived when it has usable media (downloaded, and passed preprocessing). Samples
    that did not are left out, as ``svm splits make`` leaves out failed samples; the file's
    provenance carries the release's split settings (its ratios), so ``svm splits validate``
    checks sizes against them.

    Returns:
        One line: ``153 of 170 samples kept: train 84 · val 23 · test 46 (17 left out)``.
    """
    from svm_toolkit.splits.inputs import load_inputs

    usable = load_inputs(layout.root).samples["usable"]
    table = release.samples(columns=[COL.sample_id, COL.split, COL.group])
    rows = [r for r in table.to_pylist() if bool(usable.get(r[COL.sample_id], False))]
    rows.sort(key=lambda r: r[COL.sample_id])
    stored = release.stages.get("splits", {})
    schema = with_provenance(SPLITS_SCHEMA, "splits", stored, release=fmt.FORMAT_NAME)
    kept = pa.table(
        {name: [r[name] for r in rows] for name in (COL.sample_id, COL.split, COL.group)},
        schema=schema,
    )
    write_table_atomic(kept, layout.splits)
    counts = Counter(r[COL.split] for r in rows)
    splits = " · ".join(f"{s.value} {counts[s.value]:,}" for s in Split)
    left = table.num_rows - len(rows)
    return f"{len(rows):,} of {table.num_rows:,} samples kept: {splits} ({left:,} left out)"


def _workers(base: C, workers: int | None) -> C:
    return dataclasses.replace(base, workers=workers) if workers else base  # type: ignore[type-var]


def _extractors(
    release: fmt.Release, asked: tuple[str, ...] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The extractors to run and the release's extractors left out."""
    available = tuple(release.extractors)
    if asked is None:
        names = tuple(n for n in available if n in OFFLINE)
    else:
        unknown = [n for n in asked if n not in available]
        if unknown:
            raise ConfigError(
                f"--extractors {','.join(unknown)}: not in the release (it has "
                f"{', '.join(available) or 'no features'})"
            )
        names = tuple(asked)
    skipped = tuple(n for n in available if n not in names)
    if skipped:
        logger.info(
            "rebuild: not extracting %s (weights needed: name them with --extractors and give "
            "--weights NAME=PATH)",
            ", ".join(skipped),
        )
    return names, skipped


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` when it is a JSON object (or absent: empty).

    Raises:
        InputError: it is something else (the field of ``release.json`` is named).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(
            f"{fmt.RELEASE_JSON}: {where} is {type(value).__name__}, not an object; the release "
            "is damaged, get it again"
        )
    return value


def _settings(base: C, stored: Any, stage: str, allowed: tuple[str, ...]) -> C:
    """``base`` with the release's stored settings of ``stage`` that ``allowed`` names.

    Only the allow-listed settings of a stage (those that change its results) are taken from
    a release: anything else (``ytdlp_options``, ``proxy``, cookies, host policy, paths,
    workers) belongs to the machine that runs the rebuild, and is ignored with a warning.

    Raises:
        InputError: the stored settings are not a JSON object, or ask for more work per sample
            than :data:`RELEASE_LIMITS` allows (the key is named).
        ConfigError: a stored value this toolkit's config refuses (the key is named).
    """
    stored = _mapping(stored, f"stages.{stage}")
    known = {f.name for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    overrides = {k: v for k, v in stored.items() if k in allowed and k in known}
    ignored = sorted(k for k in stored if k not in overrides)
    if ignored:
        logger.warning(
            "rebuild %s: settings of %s ignored (a rebuild takes only %s from a release): %s",
            stage,
            fmt.RELEASE_JSON,
            ", ".join(allowed),
            ", ".join(map(str, ignored)),
        )
    where = f"{fmt.RELEASE_JSON} stages.{stage}"
    config = replace_config(base, overrides, where=where)
    _check_limits(config, base, where)
    return config


def _check_limits(config: Any, base: Any, where: str) -> None:
    """Refuse a setting the release changed from ``base`` beyond :data:`RELEASE_LIMITS`."""
    for f in dataclasses.fields(config):
        value, before = getattr(config, f.name), getattr(base, f.name, None)
        if value == before:
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            _check_limits(value, before, f"{where}.{f.name}")
            continue
        limit = RELEASE_LIMITS.get(f.name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if limit is not None and (value is None or (number and value > limit)):
            raise InputError(
                f"{where}.{f.name} = {value!r}: more than a rebuild takes from a release "
                f"(at most {limit:g}); the release asks too much of this machine, get it again "
                "from its authors or edit release.json and SHA256SUMS yourself"
            )
