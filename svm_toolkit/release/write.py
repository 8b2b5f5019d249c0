"""``svm release DATASET -o DIR``: the files another lab needs to rebuild a dataset, no media.

What goes in is described in :mod:`svm_toolkit.release.format`. The released samples are those
of ``splits.parquet`` (the dataset as it is used: samples that failed or were filtered are not
in a split and are not released). Everything is written into a hidden temporary folder beside
``DIR`` and renamed into place at the end, so ``DIR`` is either the old release or the whole
new one.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from svm_toolkit import __version__
from svm_toolkit.card import card_facts, render_datasheet
from svm_toolkit.errors import InputError, SchemaMismatchError
from svm_toolkit.io.atomic import fsync_dir, fsync_file, write_bytes_atomic, write_json
from svm_toolkit.io.checked import read_schema, read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import committed_shards, read_shards
from svm_toolkit.manifest.build import read_manifest
from svm_toolkit.release import format as fmt
from svm_toolkit.schema import COL, METADATA_KEY, SPLITS_SCHEMA, check_columns, read_provenance

logger = logging.getLogger(__name__)

STAGE: Final = "release"
#: The download settings a release records: those that decide which media file is fetched.
DOWNLOAD_FIELDS: Final = ("max_height",)
#: The preprocess settings a release records and a rebuild applies: those that change its
#: results (filters, Mel recipes, frames, fingerprints); never paths, workers or pacing.
PREPROCESS_FIELDS: Final = (
    "filters",
    "mel",
    "librosa",
    "channels",
    "speech",
    "frames",
    "picture_track",
    "crop_limit",
    "fingerprint_s",
    "max_media_s",
)
#: The extract settings a rebuild applies from an extractor's provenance.
EXTRACT_FIELDS: Final = ("fps", "precision")
#: Fields of a stage config that belong to the machine that ran it, not to the dataset
#: (absolute paths of that machine among them: they never enter ``release.json``).
MACHINE_FIELDS: Final = (
    "workers",
    "retry",
    "commit_every_s",
    "device",
    "batch_size",
    "weights",
    "vggish_pca",
)


@dataclass(frozen=True, slots=True)
class ReleaseConfig:
    """How ``svm release`` computes the per-sample feature checks.

    Attributes:
        check_dims: dimensions of each extractor's check vector (centred random projection).
        seed: seed of the projection matrix (stored in the release with the matrix).
    """

    check_dims: int = fmt.CHECK_DIMS
    seed: int = fmt.PROJECTION_SEED


@dataclass(frozen=True, slots=True)
class ReleaseSummary:
    """What ``svm release`` wrote.

    Attributes:
        path: the release folder.
        samples: samples released.
        by_split: released samples per split.
        fingerprints: samples with a fingerprint row.
        extractors: extractor -> samples with a check vector.
        files: release-relative file names, each with its size in bytes.
        seconds: wall time, seconds.
    """

    path: Path
    samples: int
    by_split: dict[str, int]
    fingerprints: int
    extractors: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        """One line: samples per split, what was checked, files and size."""
        splits = " · ".join(f"{k} {v:,}" for k, v in self.by_split.items())
        size = sum(self.files.values()) / 1e6
        extractors = ", ".join(self.extractors) or "no features"
        return (
            f"{self.samples:,} samples ({splits}); fingerprints of {self.fingerprints:,}; "
            f"checks of {extractors}; {len(self.files)} files, {size:.2f} MB in {self.path}"
        )


def write_release(
    dataset: Path,
    out: Path,
    config: ReleaseConfig = ReleaseConfig(),
    *,
    overwrite: bool = False,
) -> ReleaseSummary:
    """Write the release of ``dataset`` into ``out`` (atomically: temp folder, then rename).

    Raises:
        InputError: no manifest or no ``splits.parquet``; ``out`` is the dataset, above it or
            inside it; ``out`` exists and is not an empty folder (without ``overwrite``; with
            it, when ``out`` holds no ``release.json``); a committed file of the dataset is
            damaged.
    """
    started = time.perf_counter()
    layout = DatasetLayout(Path(dataset))
    out = Path(out)
    _check_out(layout.root, out, overwrite=overwrite)
    samples = _samples(layout)
    ids = samples.column(COL.sample_id)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / fmt.FEATURES_DIR).mkdir(parents=True)
    try:
        pq.write_table(samples, tmp / fmt.SAMPLES, compression="zstd")
        prints = _fingerprints(layout, ids)
        files_rows = {fmt.SAMPLES: samples.num_rows}
        if prints is not None:
            pq.write_table(prints, tmp / fmt.FINGERPRINTS, compression="zstd")
            files_rows[fmt.FINGERPRINTS] = prints.num_rows
        extractors: dict[str, dict[str, Any]] = {}
        checked_rows: dict[str, int] = {}
        for name in _extractor_names(layout):
            entry = _feature_checks(layout, name, ids, tmp, config)
            if entry is not None:
                extractors[name] = entry
                checked_rows[name] = entry["samples"]
                files_rows[fmt.check_path(name)] = entry["samples"]
        by_split = _by_split(samples)
        (tmp / fmt.CARD).write_text(_card(layout, samples, by_split), encoding="utf-8")
        files = {
            name: {"bytes": (tmp / name).stat().st_size, "sha256": fmt.sha256_file(tmp / name)}
            | ({"rows": files_rows[name]} if name in files_rows else {})
            for name in sorted(_files(tmp))
        }
        meta = {
            "format": fmt.FORMAT_NAME,
            "version": fmt.FORMAT_VERSION,
            "toolkit_version": __version__,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "dataset": layout.root.resolve().name,
            "counts": {
                "samples": samples.num_rows,
                "by_split": by_split,
                "groups": len(set(samples.column(COL.group).to_pylist())),
                "fingerprints": 0 if prints is None else prints.num_rows,
            },
            "stages": _stage_configs(layout),
            "extractors": extractors,
            "files": files,
        }
        write_json(tmp / fmt.RELEASE_JSON, meta)
        sums = [f"{f['sha256']}  {name}" for name, f in files.items()]
        sums.append(f"{fmt.sha256_file(tmp / fmt.RELEASE_JSON)}  {fmt.RELEASE_JSON}")
        write_bytes_atomic(
            tmp / fmt.CHECKSUMS, ("\n".join(sorted(sums, key=_name)) + "\n").encode()
        )
        sizes = {name: (tmp / name).stat().st_size for name in sorted(_files(tmp))}
        _put_in_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary = ReleaseSummary(
        path=out,
        samples=samples.num_rows,
        by_split=by_split,
        fingerprints=0 if prints is None else prints.num_rows,
        extractors=checked_rows,
        files=sizes,
        seconds=time.perf_counter() - started,
    )
    logger.info("release: %s", summary.describe())
    return summary


def _name(line: str) -> str:
    return line.partition("  ")[2]


def _files(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]


def _check_out(dataset: Path, out: Path, *, overwrite: bool) -> None:
    """Refuse an ``out`` that a release must not replace.

    Raises:
        InputError: ``out`` is the dataset, a folder above it or inside it; or ``out`` exists
            and is not empty, without ``overwrite``; or, with it, holds files but no
            ``release.json`` (it is not a release: it is not deleted).
    """
    where, data = out.resolve(), dataset.resolve()
    if where == data or where in data.parents or data in where.parents:
        raise InputError(
            f"{out}: is the dataset {dataset}, a folder above it or inside it; a release "
            "replaces its folder, so pick an -o outside the dataset"
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; pick another -o")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise InputError(
            f"{out} exists and is not empty; pass --overwrite to replace it or pick another -o"
        )
    if not (out / fmt.RELEASE_JSON).is_file():
        raise InputError(
            f"{out}: holds files but no {fmt.RELEASE_JSON}, so it is not a release and "
            "--overwrite does not delete it; empty it or pick another -o"
        )


def _put_in_place(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp``: the old folder moves aside first, then goes.

    Every file and folder of ``tmp`` is fsynced before the rename, and the parent folder
    after it, so a power cut leaves either the old release or the whole new one on disk.
    """
    written = sorted(tmp.rglob("*"))
    for path in written:
        if path.is_file():
            fsync_file(path)
    for folder in [p for p in written if p.is_dir()] + [tmp]:
        fsync_dir(folder)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


