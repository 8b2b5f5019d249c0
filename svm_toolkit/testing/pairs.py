"""A generated dataset of paired features with a learnable relation, for tests and benchmarks.

Each pair draws a latent ``z`` (the "song"): its music steps are a fixed random projection of
``z`` plus noise, and its video steps a different projection of ``z`` plus noise, so a model can
learn to match them while chance stays at K/N. Songs can repeat (``songs < pairs``): pairs of one
song share ``z`` and a ``music_id``. Written exactly as ``svm extract`` and ``svm splits make``
write theirs: a manifest, feature shards with provenance, and ``splits.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardLimits, ShardWriter, write_table_atomic
from svm_toolkit.schema import (
    COL,
    MANIFEST_SCHEMA,
    SPLITS_SCHEMA,
    Source,
    Status,
    feature_schema,
    with_provenance,
)


@dataclass(frozen=True, slots=True)
class PairsSpec:
    """Shape of the generated dataset.

    Attributes:
        pairs: number of samples.
        songs: distinct latents (``None``: one per pair).
        steps: time steps per sample (1 s apart); music with ``audio_steps`` steps (1: one
            clip-level vector, as ``vmnet_music`` gives).
        audio_steps: steps of the music features.
        video_dim, audio_dim: feature dimensions.
        latent: latent dimension.
        noise: noise standard deviation relative to the signal.
        ratios: train, val and test shares (split by song).
        video, audio: the extractor names the shards are written under.
        seed: random seed.
    """

    pairs: int = 256
    songs: int | None = None
    steps: int = 8
    audio_steps: int = 8
    video_dim: int = 32
    audio_dim: int = 16
    latent: int = 8
    noise: float = 0.5
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    video: str = "synthetic_video"
    audio: str = "synthetic_audio"
    seed: int = 0


def write_pairs(dataset: Path, spec: PairsSpec = PairsSpec()) -> Path:
    """Write the dataset into ``dataset`` (created) and return it."""
    rng = np.random.default_rng(spec.seed)
    layout = DatasetLayout(Path(dataset))
    layout.root.mkdir(parents=True, exist_ok=True)
    songs = spec.songs or spec.pairs
    song_of = np.arange(spec.pairs) % songs
    latents = rng.standard_normal((songs, spec.latent))
    ids = [f"pair{i:06d}" for i in range(spec.pairs)]
    music_ids = [f"song{s:06d}" for s in song_of]

    manifest = pa.table(
        {
            COL.sample_id: ids,
            COL.video_id: ids,
            COL.url: [f"https://example.invalid/{i}.mp4" for i in ids],
            COL.source: [Source.URL.value] * spec.pairs,
            COL.status: [Status.OK.value] * spec.pairs,
            **{f.name: [None] * spec.pairs for f in MANIFEST_SCHEMA if f.name not in _SET},
            COL.music_id: music_ids,
        }
    )
    manifest = manifest.select(MANIFEST_SCHEMA.names).cast(
        with_provenance(MANIFEST_SCHEMA, "manifest")
    )
    write_table_atomic(manifest, layout.manifest)

    for name, dim, steps in (
        (spec.video, spec.video_dim, spec.steps),
        (spec.audio, spec.audio_dim, spec.audio_steps),
    ):
        projection = rng.standard_normal((spec.latent, dim)) / np.sqrt(spec.latent)
        drift = rng.standard_normal((steps, dim)) * 0.3  # a per-step pattern shared by all
        signal = latents[song_of] @ projection  # (N, D)
        values = (
            signal[:, None, :]
            + drift[None]
            + spec.noise * rng.standard_normal((spec.pairs, steps, dim))
        )
        _write_features(layout.features_dir(name), name, ids, values.astype(np.float16))

    order = rng.permutation(songs)
    cut = np.cumsum(np.round(np.asarray(spec.ratios) * songs).astype(int))[:2]
    split_of_song = np.empty(songs, dtype=object)
    for name, part in zip(("train", "val", "test"), np.split(order, cut), strict=True):
        split_of_song[part] = name
    splits = pa.table(
        {
            COL.sample_id: ids,
            COL.split: [str(split_of_song[s]) for s in song_of],
            COL.group: [f"pair{s:06d}" for s in song_of],
        },
        schema=with_provenance(SPLITS_SCHEMA, "splits"),
    )
    write_table_atomic(splits, layout.splits)
    return layout.root


_SET = {COL.sample_id, COL.video_id, COL.url, COL.source, COL.status, COL.music_id}


def _write_features(directory: Path, name: str, ids: list[str], values: np.ndarray) -> None:
    """Write (N, T, D) float16 steps as an extractor's shards (per-second, pooled as the mean)."""
    n, steps, dim = values.shape
    schema = with_provenance(
        feature_schema(dim, sequence=True, pooled=True),
        "extract",
        extractor=name,
        input_contract={"modality": "synthetic", "dim": dim, "step_s": 1.0},
    )
    flat = pa.array(values.reshape(-1), pa.float16())
    vectors = pa.FixedSizeListArray.from_arrays(flat, dim)
    offsets = pa.array(np.arange(0, n * steps + 1, steps, dtype=np.int32))
    sequences = pa.ListArray.from_arrays(offsets, vectors)
    times = pa.ListArray.from_arrays(
        offsets, pa.array(np.tile(np.arange(steps, dtype=np.float32), n))
    )
    pooled = pa.FixedSizeListArray.from_arrays(
        pa.array(values.astype(np.float32).mean(axis=1).astype(np.float16).reshape(-1)), dim
    )
    table = pa.table(
        {
            COL.sample_id: ids,
            COL.embeddings: sequences,
            COL.timestamps_s: times,
            COL.embedding: pooled,
        },
        schema=schema,
    )
    limits = ShardLimits(max_rows=max(n // 2, 1), vector_columns=(COL.embeddings, COL.embedding))
    with ShardWriter(directory, "part", schema, status_column=None, limits=limits) as writer:
        writer.write(table)
