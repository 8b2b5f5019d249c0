"""The one schema module: column names, enums, record types, Arrow schemas and provenance.

No other module spells a column name as a string literal; use :data:`COL`. Stages add columns,
they never rename or drop them. Every Parquet file the toolkit writes carries a JSON provenance
blob under the metadata key :data:`METADATA_KEY` (see :func:`provenance`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeVar

import pyarrow as pa

from svm_toolkit import __version__
from svm_toolkit.errors import ConfigError, SchemaMismatchError
from svm_toolkit.names import unknown_name

SCHEMA_VERSION: Final = 1
METADATA_KEY: Final = b"svm_toolkit"


class COL:
    """Column names used across stages."""

    sample_id: Final = "sample_id"
    video_id: Final = "video_id"
    url: Final = "url"
    source: Final = "source"
    status: Final = "status"
    detail: Final = "detail"
    start_s: Final = "start_s"
    end_s: Final = "end_s"
    likes: Final = "likes"
    theme: Final = "theme"
    author: Final = "author"
    duration_s: Final = "duration_s"
    music_id: Final = "music_id"
    split: Final = "split"
    input_ref: Final = "input_ref"
    stage: Final = "stage"
    attempts: Final = "attempts"
    started_at: Final = "started_at"
    seconds: Final = "seconds"
    embedding: Final = "embedding"
    embeddings: Final = "embeddings"
    timestamps_s: Final = "timestamps_s"
    labels: Final = "labels"
    label_names: Final = "label_names"
    youtube_id: Final = "youtube_id"
    yt8m_partition: Final = "yt8m_partition"
    media_path: Final = "media_path"
    crop_x: Final = "crop_x"
    crop_y: Final = "crop_y"
    crop_w: Final = "crop_w"
    crop_h: Final = "crop_h"
    rotation: Final = "rotation"
    failed_filters: Final = "failed_filters"
    phash: Final = "phash"
    phash_times_s: Final = "phash_times_s"
    phash_step_s: Final = "phash_step_s"
    chromaprint: Final = "chromaprint"
    mel: Final = "mel"
    group: Final = "group"
    sample_id_a: Final = "sample_id_a"
    sample_id_b: Final = "sample_id_b"
    kind: Final = "kind"
    what: Final = "what"
    value: Final = "value"
    score: Final = "score"
    offset_s: Final = "offset_s"
    in_splits: Final = "in_splits"


class Status(StrEnum):
    """Outcome of one sample in one stage (DESIGN §5).

    ``FILTERED`` is always written with a reason, ``filtered:<reason>`` (see :func:`filtered`).
    """

    OK = "ok"
    FILTERED = "filtered"
    UNRESOLVED = "unresolved"  # a YT8M pseudo id not looked up yet (svm manifest yt8m --resolve)
    INVALID_URL = "invalid_url"
    UNAVAILABLE = "unavailable"
    GEO_BLOCKED = "geo_blocked"
    AGE_RESTRICTED = "age_restricted"
    LOGIN_REQUIRED = "login_required"  # members-only, private, registered users, paid: cookies
    NOT_YET_AVAILABLE = "not_yet_available"  # a premiere or live event that has not started
    LIVE = "live"  # a livestream still going on: no fixed-length file yet
    IP_BLOCKED = "ip_blocked"  # the platform blocks this IP address (TikTok, YouTube): a proxy
    RATE_LIMITED = "rate_limited"
    BOT_CHECK = "bot_check"
    MEDIA_FORBIDDEN = "media_forbidden"  # 403 on the media bytes after extraction: re-extract
    TIMEOUT = "timeout"
    NETWORK_ERROR = "network_error"
    NOT_MEDIA = "not_media"
    DECODE_ERROR = "decode_error"
    TRUNCATED = "truncated"  # a file cut short (what decodes is in the detail): retried in the run
    NO_AUDIO = "no_audio"
    TOO_LONG = "too_long"
    IO_ERROR = "io_error"
    TOO_LARGE = "too_large"  # a file past the per-file size cap (--max-file-mb); not retried
    REFUSED_HOST = "refused_host"  # the network policy refused the URL or its address
    INTERNAL_ERROR = "internal_error"  # an unexpected exception on this sample (a bug)


_REASON = re.compile(r"[a-z0-9_]{1,64}")


def filtered(reason: str) -> str:
    """Return the status string of a sample dropped by a filter, e.g. ``filtered:min_likes``.

    Raises:
        ValueError: ``reason`` is not a lower-case slug (``[a-z0-9_]``, at most 64 characters).
    """
    if not _REASON.fullmatch(reason):
        raise ValueError(f"filter reason {reason!r} must match [a-z0-9_]{{1,64}}")
    return f"{Status.FILTERED}:{reason}"


def parse_status(value: str) -> tuple[Status, str | None]:
    """Split a status string into its :class:`Status` and filter reason.

    Example:
        >>> parse_status("filtered:min_likes")
        (<Status.FILTERED: 'filtered'>, 'min_likes')

    Raises:
        ValueError: ``value`` is not a known status.
    """
    base, sep, reason = value.partition(":")
    status = Status(base)
    if (status is Status.FILTERED) != bool(sep) or (sep and not _REASON.fullmatch(reason)):
        raise ValueError(f"status {value!r}: only 'filtered' takes a ':<reason>' suffix")
    return status, reason or None


#: How to redo the ``ok`` samples of each stage that takes ``--retry``: ``--retry`` redoes
#: failures only, so a finished output is never overwritten by accident; a stage redoes an ``ok``
#: sample whose output is gone.
REDO_OK: Final[Mapping[str, str]] = {
    "download": "delete DATASET/media/ and DATASET/ledger/download-*.parquet (for some "
    "samples: their media files and their ledger rows; a file left in media/ without a row is "
    "adopted as it is), then run svm download again",
    "preprocess": "delete DATASET/preprocess/fingerprints/ (every ok sample without its "
    "fingerprints is redone), then run svm preprocess again",
    "extract": "delete DATASET/features/<extractor>/ (every ok video without its feature row "
    "is redone), then run svm extract again",
}


def check_retry(statuses: Sequence[str], stage: str, reasons: Sequence[str] | None = None) -> None:
    """Check the statuses a ``--retry`` option names: any failure status or ``filtered:x``.

    One rule for every stage: ``ok`` is refused with how to redo that stage's ``ok`` samples
    (:data:`REDO_OK`).

    Args:
        statuses: the statuses named.
        stage: the stage, a key of :data:`REDO_OK` (``download``, ``preprocess``, ``extract``).
        reasons: the ``filtered:<reason>`` reasons the stage writes (its filters' names);
            ``None``: any reason passes.

    Raises:
        ConfigError: ``ok``, an unknown status or filter reason (the message lists the known
            ones).
    """
    if Status.OK.value in statuses:
        raise ConfigError(
            f"--retry ok: --retry redoes failed samples only; to redo the ok samples of "
            f"{stage}, {REDO_OK[stage]}"
        )
    known = {s.value for s in Status} - {Status.OK.value}
    unknown = [s for s in statuses if s not in known and not s.startswith(f"{Status.FILTERED}:")]
    if unknown:
        listed = [*sorted(known), f"{Status.FILTERED}:<reason>"]
        also = f" (also unknown: {', '.join(unknown[1:])})" if unknown[1:] else ""
        raise ConfigError(f"--retry: {unknown_name('status', unknown[0], listed)}{also}")
    prefix = f"{Status.FILTERED}:"
    for status in statuses:
        reason = status.removeprefix(prefix)
        if reasons is not None and status.startswith(prefix) and reason not in reasons:
            message = unknown_name(f"{stage} filter reason", reason, reasons)
            raise ConfigError(f"--retry {status}: {message}")


class Split(StrEnum):
    """Dataset split of a sample."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


SPLIT_ALIASES: Final[Mapping[str, Split]] = {
    **{s.value: s for s in Split},
    "training": Split.TRAIN,
    "valid": Split.VAL,
    "validation": Split.VAL,
    "dev": Split.VAL,
    "testing": Split.TEST,
}


class Source(StrEnum):
    """Where a sample's id comes from."""

    YOUTUBE = "youtube"
    TIKTOK = "tiktok"
    URL = "url"
    YT8M = "yt8m"


# --------------------------------------------------------------------------------------------
# Records. A record's fields and its Arrow schema agree in name, order and nullability (tested).


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    """One sample of a dataset: a video (or a clip of one) to download.

    Attributes:
        sample_id: content-derived key used by every stage: the canonical video id (or the
            user's ``--id-column`` value), plus ``_<start_ms>_<end_ms>`` for clips.
        video_id: canonical id of the whole video (YouTube / TikTok id or URL hash); ``None``
            when the URL is invalid. Samples sharing it are the same video.
        url: URL to download (canonical form for YouTube and TikTok); ``None`` while a YT8M
            pseudo id is unresolved.
        source: which kind of id ``video_id`` is (a :class:`Source` value).
        status: ``ok``, ``invalid_url``, ``filtered:<reason>``, or for YT8M ``unresolved`` and
            the lookup's failure status.
        detail: why the status is not ``ok``.
        start_s, end_s: clip bounds in seconds from the start of the video.
        likes, theme, author, duration_s: short-video metadata (``svm10k``); duration in seconds.
        music_id: id of the song in the soundtrack, when known (videos sharing a song).
        split: a split given in the input (validated, never invented here).
        input_ref: ``file:line`` of the input row the sample came from.
        extra: any other input columns, kept as they are.
    """

    sample_id: str
    video_id: str | None
    url: str | None
    source: str
    status: str
    detail: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    likes: int | None = None
    theme: str | None = None
    author: str | None = None
    duration_s: float | None = None
    music_id: str | None = None
    split: str | None = None
    input_ref: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One sample's outcome in one stage; stages append their own columns after these.

    Attributes:
        sample_id: the sample's key.
        stage: stage name, e.g. ``download``.
        status: a :class:`Status` value or ``filtered:<reason>``.
        detail: the tool's message behind a non-``ok`` status (truncated to 500 characters).
        attempts: how many times the stage tried this sample (>= 1).
        started_at: when the last attempt started (timezone-aware, UTC).
        seconds: wall time of the last attempt in seconds.
    """

    sample_id: str
    stage: str
    status: str
    detail: str | None
    attempts: int
    started_at: datetime.datetime
    seconds: float


MANIFEST_SCHEMA: Final = pa.schema(
    [
        pa.field(COL.sample_id, pa.string(), nullable=False),
        pa.field(COL.video_id, pa.string()),
        pa.field(COL.url, pa.string()),
        pa.field(COL.source, pa.string(), nullable=False),
        pa.field(COL.status, pa.string(), nullable=False),
        pa.field(COL.detail, pa.string()),
        pa.field(COL.start_s, pa.float64()),
        pa.field(COL.end_s, pa.float64()),
        pa.field(COL.likes, pa.int64()),
        pa.field(COL.theme, pa.string()),
        pa.field(COL.author, pa.string()),
        pa.field(COL.duration_s, pa.float64()),
        pa.field(COL.music_id, pa.string()),
        pa.field(COL.split, pa.string()),
        pa.field(COL.input_ref, pa.string()),
    ]
)

LEDGER_SCHEMA: Final = pa.schema(
    [
        pa.field(COL.sample_id, pa.string(), nullable=False),
        pa.field(COL.stage, pa.string(), nullable=False),
        pa.field(COL.status, pa.string(), nullable=False),
        pa.field(COL.detail, pa.string()),
        pa.field(COL.attempts, pa.int32(), nullable=False),
        pa.field(COL.started_at, pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field(COL.seconds, pa.float64(), nullable=False),
    ]
)


def ledger_schema(*extra: pa.Field) -> pa.Schema:
    """Return :data:`LEDGER_SCHEMA` followed by a stage's own columns."""
    return pa.schema([*LEDGER_SCHEMA, *extra])


def feature_schema(dim: int, *, sequence: bool = False, pooled: bool = False) -> pa.Schema:
    """Return the Arrow schema of an extractor's feature shards.

    Args:
        dim: embedding dimension ``D`` (> 0).
        sequence: per-time-step features: ``embeddings`` is a list of ``T`` vectors and
            ``timestamps_s`` the ``T`` start times in seconds; otherwise one pooled vector.
        pooled: with ``sequence``, also the pooled ``embedding`` of the steps.

    Returns:
        ``sample_id: string`` then ``embedding: fixed_size_list<float16>[D]``, or
        ``embeddings: list<fixed_size_list<float16>[D]>`` and ``timestamps_s: list<float32>``
        (then ``embedding`` when ``pooled``).
    """
    if dim <= 0:
        raise ValueError(f"embedding dim must be > 0, got {dim}")
    vector = pa.list_(pa.float16(), dim)
    fields = [pa.field(COL.sample_id, pa.string(), nullable=False)]
    if sequence:
        fields += [
            pa.field(COL.embeddings, pa.list_(vector), nullable=False),
            pa.field(COL.timestamps_s, pa.list_(pa.float32()), nullable=False),
        ]
    if pooled or not sequence:
        fields.append(pa.field(COL.embedding, vector, nullable=False))
    return pa.schema(fields)


#: The preprocess ledger's columns after the base ledger's: probe facts, filter scores (so
#: filters can be re-run without decoding), the failing filters, and the crop box in coded pixels.
PREPROCESS_FIELDS: Final = (
    pa.field(COL.media_path, pa.string()),
    pa.field("media_duration_s", pa.float64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field(COL.rotation, pa.int16()),
    pa.field("fps", pa.float32()),
    pa.field("video_codec", pa.string()),
    pa.field("audio_codec", pa.string()),
    pa.field("audio_rate", pa.int32()),
    pa.field("audio_channels", pa.int16()),
    pa.field("loudness_dbfs", pa.float32()),
    pa.field("silence_ratio", pa.float32()),
    pa.field("motion", pa.float32()),
    pa.field("black_ratio", pa.float32()),
    pa.field("speech_ratio", pa.float32()),
    pa.field(COL.failed_filters, pa.list_(pa.string())),
    pa.field(COL.crop_x, pa.int32()),
    pa.field(COL.crop_y, pa.int32()),
    pa.field(COL.crop_w, pa.int32()),
    pa.field(COL.crop_h, pa.int32()),
    pa.field("cropped_path", pa.string()),
)

#: ``preprocess/fingerprints/``: the picture track (a perceptual hash of the cropped picture
#: for every ``phash_step_s`` seconds of the timeline, 0 for a flat picture, and when each of
#: those moments starts, seconds) and
#: the raw Chromaprint fingerprint. Shards without ``phash_step_s`` hold the 8 keyframe hashes of
#: older versions, which the split stage no longer matches (it reports them); shards whose
#: provenance names no :data:`PICTURE_TRACK_VERSION` or another one hold tracks of another recipe,
#: reported the same way.
FINGERPRINT_SCHEMA: Final = pa.schema(
    [
        pa.field(COL.sample_id, pa.string(), nullable=False),
        pa.field(COL.phash, pa.list_(pa.uint64())),
        pa.field(COL.phash_times_s, pa.list_(pa.float32())),
        pa.field(COL.chromaprint, pa.list_(pa.uint32())),
        pa.field(COL.phash_step_s, pa.float32()),
    ]
)

#: The picture track's recipe, named in the provenance of the fingerprint shards
#: (``picture_track_version``): 1 hashed each half-second's own frames; 2 hashes the
#: half-second and its neighbours in the shot (1.5 s), or its own frames where that average is
#: flat. Tracks of different recipes do not compare.
PICTURE_TRACK_VERSION: Final = 2


#: ``splits.parquet``: each sample's split and the group that kept it together (the smallest
#: sample id of the group; a sample alone is its own group).
SPLITS_SCHEMA: Final = pa.schema(
    [
        pa.field(COL.sample_id, pa.string(), nullable=False),
        pa.field(COL.split, pa.string(), nullable=False),
        pa.field(COL.group, pa.string(), nullable=False),
    ]
)

#: ``splits_links.parquet``: one row per link ``svm splits make`` found, ``sample_id_a <
#: sample_id_b``; ``kind`` names the link kind, ``what`` says it in words, ``value`` is the shared
#: value (same-value kinds: the music id, URL...), ``score`` the share of matching bits or frames
#: (1.0 for same-value kinds), ``offset_s`` the time shift of b against a where the matcher knows
#: it, ``in_splits`` whether both samples are in ``splits.parquet`` and ``group`` their group
#: there (null when neither is).
SPLIT_LINKS_SCHEMA: Final = pa.schema(
    [
        pa.field(COL.sample_id_a, pa.string(), nullable=False),
        pa.field(COL.sample_id_b, pa.string(), nullable=False),
        pa.field(COL.kind, pa.string(), nullable=False),
        pa.field(COL.what, pa.string(), nullable=False),
        pa.field(COL.value, pa.string()),
        pa.field(COL.score, pa.float64(), nullable=False),
        pa.field(COL.offset_s, pa.float64()),
        pa.field(COL.in_splits, pa.bool_(), nullable=False),
        pa.field(COL.group, pa.string()),
    ]
)


def mel_schema(unit_shape: Sequence[int] | int) -> pa.Schema:
    """Return the schema of a Mel recipe's shards (``preprocess/mel_<recipe>/``).

    Args:
        unit_shape: the shape of one unit (ImageBind (1, 128, 204), VGGish (96, 64), ...),
            stored as nested fixed-size lists so readers see it (polars
            ``Array(Float32, shape=(96, 64))``, DuckDB ``FLOAT[][][]``). An int stores each
            unit flat as that many values: the older layout, with the shape only in the
            provenance's ``unit_shape``, which :func:`svm_toolkit.data.read_mel` still reads.

    Returns:
        ``sample_id``, ``mel: list<unit>`` (the sample's units: ``fixed_size_list`` of
        ``fixed_size_list`` ... of float32, outermost the first dimension) and
        ``timestamps_s: list<float32>`` (each unit's start, seconds).
    """
    dims = (unit_shape,) if isinstance(unit_shape, int) else tuple(unit_shape)
    if not dims or any(d <= 0 for d in dims):
        raise ValueError(f"unit shape must be > 0 in every dimension, got {unit_shape}")
    unit: pa.DataType = pa.float32()
    for d in reversed(dims):
        unit = pa.list_(unit, d)
    return pa.schema(
        [
            pa.field(COL.sample_id, pa.string(), nullable=False),
            pa.field(COL.mel, pa.list_(unit), nullable=False),
            pa.field(COL.timestamps_s, pa.list_(pa.float32()), nullable=False),
        ]
    )


# --------------------------------------------------------------------------------------------
# Records <-> Arrow tables.

R = TypeVar("R")


def record_fields(cls: type[Any]) -> dict[str, bool]:
    """Map each schema field of a record class to whether it is nullable (``X | None``).

    The ``extra`` mapping of :class:`ManifestRecord` is not a column and is left out.
    """
    hints = typing.get_type_hints(cls)
    out: dict[str, bool] = {}
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        hint = hints[f.name]
        nullable = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
        out[f.name] = nullable
    return out


def records_to_table(records: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """Build a table from records: the schema's columns, then ``extra`` keys in first-seen order.

    Extra columns take the Arrow type pyarrow infers; values of mixed types are stored as
    JSON text so that one odd row never makes the table unwritable.
    """
    columns: dict[str, list[Any]] = {
        name: [getattr(r, name) for r in records] for name in schema.names
    }
    table = pa.table(columns, schema=schema)
    extra_names: dict[str, None] = {}
    for r in records:
        extra_names.update(dict.fromkeys(getattr(r, "extra", {})))
    for name in extra_names:
        values = [getattr(r, "extra", {}).get(name) for r in records]
        table = table.append_column(name, _infer_array(values))
    return table


def table_to_records(table: pa.Table, cls: type[R]) -> list[R]:
    """Turn table rows into records of ``cls``; columns the class lacks go into ``extra``."""
    names = set(record_fields(cls))
    has_extra = any(f.name == "extra" for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    missing = names - set(table.column_names)
    if missing:
        raise SchemaMismatchError(f"table lacks columns {sorted(missing)} needed by {cls.__name__}")
    out: list[R] = []
    for row in table.to_pylist():
        kwargs = {k: v for k, v in row.items() if k in names}
        if has_extra:
            kwargs["extra"] = {k: v for k, v in row.items() if k not in names}
        out.append(cls(**kwargs))
    return out


def _infer_array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in values], pa.string()
        )


# --------------------------------------------------------------------------------------------
# Provenance metadata.


def provenance(
    stage: str, config: Mapping[str, Any] | None = None, **extra: Any
) -> dict[bytes, bytes]:
    """Return the Parquet key-value metadata every file carries.

    Args:
        stage: the stage that wrote the file, e.g. ``manifest``, ``download``.
        config: the stage config's ``to_dict()``.
        **extra: more JSON-serialisable facts (for features: ``extractor``, ``weights_sha256``,
            ``input_spec``).
    """
    payload = {
        "schema_version": SCHEMA_VERSION,
        "toolkit_version": __version__,
        "stage": stage,
        "config": dict(config or {}),
        **extra,
    }
    return {METADATA_KEY: json.dumps(payload, sort_keys=True, default=str).encode()}


def with_provenance(
    schema: pa.Schema, stage: str, config: Mapping[str, Any] | None = None, **extra: Any
) -> pa.Schema:
    """Return ``schema`` with :func:`provenance` merged into its metadata."""
    return schema.with_metadata({**(schema.metadata or {}), **provenance(stage, config, **extra)})


class DamagedMetadataError(SchemaMismatchError):
    """A file's provenance metadata is there but is not a JSON object (damaged or crafted)."""


def read_provenance(schema: pa.Schema, *, where: str = "file") -> dict[str, Any]:
    """Return the provenance blob of a file's schema, checking its schema version.

    Args:
        schema: the Arrow schema read from the file (``pq.read_schema(path)``).
        where: the file's name, used in error messages.

    Raises:
        SchemaMismatchError: no provenance, or a schema version this toolkit cannot read;
            :class:`DamagedMetadataError` when the metadata is not a JSON object.
    """
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise SchemaMismatchError(
            f"{where}: not written by svm_toolkit (no {METADATA_KEY.decode()!r} metadata)"
        )
    try:
        meta = json.loads(raw)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        meta = None
    if not isinstance(meta, dict):
        raise DamagedMetadataError(
            f"{where}: its {METADATA_KEY.decode()!r} metadata is not a JSON object (damaged, or "
            "not written by svm_toolkit); delete the file and re-run the stage that wrote it"
        )
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaMismatchError(
            f"{where}: schema version {version}, this svm_toolkit {__version__} reads version "
            f"{SCHEMA_VERSION}; rebuild the file with this version or install the version that "
            "wrote it "
            f"({meta.get('toolkit_version', 'unknown')})"
        )
    return meta


def column_problems(schema: pa.Schema, expected: Iterable[pa.Field]) -> tuple[list[str], list[str]]:
    """The ``expected`` columns ``schema`` lacks, and those it holds with another type.

    Returns:
        ``(missing, wrong)``: names, and ``"name (type, expected type)"`` texts.
    """
    fields = list(expected)
    missing = [f.name for f in fields if schema.get_field_index(f.name) < 0]
    wrong = [
        f"{f.name} ({schema.field(f.name).type}, expected {f.type})"
        for f in fields
        if f.name not in missing and not schema.field(f.name).type.equals(f.type)
    ]
    return missing, wrong


def check_columns(schema: pa.Schema, expected: pa.Schema, *, where: str) -> None:
    """Raise :class:`SchemaMismatchError` unless ``schema`` starts with ``expected``'s fields."""
    missing, wrong = column_problems(schema, expected)
    if missing or wrong:
        problems = ", ".join([*(f"missing {m}" for m in missing), *wrong])
        raise SchemaMismatchError(f"{where}: columns do not match the schema: {problems}")
