"""``svm manifest yt8m``: YouTube-8M TFRecords + vocabulary -> a music-video manifest.

1. Stream every record of the given files (globs and folders work), checking CRCs.
2. Keep the videos whose labels match the selection (names resolved through the vocabulary).
3. Optionally look their pseudo ids up (``ledger/resolve-*``) and write YT8M's own features
   (``features/yt8m_rgb``, ``features/yt8m_audio``).
4. Write ``manifest.parquet``: one row per kept video, keyed by its YT8M id, with watch URLs for
   resolved ids and the lookup's status for the rest.

Everything is resumable: feature shards and lookups already committed are skipped.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from svm_toolkit.config import to_dict
from svm_toolkit.errors import InputError
from svm_toolkit.io.paths import id_problem
from svm_toolkit.manifest.build import write_manifest
from svm_toolkit.progress import Progress
from svm_toolkit.schema import (
    COL,
    MANIFEST_SCHEMA,
    ManifestRecord,
    Source,
    Status,
    records_to_table,
    with_provenance,
)
from svm_toolkit.yt8m.config import Yt8mConfig
from svm_toolkit.yt8m.features import Yt8mFeatureWriter
from svm_toolkit.yt8m.records import parse_record
from svm_toolkit.yt8m.resolve import Resolution, resolve_ids, resolved
from svm_toolkit.yt8m.tfrecord import RecordError, iter_records
from svm_toolkit.yt8m.vocabulary import LABEL_PRESETS, Vocabulary, load_vocabulary

logger = logging.getLogger(__name__)

_YOUTUBE_ID: Final = re.compile(r"[A-Za-z0-9_-]{11}")
_PARTITION: Final = re.compile(r"(train|validate|test)")
_GLOB_CHARS: Final = frozenset("*?[")
UNRESOLVED_DETAIL: Final = "pseudo id not looked up yet; run with --resolve"


@dataclass(frozen=True, slots=True)
class Yt8mSummary:
    """What one ``svm manifest yt8m`` run did.

    Attributes:
        path: the manifest.
        files: TFRecord files read.
        records: records read.
        bad_files: files cut short by a corrupt record (only with ``skip_bad_records``).
        samples: videos kept.
        duplicates_merged: records whose id was already kept.
        labels: the selected label names.
        missing_labels: preset label names this vocabulary does not have.
        by_status: samples per manifest status.
        features: feature rows committed per extractor (all runs).
        unchanged: the manifest already held these rows.
        seconds: wall time, seconds.
    """

    path: Path
    files: int
    records: int
    bad_files: int
    samples: int
    duplicates_merged: int
    labels: tuple[str, ...]
    missing_labels: tuple[str, ...] = ()
    by_status: Mapping[str, int] = field(default_factory=dict)
    features: Mapping[str, int] = field(default_factory=dict)
    unchanged: bool = False
    seconds: float = 0.0

    def describe(self) -> str:
        """One line: records read, videos kept, statuses."""
        statuses = ", ".join(f"{n:,} {s}" for s, n in self.by_status.items()) or "none"
        bad = f", {self.bad_files} file(s) cut short" if self.bad_files else ""
        return (
            f"{self.records:,} records in {self.files} file(s){bad} -> {self.samples:,} videos "
            f"labelled {' | '.join(self.labels)}: {statuses}"
        )


@dataclass(frozen=True, slots=True)
class _Pick:
    yt8m_id: str
    labels: tuple[int, ...]
    ref: str
    partition: str | None


def expand_inputs(inputs: Sequence[Path | str]) -> list[Path]:
    """Turn files, folders (searched for ``*.tfrecord``) and glob patterns into a sorted file list.

    Raises:
        InputError: a path that does not exist, or no TFRecord file at all.
    """
    files: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        path = Path(text)
        if _GLOB_CHARS & set(text):
            matched = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matched:
                raise InputError(f"{text}: the pattern matches no file")
            files.update(dict.fromkeys(matched))
        elif path.is_dir():
            found = sorted(path.rglob("*.tfrecord"))
            if not found:
                raise InputError(f"{path}: no *.tfrecord files in this folder")
            files.update(dict.fromkeys(found))
        elif path.is_file():
            files[path] = None
        else:
            raise InputError(f"{path}: no such file or folder")
    if not files:
        raise InputError("no TFRecord files given; pass files, folders or glob patterns")
    return list(files)


def select_labels(
    vocabulary: Vocabulary, config: Yt8mConfig
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Return the wanted label indices and the preset names this vocabulary lacks.

    Raises:
        InputError: an explicit label is unknown (with suggestions), or no preset label exists.
    """
    if config.labels:
        return vocabulary.resolve(config.labels), ()
    names = LABEL_PRESETS[config.preset]
    found = {name: vocabulary.lookup(name) for name in names}
    indices = tuple(i for i in found.values() if i is not None)
    if not indices:
        raise InputError(
            f"{vocabulary.path}: none of the '{config.preset}' labels are in this "
            f"vocabulary: {names}"
        )
    return indices, tuple(n for n, i in found.items() if i is None)


