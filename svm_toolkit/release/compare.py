"""``svm compare RELEASE DATASET``: what survived of a release in a rebuilt dataset.

For every released sample the rebuilt dataset either has usable media (it *survived*) or a
status that says why not (``unavailable``, ``filtered:<reason>``...). Surviving samples are
checked against the release's facts:

* *changed media*: the media's duration differs by more than ``duration_tolerance_s``, or its
  picture or audio fingerprints no longer match the released ones (re-uploaded, edited or
  replaced). Pictures match when ``picture_min_share`` (0.8) of the frames lie within
  ``match.picture_max_bits`` bits of the frame at the same place, at the best shift within
  ``picture_max_shift`` frames (flat frames, hash 0, of either side count neither way; keyframe
  hashes of an older version, tracks of other steps and flat tracks are not compared); audio
  when ``match.audio_min_similarity`` of the Chromaprint bits agree at the best offset (within
  ``max_offset`` sub-fingerprints, about 1 s per 8). Among the demo's 170 released clips,
  29 of the 14,028 pairs of different clips (0.21 %) reach 0.8 of their frames (the corpus
  repeats near-identical pictures: its splits link 11 pairs by picture); every clip rebuilt
  from the same file scores 1.0 (150 of 150), the replaced one 0.0.
* *feature agreement*, per extractor both sides have: the rebuilt pooled feature is centred and
  projected as the release's check was (:mod:`svm_toolkit.release.format`) and their cosine
  taken. At or above ``feature_threshold`` (0.9) they *match*: the same media went through the
  same model and decoder. Other videos score around 0: between two different clips of the
  demo's 170 released ones the median is -0.03 (``efficientnet_lite0``) and -0.02
  (``vmnet_music``), and 0.6 % and 0.2 % of the 28,730 pairs reach 0.9 (the corpus repeats
  songs and near-identical pictures).
* the *split checks* of ``svm splits validate`` on the rebuilt dataset's splits (sizes,
  leaks, distribution shift), i.e. on the samples that survived.

Exit codes follow ``svm splits validate``: 2 with errors (changed media, features that disagree
on unchanged media, split check errors), 1 with warnings when ``strict`` (samples missing,
split check warnings), else 0.
"""

from __future__ import annotations

import io
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from svm_toolkit.errors import InputError, SchemaMismatchError
from svm_toolkit.io.atomic import write_bytes_atomic, write_json
from svm_toolkit.io.checked import read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import read_shards
from svm_toolkit.manifest.build import read_manifest
from svm_toolkit.release import format as fmt
from svm_toolkit.release.write import pooled_vectors, project
from svm_toolkit.schema import COL, Split, Status
from svm_toolkit.splits.matching import MatchConfig

logger = logging.getLogger(__name__)

STAGE: Final = "compare"
#: Status of a released sample no stage of the rebuild has reached yet.
PENDING: Final = "pending"


@dataclass(frozen=True, slots=True)
class CompareConfig:
    """What ``svm compare`` counts as changed and as matching.

    Attributes:
        duration_tolerance_s: largest difference of media duration still the same video, s.
        match: fingerprint thresholds (those of ``svm splits make``): the bits two frames
            may differ by, the audio similarity, the overlap.
        picture_min_share: share of frames that must match for the same picture (higher than
            the duplicate search's: this asks "the same video?", not "a copy?").
        picture_max_shift: picture frames tried either way (2 s at one hash every 0.5 s).
        max_offset: audio offsets tried either way, in Chromaprint sub-fingerprints (~8/s).
        feature_threshold: cosine of the projected features at or above which they match.
        strict: warnings (missing samples, split warnings) make the exit code 1.
        validate_splits: run the split checks on the rebuilt dataset.
    """

    duration_tolerance_s: float = 0.5
    match: MatchConfig = field(default_factory=MatchConfig)
    picture_min_share: float = 0.8
    picture_max_shift: int = 4
    max_offset: int = 16
    feature_threshold: float = 0.9
    strict: bool = False
    validate_splits: bool = True