def _by_split(samples: pa.Table) -> dict[str, int]:
    counts = Counter(samples.column(COL.split).to_pylist())
    return {s: counts[s] for s in ("train", "val", "test") if counts[s]} | {
        s: n for s, n in counts.items() if s not in ("train", "val", "test")
    }


def _samples(layout: DatasetLayout) -> pa.Table:
    """One row per sample of ``splits.parquet``, in :data:`fmt.SAMPLES_SCHEMA`."""
    manifest = read_manifest(layout.root)
    if not layout.splits.exists():
        raise InputError(
            f"{layout.splits}: no splits; a release holds the splits, make them first with "
            f"'svm splits make {layout.root}'"
        )
    check_columns(read_schema(layout.splits), SPLITS_SCHEMA, where=str(layout.splits))
    splits = read_table(layout.splits, columns=[COL.sample_id, COL.split, COL.group])
    rows = {r[COL.sample_id]: r for r in manifest.to_pylist()}
    missing = [s for s in splits.column(COL.sample_id).to_pylist() if s not in rows]
    if missing:
        raise InputError(
            f"{layout.splits}: {len(missing)} samples are not in the manifest ({missing[0]!r}, "
            f"...); re-run 'svm splits make {layout.root} --overwrite'"
        )
    media = _media_facts(layout)
    out: dict[str, list[Any]] = {f.name: [] for f in fmt.SAMPLES_SCHEMA}
    order = sorted(splits.to_pylist(), key=lambda r: r[COL.sample_id])
    for split_row in order:
        row = rows[split_row[COL.sample_id]]
        facts = media.get(split_row[COL.sample_id], {})
        for name in out:
            if name in (COL.split, COL.group):
                out[name].append(split_row[name])
            elif name in row:
                out[name].append(row[name])
            else:
                out[name].append(facts.get(name))
    table = pa.table(out, schema=fmt.SAMPLES_SCHEMA)
    return table.replace_schema_metadata(_meta("samples"))