def build_yt8m_manifest(
    inputs: Sequence[Path | str],
    vocabulary: Path,
    dataset: Path,
    config: Yt8mConfig = Yt8mConfig(),
    *,
    overwrite: bool = False,
) -> Yt8mSummary:
    """Build a manifest (and optionally feature shards) from YouTube-8M TFRecords.

    Args:
        inputs: TFRecord files, folders or glob patterns, of either layout (video or frame level).
        vocabulary: YT8M's ``vocabulary.csv`` (2018 or 2017 layout).
        dataset: the dataset root.
        config: labels, lookup, features.
        overwrite: replace an existing manifest even when samples would be dropped.

    Raises:
        InputError: bad paths, vocabulary or labels; a corrupt record (unless
            ``config.skip_bad_records``); an existing manifest with samples these inputs lack.
    """
    started = time.perf_counter()
    files = expand_inputs(inputs)
    vocab = load_vocabulary(vocabulary)
    wanted, missing = select_labels(vocab, config)
    if missing:
        logger.warning("labels not in %s, left out: %s", vocab.path.name, ", ".join(missing))
    picks, records, bad_files, duplicates, features = _scan(files, set(wanted), dataset, config)

    pseudo = [p.yt8m_id for p in picks if not _YOUTUBE_ID.fullmatch(p.yt8m_id)]
    if config.resolve is not None and pseudo:
        with Progress("resolve", total=len(pseudo), unit="id") as bar:

            def tick(_: Resolution) -> None:
                bar.update()

            lookups = resolve_ids(pseudo, dataset, config.resolve, on_done=tick)
    else:
        lookups = resolved(dataset)
    rows = [_record(p, vocab, lookups.get(p.yt8m_id)) for p in picks]

    provenance_inputs = {
        "kind": "yt8m",
        "inputs": [{"file": f.name, "bytes": f.stat().st_size} for f in files],
        "vocabulary": {
            "file": vocab.path.name,
            "sha256": hashlib.sha256(vocab.path.read_bytes()).hexdigest(),
        },
    }
    schema = with_provenance(MANIFEST_SCHEMA, "manifest", to_dict(config), **provenance_inputs)
    table = records_to_table(rows, schema).replace_schema_metadata(schema.metadata)
    unchanged = write_manifest(table, dataset, overwrite=overwrite)
    summary = Yt8mSummary(
        path=Path(dataset) / "manifest.parquet",
        files=len(files),
        records=records,
        bad_files=bad_files,
        samples=len(rows),
        duplicates_merged=duplicates,
        labels=tuple(vocab.name(i) for i in wanted),
        missing_labels=missing,
        by_status=dict(Counter(r.status for r in rows).most_common()),
        features=features,
        unchanged=unchanged,
        seconds=time.perf_counter() - started,
    )
    logger.info("yt8m: %s", summary.describe())
    return summary


def _scan(
    files: list[Path], wanted: set[int], dataset: Path, config: Yt8mConfig
) -> tuple[list[_Pick], int, int, int, dict[str, int]]:
    """Read every record; return the picks, records read, bad files, duplicates, feature rows."""
    picks: dict[str, _Pick] = {}
    records = bad_files = duplicates = 0
    writer: Yt8mFeatureWriter | None = None
    total = sum(f.stat().st_size for f in files)
    bar = Progress("yt8m", total=total, unit="B", unit_scale=True)
    try:
        for path in files:
            partition = m.group(1) if (m := _PARTITION.match(path.name)) else None
            try:
                for record in iter_records(path):
                    bar.update(len(record.data) + 16)
                    records += 1
                    video = parse_record(record.data, ref=record.ref)
                    labels = set(video.labels)
                    keep = labels & wanted if config.match == "any" else wanted <= labels
                    if not keep:
                        continue
                    if problem := id_problem(video.yt8m_id):
                        raise RecordError(
                            f"{record.ref}: id {video.yt8m_id!r} cannot be used: {problem}"
                        )
                    if video.yt8m_id in picks:
                        duplicates += 1
                        continue
                    picks[video.yt8m_id] = _Pick(video.yt8m_id, video.labels, record.ref, partition)
                    if config.features:
                        if writer is None:
                            writer = Yt8mFeatureWriter(dataset, video.layout).open()
                        if video.yt8m_id not in writer.done_ids:
                            writer.write(parse_record(record.data, ref=record.ref, features=True))
            except RecordError as exc:
                if not config.skip_bad_records:
                    raise RecordError(
                        f"{exc}; re-download the file, or pass --skip-bad-records to keep the "
                        "records before it and go on"
                    ) from None
                bad_files += 1
                logger.warning("%s; skipping the rest of %s", exc, path.name)
    finally:
        bar.close()
        counts = writer.close() if writer is not None else {}
    return list(picks.values()), records, bad_files, duplicates, counts


def _record(pick: _Pick, vocab: Vocabulary, lookup: Resolution | None) -> ManifestRecord:
    youtube_id = pick.yt8m_id if _YOUTUBE_ID.fullmatch(pick.yt8m_id) else None
    if lookup is not None and lookup.status == Status.OK:
        youtube_id = lookup.youtube_id
    if youtube_id is not None:
        status, detail = Status.OK.value, None
    elif lookup is None:
        status, detail = Status.UNRESOLVED.value, UNRESOLVED_DETAIL
    else:
        status, detail = lookup.status, lookup.detail
    return ManifestRecord(
        sample_id=pick.yt8m_id,
        video_id=youtube_id,
        url=None if youtube_id is None else f"https://www.youtube.com/watch?v={youtube_id}",
        source=Source.YT8M.value,
        status=status,
        detail=detail,
        input_ref=pick.ref,
        extra={
            COL.labels: list(pick.labels),
            COL.label_names: [vocab.name(i) for i in pick.labels],
            COL.yt8m_partition: pick.partition,
        },
    )