@dataclass(frozen=True, slots=True)
class Comparison:
    """A release against its rebuild (the ``report.json`` of ``svm compare``).

    Attributes:
        release, dataset: the two folders.
        samples: samples released.
        survived: released samples with usable media in the rebuild.
        by_split: split -> ``{"released": n, "survived": m}``.
        by_group: for groups of two or more samples, group -> ``{"released", "survived"}``.
        missing: each sample that did not survive: ``sample_id``, ``url``, ``split``,
            ``status``, ``detail``.
        changed: each surviving sample whose media changed: ``sample_id``, ``url``,
            ``title``, ``what``, ``detail``.
        features: extractor -> ``compared``, ``median_cosine``, ``matching``, ``threshold``,
            ``disagree`` (ids below the threshold whose media did not change), ``cosines``.
        splits_check: ``{"errors": [...], "warnings": [...]}`` from the split checks.
        strict: whether warnings set the exit code.
    """

    release: str
    dataset: str
    samples: int
    survived: int
    by_split: dict[str, dict[str, int]]
    by_group: dict[str, dict[str, int]]
    missing: list[dict[str, Any]]
    changed: list[dict[str, Any]]
    features: dict[str, dict[str, Any]]
    splits_check: dict[str, list[str]]
    strict: bool = False

    @property
    def availability(self) -> float:
        """Share of the released samples that survived, 0..1."""
        return self.survived / self.samples if self.samples else 0.0

    @property
    def missing_by_status(self) -> dict[str, int]:
        """Missing samples per status, most frequent first."""
        return dict(Counter(m["status"] for m in self.missing).most_common())

    @property
    def errors(self) -> list[str]:
        """What makes the rebuild differ from the release (exit 2)."""
        out = [f"changed media: {c['sample_id']} ({c['what']})" for c in self.changed]
        for name, facts in self.features.items():
            for sample_id in facts.get("disagree", []):
                out.append(f"{name} features disagree on unchanged media: {sample_id}")
        out += [f"splits: {m}" for m in self.splits_check["errors"]]
        return out

    @property
    def warnings(self) -> list[str]:
        """What a careful user looks at (exit 1 with ``strict``)."""
        out = []
        if self.missing:
            statuses = ", ".join(f"{n} {s}" for s, n in self.missing_by_status.items())
            out.append(f"{len(self.missing)} of {self.samples} samples missing ({statuses})")
        out += [f"splits: {m}" for m in self.splits_check["warnings"]]
        return out

    def exit_code(self, *, strict: bool | None = None) -> int:
        """2 with errors; 1 with warnings when strict; else 0."""
        if self.errors:
            return 2
        return 1 if (self.strict if strict is None else strict) and self.warnings else 0

    def describe(self) -> str:
        """One line, e.g. ``153 of 170 samples survived (90.0 %): 16 unavailable; 1 changed``."""
        statuses = ", ".join(f"{n} {s}" for s, n in self.missing_by_status.items())
        line = (
            f"{self.survived:,} of {self.samples:,} samples survived "
            f"({100 * self.availability:.1f} %)" + (f": {statuses} missing" if statuses else "")
        )
        line += f"; {len(self.changed)} changed"
        agree = ", ".join(
            f"{name} {f['matching']}/{f['compared']}" for name, f in self.features.items()
        )
        if agree:
            line += f"; features match: {agree}"
        errors, warnings = len(self.splits_check["errors"]), len(self.splits_check["warnings"])
        if self.splits_check.get("ran", True):
            line += f"; splits: {errors} error{'s' * (errors != 1)}, "
            line += f"{warnings} warning{'s' * (warnings != 1)}"
        return line

    def render(self, *, shown: int = 5) -> str:
        """The terminal report: the summary line, then per split, missing and changed."""
        lines = [f"{self.release} -> {self.dataset}: {self.describe()}"]
        for split, n in self.by_split.items():
            share = n["survived"] / n["released"] if n["released"] else 0.0
            lines.append(
                f"  {split:<5} {n['survived']:>6,} of {n['released']:,} ({100 * share:.1f} %)"
            )
        if self.by_group:
            counts = [(n["survived"], n["released"]) for n in self.by_group.values()]
            whole = sum(kept == released for kept, released in counts)
            lost = sum(kept == 0 for kept, _ in counts)
            lines.append(
                f"  groups of 2 or more: {whole} whole, {len(counts) - whole - lost} partial, "
                f"{lost} lost (of {len(counts)})"
            )
        for status in self.missing_by_status:
            ids = [m["sample_id"] for m in self.missing if m["status"] == status]
            more = f", +{len(ids) - shown} more" if len(ids) > shown else ""
            lines.append(f"  missing {status}: {', '.join(ids[:shown])}{more}")
        for c in self.changed[:shown]:
            lines.append(f"  changed {c['sample_id']}: {c['what']} ({c['detail']})")
        for name, f in self.features.items():
            lines.append(
                f"  features {name}: {f['matching']} of {f['compared']} match (cosine >= "
                f"{f['threshold']:g}), median {f['median_cosine']:.3f}"
            )
        for level in ("errors", "warnings"):
            for message in self.splits_check[level]:
                lines.append(f"  splits {level[:-1]}: {message}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The ``report.json`` object (the contract ``svm report`` reads)."""
        return {
            "release": self.release,
            "dataset": self.dataset,
            "samples": self.samples,
            "survived": self.survived,
            "availability": self.availability,
            "by_split": self.by_split,
            "by_group": self.by_group,
            "missing_by_status": self.missing_by_status,
            "missing": self.missing,
            "changed": self.changed,
            "features": self.features,
            "splits_check": {k: self.splits_check[k] for k in ("errors", "warnings")},
            "errors": self.errors,
            "warnings": self.warnings,
            "exit_code": self.exit_code(),
        }

    def write(self, directory: Path) -> list[Path]:
        """Write ``report.json`` and ``report.png`` into ``directory``; return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "report.json"
        write_json(path, self.to_json())
        return [path, plot_comparison(self, directory / "report.png")]


def compare_release(
    release: Path, dataset: Path, config: CompareConfig = CompareConfig()
) -> Comparison:
    """Compare the rebuilt ``dataset`` with ``release`` (see the module).

    Raises:
        InputError: the release is damaged or of a newer version; the dataset has no manifest.
    """
    opened = fmt.read_release(Path(release))
    layout = DatasetLayout(Path(dataset))
    samples = opened.samples().to_pylist()
    statuses = _statuses(layout)
    survived: set[str] = set()
    missing: list[dict[str, Any]] = []
    for row in samples:
        status, detail = statuses.get(
            row[COL.sample_id], (PENDING, "not in the dataset's manifest")
        )
        if status == Status.OK.value:
            survived.add(row[COL.sample_id])
        else:
            missing.append(
                {
                    "sample_id": row[COL.sample_id],
                    "url": row[COL.url],
                    "split": row[COL.split],
                    "status": status,
                    "detail": detail,
                }
            )
    by_split: dict[str, dict[str, int]] = {}
    groups: dict[str, dict[str, int]] = defaultdict(lambda: {"released": 0, "survived": 0})
    for row in samples:
        for key, table in ((row[COL.split], by_split), (row[COL.group], groups)):
            counts = table.setdefault(key, {"released": 0, "survived": 0})
            counts["released"] += 1
            counts["survived"] += row[COL.sample_id] in survived
    order = {s.value: i for i, s in enumerate(Split)}
    by_split = dict(sorted(by_split.items(), key=lambda kv: (order.get(kv[0], 3), kv[0])))
    changed = _changed(opened, layout, samples, survived, config)
    changed_ids = {c["sample_id"] for c in changed}
    features = _features(opened, layout, survived, changed_ids, config)
    comparison = Comparison(
        release=str(opened.root),
        dataset=str(layout.root),
        samples=len(samples),
        survived=len(survived),
        by_split=by_split,
        by_group={g: n for g, n in sorted(groups.items()) if n["released"] > 1},
        missing=missing,
        changed=changed,
        features=features,
        splits_check=_splits_check(opened, layout, tuple(features), config),
        strict=config.strict,
    )
    logger.info("compare: %s", comparison.describe())
    return comparison


def _statuses(layout: DatasetLayout) -> dict[str, tuple[str, str | None]]:
    """Each sample's outcome in the rebuild: the first stage that did not end ``ok``."""
    manifest = read_manifest(layout.root)
    out: dict[str, tuple[str, str | None]] = {
        s: (status, detail)
        for s, status, detail in zip(
            *(manifest.column(c).to_pylist() for c in (COL.sample_id, COL.status, COL.detail)),
            strict=True,
        )
    }
    for stage in ("download", "preprocess"):
        ledger = read_shards(layout.ledger_dir, stage, columns=[COL.status, COL.detail])
        rows = {} if ledger is None else {r[COL.sample_id]: r for r in ledger.to_pylist()}
        for sample_id, (status, _) in list(out.items()):
            if status != Status.OK.value:
                continue
            row = rows.get(sample_id)
            if row is None:
                out[sample_id] = (PENDING, f"no {stage} yet: run 'svm {stage} {layout.root}'")
            elif row[COL.status] != Status.OK.value:
                out[sample_id] = (row[COL.status], row[COL.detail])
    return out


def _fingerprints(path: Path | None, layout: DatasetLayout | None) -> dict[str, dict[str, Any]]:
    """sample_id -> {"phash": uint64 array, "chromaprint": uint32 array, "phash_step_s"}.

    ``phash_step_s`` is the picture track's step, seconds, or ``None`` where the file has no
    such column or value (an older version's keyframe hashes, not a picture track).
    """
    table: pa.Table | None
    if path is not None:
        table = read_table(path) if path.exists() else None
    else:
        assert layout is not None
        table = read_shards(layout.fingerprints_dir, "part")
    if table is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    wanted = [(COL.phash, np.uint64), (COL.chromaprint, np.uint32)]
    present = [(c, t) for c, t in wanted if c in table.column_names]
    ids = table.column(COL.sample_id).to_pylist()
    for column, dtype in present:
        for sample_id, values in zip(ids, table.column(column).to_pylist(), strict=True):
            out.setdefault(sample_id, {})[column] = np.asarray(values or [], dtype)
    steps = (
        table.column(COL.phash_step_s).to_pylist()
        if COL.phash_step_s in table.column_names
        else [None] * len(ids)
    )
    for sample_id, step in zip(ids, steps, strict=True):
        out.setdefault(sample_id, {})[COL.phash_step_s] = step
    return out


def bits_different(x: npt.NDArray[Any], y: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Hamming distance of each pair (broadcast), as int64."""
    distance: npt.NDArray[np.int64] = np.bitwise_count(np.bitwise_xor(x, y)).astype(np.int64)
    return distance


def picture_share(
    released: npt.NDArray[np.uint64],
    rebuilt: npt.NDArray[np.uint64],
    max_bits: int,
    max_shift: int = 4,
) -> float:
    """Share of frames within ``max_bits`` bits of the frame at the same place, best shift.

    The frames are compared in order (frame ``i`` of one with frame ``i + k`` of the other),
    for every shift ``k`` within ``max_shift`` frames either way that overlaps at least half
    of the shorter sequence. Flat moments (hash 0: black, fades) of either side count neither
    as a match nor in the total, as in :mod:`svm_toolkit.splits.matching`: the share is of the
    non-flat frames of the side with fewer of them (0.0 when either has none).
    """
    released = np.asarray(released, np.uint64)
    rebuilt = np.asarray(rebuilt, np.uint64)
    shorter = min(len(released), len(rebuilt))
    total = min(int(np.count_nonzero(released)), int(np.count_nonzero(rebuilt)))
    if total == 0:
        return 0.0
    best = 0.0
    for shift in range(-max_shift, max_shift + 1):
        a = released[max(0, -shift) :]
        b = rebuilt[max(0, shift) :]
        n = min(len(a), len(b))
        if n < 1 or n < shorter / 2:
            continue
        usable = (a[:n] != 0) & (b[:n] != 0)
        same = int(((bits_different(a[:n], b[:n]) <= max_bits) & usable).sum())
        best = max(best, same / total)
    return best


def audio_similarity(
    released: npt.NDArray[np.uint32],
    rebuilt: npt.NDArray[np.uint32],
    max_offset: int,
    min_overlap: int,
) -> float:
    """Best share of equal Chromaprint bits over offsets within ``max_offset`` either way."""
    best = 0.0
    overlap_needed = min(min_overlap, len(released), len(rebuilt))
    if overlap_needed < 1:
        return 0.0
    for offset in range(-max_offset, max_offset + 1):
        a = released[max(0, -offset) :]
        b = rebuilt[max(0, offset) :]
        n = min(len(a), len(b))
        if n < overlap_needed:
            continue
        equal = 1.0 - bits_different(a[:n], b[:n]).sum() / (32.0 * n)
        best = max(best, float(equal))
    return best


def _changed(
    release: fmt.Release,
    layout: DatasetLayout,
    samples: list[dict[str, Any]],
    survived: set[str],
    config: CompareConfig,
) -> list[dict[str, Any]]:
    """The surviving samples whose duration or fingerprints differ from the release's."""
    ours = (
        _fingerprints(release.path(fmt.FINGERPRINTS), None) if release.has(fmt.FINGERPRINTS) else {}
    )
    theirs = _fingerprints(None, layout)
    ledger = read_shards(layout.ledger_dir, "preprocess", columns=[fmt.MEDIA_DURATION])
    durations = (
        {}
        if ledger is None
        else {r[COL.sample_id]: r[fmt.MEDIA_DURATION] for r in ledger.to_pylist()}
    )
    match = config.match
    out = []
    for row in samples:
        sample_id = row[COL.sample_id]
        if sample_id not in survived:
            continue
        what, detail = [], []
        before, after = row.get(fmt.MEDIA_DURATION), durations.get(sample_id)
        if before is not None and after is not None:
            if abs(before - after) > config.duration_tolerance_s:
                what.append("duration")
            detail.append(f"duration {before:.2f} s -> {after:.2f} s")
        a, b = ours.get(sample_id, {}), theirs.get(sample_id, {})
        if len(a.get(COL.phash, ())) and len(b.get(COL.phash, ())):
            skipped = _picture_not_comparable(a, b)
            if skipped:
                detail.append(f"picture not compared: {skipped}")
            else:
                share = picture_share(
                    a[COL.phash], b[COL.phash], match.picture_max_bits, config.picture_max_shift
                )
                if share < config.picture_min_share:
                    what.append("picture")
                detail.append(
                    f"picture {share:.2f} of non-flat frames within {match.picture_max_bits} "
                    f"bits ({config.picture_min_share:g} needed)"
                )
        if len(a.get(COL.chromaprint, ())) and len(b.get(COL.chromaprint, ())):
            similar = audio_similarity(
                a[COL.chromaprint], b[COL.chromaprint], config.max_offset, match.audio_min_overlap
            )
            if similar < match.audio_min_similarity:
                what.append("audio")
            detail.append(
                f"audio {similar:.2f} of bits equal ({match.audio_min_similarity:g} needed)"
            )
        if what:
            title = ", ".join(str(row[c]) for c in (COL.theme, COL.author) if row.get(c))
            out.append(
                {
                    "sample_id": sample_id,
                    "url": row[COL.url],
                    "title": f"{sample_id} ({title})" if title else sample_id,
                    "what": " and ".join(what) + " differ: re-uploaded, edited or replaced",
                    "detail": "; ".join(detail),
                }
            )
    return out


def _picture_not_comparable(released: dict[str, Any], rebuilt: dict[str, Any]) -> str | None:
    """Why two samples' picture hashes cannot be compared (``None``: they can).

    Keyframe hashes of an older version (no ``phash_step_s``) are not a picture track, tracks
    of different steps do not line up, and a track that is flat throughout (all 0) holds
    nothing to compare.
    """
    steps = released.get(COL.phash_step_s), rebuilt.get(COL.phash_step_s)
    if steps[0] is None or steps[1] is None:
        side = "release" if steps[0] is None else "rebuild"
        return f"the {side} holds keyframe hashes of an older version, not a picture track"
    if abs(float(steps[0]) - float(steps[1])) > 1e-6:
        return f"picture tracks of different steps ({steps[0]:g} s and {steps[1]:g} s)"
    if not np.count_nonzero(released[COL.phash]) or not np.count_nonzero(rebuilt[COL.phash]):
        return "a picture flat throughout (black)"
    return None


def _features(
    release: fmt.Release,
    layout: DatasetLayout,
    survived: set[str],
    changed: set[str],
    config: CompareConfig,
) -> dict[str, dict[str, Any]]:
    """Per extractor both sides have: cosines of the projected pooled features."""
    out: dict[str, dict[str, Any]] = {}
    for name, entry in release.extractors.items():
        if not (layout.root / "features" / name).is_dir():
            continue
        found = pooled_vectors(layout, name)
        if found is None:
            continue
        ids, vectors, _ = found
        dims = entry["check"].get("dims", fmt.CHECK_DIMS)
        projection_path = release.path(entry["check"]["projection"])
        inputs = pq.read_metadata(projection_path).num_rows  # before reading it
        if vectors.shape[1] != inputs:
            logger.warning(
                "%s: %d-dimensional features, the release's are %d; not compared",
                name,
                vectors.shape[1],
                inputs,
            )
            continue
        if not isinstance(dims, int) or isinstance(dims, bool) or not 0 < dims <= inputs:
            raise InputError(
                f"{release.root / fmt.RELEASE_JSON}: extractors[{name!r}].check.dims is "
                f"{dims!r}, not a size from 1 to {inputs}; get the release again"
            )
        check = fmt.read_checked(
            release.path(entry["check"]["file"]), fmt.check_schema(dims), "check"
        )
        projection = fmt.read_checked(
            projection_path, fmt.projection_schema(dims), "projection", id_column=None
        )
        mean = projection.column(fmt.MEAN).to_numpy().astype(np.float32)
        weights = _matrix(projection.column(fmt.WEIGHTS), dims)
        released = dict(
            zip(
                check.column(COL.sample_id).to_pylist(),
                _matrix(check.column(fmt.CHECK), dims),
                strict=True,
            )
        )
        rows = [i for i, s in enumerate(ids) if s in released and s in survived]
        if not rows:
            continue
        mine = project(vectors[rows], mean, weights.astype(np.float32))
        theirs = np.stack([released[ids[i]] for i in rows]).astype(np.float64)
        cosines = _cosines(theirs, mine.astype(np.float64))
        compared = [ids[i] for i in rows]
        below = [s for s, c in zip(compared, cosines, strict=True) if c < config.feature_threshold]
        out[name] = {
            "compared": len(rows),
            "median_cosine": float(np.median(cosines)),
            "matching": int((cosines >= config.feature_threshold).sum()),
            "threshold": config.feature_threshold,
            "disagree": sorted(s for s in below if s not in changed),
            "below_on_changed": sorted(s for s in below if s in changed),
            "cosines": [round(float(c), 4) for c in cosines],
        }
    return out


def _matrix(column: pa.ChunkedArray, dims: int) -> npt.NDArray[np.float32]:
    """A column of fixed-size float32 lists as one (rows, dims) matrix."""
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, np.float32).reshape(-1, dims)


def _cosines(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    dots = (x * y).sum(axis=1)
    return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)


def _splits_check(
    release: fmt.Release, layout: DatasetLayout, features: tuple[str, ...], config: CompareConfig
) -> dict[str, Any]:
    """The split checks of ``svm splits validate`` on the rebuilt dataset's splits."""
    if not config.validate_splits:
        return {"errors": [], "warnings": [], "ran": False}
    if not layout.splits.exists():
        return {
            "errors": [
                f"{layout.splits}: no splits of the surviving samples; run 'svm splits make "
                f"{layout.root}' (svm rebuild does)"
            ],
            "warnings": [],
        }
    from svm_toolkit.splits.validate import ValidateConfig, validate_splits

    stored = release.stages.get("splits", {})
    ratios = stored.get("ratios")
    validate = ValidateConfig(
        features=features,
        ratios=tuple(ratios) if isinstance(ratios, list) and len(ratios) == 3 else None,
        match=config.match,
    )
    try:
        report = validate_splits(layout.root, validate)
    except (InputError, SchemaMismatchError) as exc:
        return {"errors": [str(exc)], "warnings": []}
    return {
        "errors": [f"{f.check}: {f.message}" for f in report.errors],
        "warnings": [f"{f.check}: {f.message}" for f in report.warnings],
    }


def plot_comparison(comparison: Comparison, path: Path) -> Path:
    """Availability per split (bars) and, per extractor, the histogram of feature cosines."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    panels = 1 + len(comparison.features)
    fig = Figure(figsize=(4.5 * panels, 3.4))
    axes = np.atleast_1d(fig.subplots(1, panels))
    splits = list(comparison.by_split)
    released = [comparison.by_split[s]["released"] for s in splits]
    kept = [comparison.by_split[s]["survived"] for s in splits]
    x = np.arange(len(splits))
    axes[0].bar(x - 0.2, released, 0.4, label="released", color="#bbbbbb")
    axes[0].bar(x + 0.2, kept, 0.4, label="survived", color="#3b7dd8")
    for i, (r, k) in enumerate(zip(released, kept, strict=True)):
        axes[0].annotate(
            f"{100 * k / r:.0f} %" if r else "", (i + 0.2, k), ha="center", va="bottom", fontsize=8
        )
    axes[0].set_xticks(x, splits)
    axes[0].set_ylabel("samples")
    axes[0].set_title(f"availability {100 * comparison.availability:.1f} %")
    axes[0].legend(fontsize=8)
    for ax, (name, facts) in zip(axes[1:], comparison.features.items(), strict=True):
        ax.hist(facts["cosines"], bins=np.linspace(-1, 1, 41), color="#3b7dd8")
        ax.axvline(facts["threshold"], color="#c0392b", ls="--", lw=1, label="match threshold")
        ax.set_xlabel("cosine, release vs rebuild")
        ax.set_ylabel("samples")
        ax.set_title(f"{name}: {facts['matching']} of {facts['compared']} match")
        ax.legend(fontsize=8)
    fig.suptitle(f"{Path(comparison.release).name} rebuilt in {Path(comparison.dataset).name}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())  # a unique temp file: compares never collide
    return path
