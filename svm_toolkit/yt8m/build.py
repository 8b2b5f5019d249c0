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
import logging
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa

from svm_toolkit.config import to_dict
from svm_toolkit.errors import InputError
from svm_toolkit.io.digest import file_sha256
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
from svm_toolkit.yt8m.records import Layout, Yt8mVideo, parse_record
from svm_toolkit.yt8m.resolve import Resolution, resolve_ids, resolved
from svm_toolkit.yt8m.tfrecord import (
    TFRECORD_PATTERNS,
    FramingError,
    Record,
    RecordError,
    is_tfrecord_name,
    iter_records,
)
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
        bad_files: files cut short by a framing error (only with ``skip_bad_records``): the
            records after it cannot be found.
        skipped_records: records skipped as bad (only with ``skip_bad_records``): each record
            that failed to decode, and each framing error.
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
    skipped_records: int
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
        bad = f", {self.skipped_records:,} bad record(s) skipped" if self.skipped_records else ""
        bad += f", {self.bad_files} file(s) cut short" if self.bad_files else ""
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
    """Turn files, folders and glob patterns into a sorted file list.

    Folders are searched (recursively) for {TFRECORD_PATTERNS} (:func:`is_tfrecord_name`); a
    file or a glob pattern is taken whatever its name.

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
            found = sorted(p for p in path.rglob("*") if is_tfrecord_name(p.name) and p.is_file())
            if not found:
                raise InputError(
                    f"{path}: no TFRecord files in this folder (searched for {TFRECORD_PATTERNS}); "
                    "name the files or a glob pattern instead"
                )
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

    Explicit labels may be comma lists (a value that is itself a label name is taken whole);
    a name the vocabulary repeats selects all its indices. Presets resolve per vocabulary
    version (see :meth:`Vocabulary.resolve_preset`).

    Raises:
        InputError: an explicit label is unknown (with suggestions) or ambiguous, or no preset
            label exists.
    """
    if config.labels:
        return vocabulary.resolve(config.labels), ()
    indices, missing = vocabulary.resolve_preset(config.preset)
    if not indices:
        raise InputError(
            f"{vocabulary.path}: none of the '{config.preset}' labels are in this "
            f"vocabulary: {', '.join(LABEL_PRESETS[config.preset])}"
        )
    return indices, missing


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
    scan = _Scan(set(wanted), dataset, config)
    scan.run(files)
    try:  # the features are committed meanwhile: their fsyncs and ours overlap
        picks = list(scan.picks.values())
        table = _manifest_table(picks, files, vocab, dataset, config)
        unchanged = write_manifest(table, dataset, overwrite=overwrite)
    except BaseException:
        try:  # the manifest's error is the one to report; the commit's is logged
            scan.wait_features()
        except Exception as late:  # anything the commit's thread raised
            logger.error("the features' commit failed as well: %s", late)
        raise
    features = scan.wait_features()
    summary = Yt8mSummary(
        path=Path(dataset) / "manifest.parquet",
        files=len(files),
        records=scan.records,
        bad_files=scan.bad_files,
        skipped_records=scan.skipped,
        samples=table.num_rows,
        duplicates_merged=scan.duplicates,
        labels=tuple(dict.fromkeys(vocab.name(i) for i in wanted)),  # a repeated name once
        missing_labels=missing,
        by_status=dict(Counter(table.column(COL.status).to_pylist()).most_common()),
        features=features,
        unchanged=unchanged,
        seconds=time.perf_counter() - started,
    )
    logger.info("yt8m: %s", summary.describe())
    return summary


def _manifest_table(
    picks: list[_Pick], files: list[Path], vocab: Vocabulary, dataset: Path, config: Yt8mConfig
) -> pa.Table:
    """The manifest's rows (after the lookup, when asked for), with provenance."""
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
            "sha256": file_sha256(vocab.path),
        },
    }
    schema = with_provenance(MANIFEST_SCHEMA, "manifest", to_dict(config), **provenance_inputs)
    return records_to_table(rows, schema).replace_schema_metadata(schema.metadata)


class _DroppedPick(RecordError):
    """A picked record whose features do not decode: the pick is dropped with the record."""

    def __init__(self, message: str, yt8m_id: str) -> None:
        super().__init__(message)
        self.yt8m_id = yt8m_id


class _Stop(RecordError):
    """A bad record reported as final (not skipped): the run stops."""