def _meta(what: str) -> dict[bytes, bytes]:
    """The metadata of a release file: format, version, toolkit version and which file."""
    payload = {
        "format": fmt.FORMAT_NAME,
        "version": fmt.FORMAT_VERSION,
        "toolkit_version": __version__,
        "file": what,
    }
    return {METADATA_KEY: json.dumps(payload, sort_keys=True).encode()}


def _media_facts(layout: DatasetLayout) -> dict[str, dict[str, Any]]:
    """Per sample, its preprocess facts: duration, size and crop box (newest row)."""
    columns = [fmt.MEDIA_DURATION, fmt.WIDTH, fmt.HEIGHT, COL.crop_x, COL.crop_y]
    columns += [COL.crop_w, COL.crop_h]
    table = read_shards(layout.ledger_dir, "preprocess", columns=columns)
    if table is None:
        return {}
    return {r[COL.sample_id]: r for r in table.to_pylist()}


def _fingerprints(layout: DatasetLayout, ids: pa.ChunkedArray) -> pa.Table | None:
    """The fingerprint rows of the released samples, every column as stored."""
    table = read_shards(layout.fingerprints_dir, "part")
    if table is None:
        return None
    table = table.filter(pc.is_in(table.column(COL.sample_id), value_set=ids.combine_chunks()))
    table = table.sort_by(COL.sample_id)
    return table.replace_schema_metadata(_meta("fingerprints"))


def _extractor_names(layout: DatasetLayout) -> list[str]:
    root = layout.root / "features"
    return sorted(p.name for p in root.glob("*") if p.is_dir() and committed_shards(p, "part"))


def pooled_vectors(
    layout: DatasetLayout, extractor: str
) -> tuple[list[str], npt.NDArray[np.float32], dict[str, Any]] | None:
    """An extractor's pooled vectors (float32, one row per sample) and its provenance.

    Returns:
        ``(ids, vectors, provenance)``, or ``None`` when nothing is committed or the shards
        hold no pooled ``embedding`` column.
    """
    folder = layout.features_dir(extractor)
    shards = committed_shards(folder, "part")
    if not shards:
        return None
    schema = read_schema(shards[0])
    if COL.embedding not in schema.names:
        logger.warning("%s: no pooled %s column; no feature check", folder, COL.embedding)
        return None
    try:
        provenance = read_provenance(schema, where=str(shards[0]))
    except SchemaMismatchError as exc:
        logger.warning("%s: %s; no feature check", folder, exc)
        return None
    table = read_shards(folder, "part", columns=[COL.embedding])
    if table is None:
        return None
    column = table.column(COL.embedding).combine_chunks()
    dim = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    vectors = values.reshape(len(column), dim)
    return table.column(COL.sample_id).to_pylist(), vectors, provenance


