"""Configuration of ``svm manifest urls`` and its presets (``generic``, ``svm10k``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from svm_toolkit.errors import ConfigError
from svm_toolkit.manifest.readers import MAX_LINE_BYTES, MAX_WHOLE_FILE_BYTES, ReadLimits
from svm_toolkit.schema import COL

#: Most distinct samples ``svm manifest urls`` builds into one manifest (``--max-samples``).
MAX_SAMPLES: Final = 2_000_000

#: Column names tried, in order, when no ``--url-column`` is given.
URL_COLUMNS: Final = ("url", "URL", "webpage_url", "video_url", "share_url", "link", "href")

#: Input column names that always map to a manifest column.
BASE_ALIASES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    (COL.start_s, ("start_s", "start", "start_time", "t_start", "clip_start")),
    (COL.end_s, ("end_s", "end", "end_time", "t_end", "clip_end")),
    (COL.likes, ("likes",)),
    (COL.theme, ("theme",)),
    (COL.author, ("author",)),
    (COL.duration_s, ("duration_s",)),
    (COL.music_id, ("music_id",)),
    (COL.split, ("split",)),
)

#: Extra names used by TikTok scrapers, mapped by the ``svm10k`` preset.
SHORT_VIDEO_ALIASES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    (COL.likes, ("like_count", "likes_count", "digg_count", "diggCount", "diggcount", "hearts")),
    (COL.theme, ("search_term", "query", "keyword", "hashtag", "category", "topic")),
    (COL.author, ("uploader", "creator", "username", "unique_id", "uniqueId", "nickname")),
    (COL.duration_s, ("duration", "video_duration", "length_s")),
    (COL.music_id, ("sound_id", "song_id", "music", "musicId", "track_id")),
)


@dataclass(frozen=True, slots=True)
class ManifestConfig:
    """How URL lists become a manifest.

    Attributes:
        preset: name of the preset this config started from.
        url_column: input column holding the URL (default: the first of :data:`URL_COLUMNS`).
        id_column: input column holding your own sample ids (default: derived from the URL).
        min_likes: rows with fewer likes are kept as ``filtered:min_likes`` (unknown likes pass).
        max_duration_s: rows longer than this, in seconds, become ``filtered:max_duration``.
        short_video_metadata: map TikTok-scraper column names to likes/theme/author/duration.
        max_line_bytes: longest line of a txt/csv/tsv/jsonl list, in bytes.
        max_whole_file_mb: most MiB (decompressed) of a ``.json`` or ``.parquet.gz`` list, which
            are parsed whole; other formats are streamed.
        max_samples: most distinct samples in one manifest; memory grows with them (about
            1 KB each while building).
    """

    preset: str = "generic"
    url_column: str | None = None
    id_column: str | None = None
    min_likes: int | None = None
    max_duration_s: float | None = None
    short_video_metadata: bool = False
    max_line_bytes: int = MAX_LINE_BYTES
    max_whole_file_mb: int = MAX_WHOLE_FILE_BYTES >> 20
    max_samples: int = MAX_SAMPLES

    def __post_init__(self) -> None:
        for name in ("max_line_bytes", "max_whole_file_mb", "max_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_likes is not None and self.min_likes < 0:
            raise ConfigError(f"min_likes must be >= 0, got {self.min_likes}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ConfigError(f"max_duration_s must be > 0 seconds, got {self.max_duration_s}")

    @property
    def limits(self) -> ReadLimits:
        """The bounds each input file is read with."""
        return ReadLimits(
            max_line_bytes=self.max_line_bytes, max_whole_file_bytes=self.max_whole_file_mb << 20
        )

    @property
    def aliases(self) -> dict[str, tuple[str, ...]]:
        """Manifest column -> input column names that fill it, in order of preference."""
        out = {name: names for name, names in BASE_ALIASES}
        if self.short_video_metadata:
            for name, names in SHORT_VIDEO_ALIASES:
                out[name] = out.get(name, ()) + names
        return out


MANIFEST_PRESETS: Final[dict[str, ManifestConfig]] = {
    "generic": ManifestConfig(),
    # MVBind's SVM-10K: TikTok videos with more than 10,000 likes (MVBind, arXiv 2405.09286;
    # HarmonySet, arXiv 2503.01725, Table 1).
    "svm10k": ManifestConfig(preset="svm10k", min_likes=10_000, short_video_metadata=True),
}
