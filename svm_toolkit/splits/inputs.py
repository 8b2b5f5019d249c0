"""What the split stage reads about each sample: manifest fields, stage outcomes, fingerprints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from svm_toolkit.errors import SchemaMismatchError
from svm_toolkit.io.checked import read_schema, read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import committed_shards, read_shards
from svm_toolkit.manifest.build import read_manifest
from svm_toolkit.schema import (
    COL,
    FINGERPRINT_SCHEMA,
    PICTURE_TRACK_VERSION,
    REDO_OK,
    Status,
    check_columns,
    read_provenance,
)

#: Manifest columns the split stage uses (``labels`` only when the manifest has it: YT8M).
MANIFEST_COLUMNS = (
    COL.sample_id,
    COL.video_id,
    COL.url,
    COL.author,
    COL.music_id,
    COL.split,
    COL.status,
    COL.duration_s,
    COL.start_s,
    COL.end_s,
)


@dataclass(frozen=True, slots=True)
class SplitInputs:
    """Everything known about each sample of a dataset; row ``i`` of each part is sample ``i``.

    Attributes:
        samples: one row per manifest sample, indexed by ``sample_id``: ``video_id``, ``url``,
            ``author``, ``music_id``, ``split`` (given in the input, or ``None``), ``labels``
            (YT8M; empty lists otherwise), ``duration_s`` (seconds: the media's when probed,
            else the manifest's), ``height`` (pixels, after rotation; NaN before
            preprocessing), ``stage`` (the furthest stage that ran) and ``usable`` (passed
            every stage that ran, so it has media).
        phash: per sample, its picture track: a 64-bit perceptual hash every
            ``phash_step_s`` (0.5 s) of its timeline, 0 for a flat picture (empty: none).
        chromaprint: per sample, the raw Chromaprint fingerprint (empty: none).
        features: per extractor under ``features/``, the ids with a committed feature row.
        problems: files that could not be read, as ``(file, message)``.
    """

    samples: pd.DataFrame
    phash: list[npt.NDArray[np.uint64]]
    chromaprint: list[npt.NDArray[np.uint32]]
    features: dict[str, set[str]]
    problems: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.samples)


def load_inputs(dataset: Path) -> SplitInputs:
    """Read the manifest, the download and preprocess ledgers, fingerprints and feature ids.

    Raises:
        InputError: there is no manifest.
        SchemaMismatchError: the manifest was written by an incompatible version.
    """
    layout = DatasetLayout(Path(dataset))
    manifest = read_manifest(layout.root)
    columns = [*MANIFEST_COLUMNS, *([COL.labels] if COL.labels in manifest.column_names else [])]
    samples = manifest.select(columns).to_pandas().set_index(COL.sample_id, drop=False)
    if COL.labels not in samples:
        samples[COL.labels] = [[] for _ in range(len(samples))]
    samples[COL.labels] = [list(x) if x is not None else [] for x in samples[COL.labels]]
    clip = samples[COL.end_s] - samples[COL.start_s]
    samples[COL.duration_s] = clip.fillna(samples[COL.duration_s])
    samples["height"] = np.nan
    samples["usable"] = samples[COL.status] == Status.OK.value
    samples["stage"] = "manifest"
    problems: list[tuple[str, str]] = []
    for stage in ("download", "preprocess"):
        extra = (
            ["media_duration_s", "height", "width", COL.rotation] if stage == "preprocess" else []
        )
        ledger = read_shards(layout.ledger_dir, stage, columns=[COL.status, *extra])
        if ledger is None:
            continue
        rows = ledger.to_pandas().set_index(COL.sample_id).reindex(samples.index)
        samples["usable"] &= rows[COL.status] == Status.OK.value
        samples["stage"] = stage
        if stage == "preprocess":
            upright = rows[COL.rotation].abs().isin([90, 270])
            samples["height"] = rows["height"].where(~upright, rows["width"]).astype(float)
            samples[COL.duration_s] = rows["media_duration_s"].fillna(samples[COL.duration_s])
    phash, chromaprint = _fingerprints(layout, samples.index, problems)
    return SplitInputs(samples, phash, chromaprint, _feature_ids(layout, problems), problems)


def _fingerprints(
    layout: DatasetLayout, index: pd.Index, problems: list[tuple[str, str]]
) -> tuple[list[npt.NDArray[np.uint64]], list[npt.NDArray[np.uint32]]]:
    """Each sample's picture track and Chromaprint fingerprint (empty arrays where none).

    Shards of an older version hold 8 keyframe hashes per video instead of a picture track (no
    ``phash_step_s`` column), and shards of another picture-track recipe
    (:data:`~svm_toolkit.schema.PICTURE_TRACK_VERSION`) hold tracks that do not compare with
    today's: their soundtracks are read, their pictures are not matched and the shard is
    reported with the fix, unless a newer shard has the sample again.
    """
    position = {sample_id: i for i, sample_id in enumerate(index)}
    phash = [np.zeros(0, np.uint64) for _ in index]
    prints = [np.zeros(0, np.uint32) for _ in index]
    old: dict[Path, str] = {}  # shard -> what its pictures are
    base = pa.schema([f for f in FINGERPRINT_SCHEMA if f.name != COL.phash_step_s])
    for shard in committed_shards(layout.fingerprints_dir, "part"):
        try:
            schema = read_schema(shard)
            check_columns(schema, base, where=str(shard))
        except SchemaMismatchError as exc:
            problems.append((str(shard), str(exc)))
            continue
        if schema.get_field_index(COL.phash_step_s) < 0:
            old[shard] = "keyframe hashes of an older version, not a picture track"
        elif (version := _track_version(schema, shard)) != PICTURE_TRACK_VERSION:
            old[shard] = (
                f"picture tracks of recipe {version}, not this toolkit's "
                f"{PICTURE_TRACK_VERSION} (they do not compare)"
            )
    table = read_shards(layout.fingerprints_dir, "part", columns=[COL.phash, COL.chromaprint])
    if table is None:
        return phash, prints
    rows = [position.get(s) for s in table.column(COL.sample_id).to_pylist()]
    for column, out, dtype in ((COL.phash, phash, np.uint64), (COL.chromaprint, prints, np.uint32)):
        lists = table.column(column).combine_chunks()
        values = lists.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        offsets = lists.offsets.to_numpy() - lists.offsets[0].as_py()
        for row, piece in zip(rows, np.split(values, offsets[1:-1]), strict=True):
            if row is not None:
                out[row] = piece
    if old:
        _drop_old_pictures(layout, old, position, phash, problems)
    return phash, prints


def _track_version(schema: pa.Schema, shard: Path) -> int | str:
    """The picture-track recipe a fingerprint shard names (1: none named, from before)."""
    try:
        version = read_provenance(schema, where=str(shard)).get("picture_track_version", 1)
    except SchemaMismatchError:  # no or damaged provenance: not known to be today's
        return "unknown"
    return version if isinstance(version, int) else str(version)


def _drop_old_pictures(
    layout: DatasetLayout,
    old: dict[Path, str],
    position: dict[str, int],
    phash: list[npt.NDArray[np.uint64]],
    problems: list[tuple[str, str]],
) -> None:
    """Forget the pictures of ``old`` shards (shard -> what they hold), and report them."""
    current: set[str] = set()
    for shard in committed_shards(layout.fingerprints_dir, "part"):
        if shard not in old:
            current.update(read_table(shard, columns=[COL.sample_id]).column(0).to_pylist())
    for shard, what in old.items():
        ids = read_table(shard, columns=[COL.sample_id]).column(0).to_pylist()
        stale = [position[s] for s in ids if s in position and s not in current]
        for row in stale:
            phash[row] = np.zeros(0, np.uint64)
        if stale:
            problems.append(
                (
                    str(shard),
                    f"{what}, for {len(stale)} sample(s): their pictures are not searched for "
                    f"copies; to redo them, {REDO_OK['preprocess']}",
                )
            )


def _feature_ids(layout: DatasetLayout, problems: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Ids with features, per extractor folder; shards whose columns are wrong are problems."""
    found: dict[str, set[str]] = {}
    root = layout.root / "features"
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        ids: set[str] = set()
        for shard in committed_shards(folder, "part"):
            names = set(read_schema(shard).names)
            if COL.sample_id not in names or not names & {COL.embedding, COL.embeddings}:
                problems.append(
                    (str(shard), f"not a feature shard: no {COL.sample_id} or {COL.embedding}")
                )
                continue
            ids.update(read_table(shard, columns=[COL.sample_id]).column(0).to_pylist())
        found[folder.name] = ids
    return found