def _feature_checks(
    layout: DatasetLayout, name: str, ids: pa.ChunkedArray, tmp: Path, config: ReleaseConfig
) -> dict[str, Any] | None:
    found = pooled_vectors(layout, name)
    if found is None:
        return None
    feature_ids, vectors, provenance = found
    wanted = set(ids.to_pylist())
    keep = [i for i, s in enumerate(feature_ids) if s in wanted]
    if not keep:
        return None
    kept_ids = [feature_ids[i] for i in keep]
    x = vectors[keep].astype(np.float64)
    order = np.argsort(kept_ids)
    kept_ids = [kept_ids[i] for i in order]
    x = x[order]
    mean = x.mean(axis=0)
    rng = np.random.default_rng(config.seed)
    weights = rng.standard_normal((x.shape[1], config.check_dims)) / np.sqrt(config.check_dims)
    weights = weights.astype(np.float32)
    checks = project(x, mean.astype(np.float32), weights)
    dims = config.check_dims
    check = pa.table(
        {
            COL.sample_id: pa.array(kept_ids, pa.string()),
            fmt.CHECK: pa.FixedSizeListArray.from_arrays(
                pa.array(checks.ravel(), pa.float32()), dims
            ),
        },
        schema=fmt.check_schema(dims),
    ).replace_schema_metadata(_meta(fmt.check_path(name)))
    projection = pa.table(
        {
            fmt.MEAN: pa.array(mean.astype(np.float32), pa.float32()),
            fmt.WEIGHTS: pa.FixedSizeListArray.from_arrays(
                pa.array(weights.ravel(), pa.float32()), dims
            ),
        },
        schema=fmt.projection_schema(dims),
    ).replace_schema_metadata(_meta(fmt.projection_path(name)))
    pq.write_table(check, tmp / fmt.check_path(name), compression="zstd")
    pq.write_table(projection, tmp / fmt.projection_path(name), compression="zstd")
    weights_file = provenance.get("weights")
    return {
        "samples": len(kept_ids),
        "dim": int(x.shape[1]),
        "provenance": {
            "extractor": provenance.get("extractor", name),
            "toolkit_version": provenance.get("toolkit_version"),
            "weights_file": Path(weights_file).name if weights_file else None,
            "weights_sha256": provenance.get("weights_sha256"),
            "input_spec": provenance.get("input_spec"),
            "config": _portable(provenance.get("config", {})),
        },
        "check": {
            "kind": "centred random projection of the pooled embedding",
            "dims": dims,
            "seed": config.seed,
            "file": fmt.check_path(name),
            "projection": fmt.projection_path(name),
        },
    }


def project(
    x: npt.NDArray[np.floating[Any]],
    mean: npt.NDArray[np.float32],
    weights: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """``(x - mean) @ weights`` in float64, returned as float32 (rows: samples)."""
    centred = np.asarray(x, np.float64) - mean.astype(np.float64)
    return (centred @ weights.astype(np.float64)).astype(np.float32)


def _portable(config: Any) -> Any:
    """A stage config without the fields that describe the machine that ran it."""
    if not isinstance(config, Mapping):
        return config
    return {k: v for k, v in config.items() if k not in MACHINE_FIELDS}


def _stage_configs(layout: DatasetLayout) -> dict[str, Any]:
    """The configs of the stages a rebuild re-runs, from the files those stages wrote."""
    out: dict[str, Any] = {}
    manifest = read_provenance(read_schema(layout.manifest), where=str(layout.manifest))
    out["manifest"] = _portable(manifest.get("config", {}))
    for stage in ("download", "preprocess"):
        shards = committed_shards(layout.ledger_dir, stage)
        if shards:
            meta = read_provenance(read_schema(shards[-1]), where=str(shards[-1]))
            config = _portable(meta.get("config", {}))
            # no cookies, proxies, paths or pacing: only what shapes the results
            allowed = DOWNLOAD_FIELDS if stage == "download" else PREPROCESS_FIELDS
            config = {k: v for k, v in config.items() if k in allowed}
            out[stage] = config
    meta = read_provenance(read_schema(layout.splits), where=str(layout.splits))
    out["splits"] = _portable(meta.get("config", {}))
    return out


def _card(layout: DatasetLayout, samples: pa.Table, by_split: Mapping[str, int]) -> str:
    """The release's README.md: what it is, how to rebuild, and the dataset's datasheet."""
    name = layout.root.resolve().name
    splits = ", ".join(f"{k} {v:,}" for k, v in by_split.items())
    head = [
        f"# {name}: a release to rebuild",
        "",
        f"{samples.num_rows:,} samples ({splits}), {fmt.FORMAT_NAME} version "
        f"{fmt.FORMAT_VERSION}, written by svm_toolkit {__version__}. The release holds no "
        "media: ids, URLs, clip bounds, public metadata, the splits with their groups, and "
        "per-sample facts a rebuild is checked against (media duration, crop box, audio and "
        "picture fingerprints, a 32-dimensional check of each extractor's pooled feature).",
        "",
        "## Rebuild and compare",
        "",
        "```",
        "sha256sum -c SHA256SUMS                 # optional: svm rebuild checks them too",
        f"svm rebuild RELEASE -o data/{name}     # manifest, download, preprocess, extract, splits",
        f"svm compare RELEASE data/{name}        # what survived, what changed",
        "```",
        "",
        "## The dataset this release was made from",
        "",
        "The datasheet below describes the original dataset folder (its files are not part of",
        "the release).",
        "",
    ]
    try:
        sheet = render_datasheet(card_facts(layout.root), default=None)
    except (InputError, SchemaMismatchError, OSError, ValueError, pa.ArrowException) as exc:
        logger.warning("release card: no datasheet (%s)", exc)
        sheet = ""
    return "\n".join(head) + sheet