class _Scan:
    """Read every record: pick the wanted videos, write their features, skip bad records.

    A file's layout is the one its first decisive record shows (:func:`record_layout`); a
    context-only record (a frame-level record of 0 seconds, as TensorFlow writes it) before that
    waits, and a file of context-only records takes the dataset's layout (frame level when none).
    """

    def __init__(self, wanted: set[int], dataset: Path, config: Yt8mConfig) -> None:
        self.wanted = wanted
        self.dataset = dataset
        self.config = config
        self.picks: dict[str, _Pick] = {}
        self.records = self.bad_files = self.skipped = self.duplicates = 0
        self.features: dict[str, int] = {}
        self._writer: Yt8mFeatureWriter | None = None
        self._closing: Future[dict[str, int]] | None = None

    def run(self, files: list[Path]) -> None:
        """Scan the files in order; raise on the first bad record unless skipping.

        On success the features are committed in the background: :meth:`wait_features`.
        """
        bar = Progress(
            "yt8m", total=sum(f.stat().st_size for f in files), unit="B", unit_scale=True
        )
        try:
            for path in files:
                self._file(path, bar)
        except BaseException:
            bar.close()
            self.features = self._writer.close() if self._writer is not None else {}
            raise
        bar.close()
        if self._writer is not None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="yt8m-features")
            self._closing = pool.submit(self._writer.close)
            pool.shutdown(wait=False)

    def wait_features(self) -> dict[str, int]:
        """Wait for the features' commit; return rows committed per extractor (all runs).

        Raises:
            OSError: the commit failed (a full disk); its shards are not committed.
        """
        if self._closing is not None:
            closing, self._closing = self._closing, None
            self.features = closing.result()
        return self.features

    def _file(self, path: Path, bar: Progress) -> None:
        partition = m.group(1) if (m := _PARTITION.match(path.name)) else None
        layout: tuple[Layout, str] | None = None  # the file's layout, the record that showed it
        waiting: list[tuple[Record, str]] = []  # picked before the file's layout is known
        read = 0
        try:
            for record in iter_records(path):
                bar.update(record.read_to - read)
                read = record.read_to
                self.records += 1
                try:
                    video = parse_record(record.data, ref=record.where)
                    if video.layout_shown:
                        if layout is None:
                            layout = video.layout, record.where
                            self._write_waiting(waiting, layout[0])
                        elif video.layout is not layout[0]:
                            raise RecordError(
                                f"{record.where}: a {video.layout.value}-level record in a file "
                                f"of {layout[0].value}-level records ({layout[1]} is one)"
                            )
                    if not self._pick(video, record, partition):
                        continue
                    if not self.config.features or self._done(video.yt8m_id):
                        continue
                    if layout is None:
                        waiting.append((record, video.yt8m_id))
                    else:
                        self._write_features(record, video.yt8m_id, layout[0])
                except _Stop:
                    raise
                except RecordError as exc:
                    self._bad_record(exc)
        except FramingError as exc:
            if not self.config.skip_bad_records:
                raise RecordError(
                    f"{exc.where}: {exc.what}; re-download the file, or pass --skip-bad-records "
                    f"to keep the {exc.records_before:,} record(s) before it and go on (the "
                    "framing is lost: the records after it cannot be found)"
                ) from None
            self.bad_files += 1
            self.skipped += 1
            logger.warning(
                "%s: %s; the framing is lost, so the records after it cannot be found: %s records "
                "before it kept, the rest of the file skipped",
                exc.where,
                exc.what,
                f"{exc.records_before:,}",
            )
        finally:
            bar.update(max(path.stat().st_size - read, 0))
        fallback = layout[0] if layout else self._writer.layout if self._writer else Layout.FRAME
        self._write_waiting(waiting, fallback)

    def _pick(self, video: Yt8mVideo, record: Record, partition: str | None) -> bool:
        """Keep the video if its labels match and its id is new; ``True`` when kept."""
        labels = set(video.labels)
        wanted = self.wanted
        if not (labels & wanted if self.config.match == "any" else wanted <= labels):
            return False
        if problem := id_problem(video.yt8m_id):
            raise RecordError(f"{record.where}: id {video.yt8m_id!r} cannot be used: {problem}")
        if video.yt8m_id in self.picks:
            self.duplicates += 1
            return False
        self.picks[video.yt8m_id] = _Pick(video.yt8m_id, video.labels, record.ref, partition)
        return True

    def _done(self, yt8m_id: str) -> bool:
        return self._writer is not None and yt8m_id in self._writer.done_ids

    def _write_features(self, record: Record, yt8m_id: str, layout: Layout) -> None:
        """Decode one picked record's features and queue them.

        Raises:
            _DroppedPick: the features do not decode (:meth:`_bad_record` drops the pick).
            InputError: the dataset's features are of the other layout.
        """
        if self._writer is not None and layout is not self._writer.layout:
            raise InputError(
                f"{record.where}: a file of {layout.value}-level records after "
                f"{self._writer.layout.value}-level ones; write each layout's features to its own "
                "dataset (a separate run with its own -o)"
            )
        try:
            video = parse_record(record.data, ref=record.where, features=True, layout=layout)
        except RecordError as exc:
            raise _DroppedPick(str(exc), yt8m_id) from None
        if self._writer is None:
            self._writer = Yt8mFeatureWriter(self.dataset, layout).open()
            if video.yt8m_id in self._writer.done_ids:
                return
        self._writer.write(video)

    def _write_waiting(self, waiting: list[tuple[Record, str]], layout: Layout) -> None:
        for record, yt8m_id in waiting:
            try:
                self._write_features(record, yt8m_id, layout)
            except _DroppedPick as exc:
                self._bad_record(exc)
        waiting.clear()

    def _bad_record(self, exc: RecordError) -> None:
        """Skip a record that failed to decode (its framing is intact), or raise."""
        if isinstance(exc, _DroppedPick):
            del self.picks[exc.yt8m_id]
        if not self.config.skip_bad_records:
            raise _Stop(
                f"{exc}; its CRCs check out, so the file holds it as written: pass "
                "--skip-bad-records to skip this record and keep the others"
            ) from None
        self.skipped += 1
        logger.warning("%s; record skipped (--skip-bad-records)", exc)


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
