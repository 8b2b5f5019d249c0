"""The evaluation protocol: both directions, the full gallery and N-candidate pools.

A test set of ``N`` pairs (a video and its music) is evaluated

* **video → music**: each video queries the ``N`` music embeddings, and **music → video**;
* against the **full gallery** (all ``N``), and optionally against **pools** of ``pool_size``
  pairs (the test set dealt into disjoint pools by a seeded shuffle, remainder left out), for
  ``pool_seeds`` seeds; pool metrics are the mean over seeds, with their standard deviation;
* with **multi-positive** ground truth when ``positives="music_id"``: every video that shares the
  query's song counts as a hit (many short videos reuse one track); ``"pair"`` counts only the
  query's own partner.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import numpy.typing as npt

from svm_toolkit.device import resolve_device
from svm_toolkit.errors import ConfigError
from svm_toolkit.evaluate.metrics import DEFAULT_KS, RankMetrics, rank_metrics, recall_curve
from svm_toolkit.evaluate.ranks import DEFAULT_CHUNK_BYTES, retrieval_ranks

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Positives = Literal["music_id", "pair"]

#: direction name -> (query side, gallery side).
DIRECTIONS: Final[Mapping[str, tuple[str, str]]] = {
    "video_to_music": ("video", "music"),
    "music_to_video": ("music", "video"),
}


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """How retrieval is evaluated.

    Attributes:
        ks: the K of Recall@K.
        positives: ``music_id`` (videos sharing a song are all positives) or ``pair``.
        pool_size: size of the N-candidate pools (``None``: full gallery only).
        pool_seeds: how many seeded deals of the pools are averaged.
        device: ``cpu``, ``cuda`` or ``auto``.
        chunk_bytes: memory of one block of scores, bytes (bounds the extra memory).
    """

    ks: tuple[int, ...] = DEFAULT_KS
    positives: Positives = "music_id"
    pool_size: int | None = None
    pool_seeds: int = 5
    device: str = "auto"
    chunk_bytes: int = DEFAULT_CHUNK_BYTES

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be >= 1, got {self.ks}")
        if self.pool_size is not None and self.pool_size < 2:
            raise ValueError(f"pool_size must be >= 2, got {self.pool_size}")
        if self.pool_seeds < 1:
            raise ValueError(f"pool_seeds must be >= 1, got {self.pool_seeds}")


@dataclass(frozen=True, slots=True)
class PairedEmbeddings:
    """The embeddings of N test pairs, row i of each array being sample i.

    Attributes:
        sample_ids: the samples' ids, length N.
        video: float32, shape (N, D), L2-normalised.
        music: float32, shape (N, D), L2-normalised.
        music_ids: each sample's song (``None`` when unknown: then only its own pair counts).
    """

    sample_ids: tuple[str, ...]
    video: npt.NDArray[np.float32]
    music: npt.NDArray[np.float32]
    music_ids: tuple[str | None, ...]

    def __post_init__(self) -> None:
        n = len(self.sample_ids)
        if self.video.shape[0] != n or self.music.shape[0] != n or len(self.music_ids) != n:
            raise ValueError("sample_ids, video, music and music_ids must have N rows each")
        if self.video.ndim != 2 or self.video.shape[1:] != self.music.shape[1:]:
            raise ValueError(
                f"video {self.video.shape} and music {self.music.shape} must be (N, D) with one D"
            )

    def groups(self, positives: Positives) -> npt.NDArray[np.int64]:
        """int64, shape (N,): samples with equal values are each other's positives."""
        if positives == "pair":
            return np.arange(len(self.sample_ids), dtype=np.int64)
        return song_groups(self.music_ids)


def song_groups(music_ids: Sequence[str | None]) -> npt.NDArray[np.int64]:
    """int64, shape (N,): the first index of each sample's song; a sample without one is alone."""
    first: dict[str, int] = {}
    out = np.arange(len(music_ids), dtype=np.int64)
    for i, song in enumerate(music_ids):
        if song is not None:
            out[i] = first.setdefault(song, i)
    return out


@dataclass(frozen=True, slots=True)
class DirectionResult:
    """One direction's metrics on the full gallery, and on pools when asked.

    Attributes:
        full: metrics against the whole test gallery.
        curve: (ks, recall %) at K = 1, 2, 5, 10, … N on the full gallery (for plots).
        pools: per-seed metrics against ``pool_size`` candidates (empty when not asked).
    """

    full: RankMetrics
    curve: tuple[tuple[int, ...], tuple[float, ...]]
    pools: tuple[RankMetrics, ...] = ()

    def pool_mean(self) -> dict[str, object] | None:
        """Mean and standard deviation over seeds of the pool metrics (``None`` without pools)."""
        if not self.pools:
            return None
        ks = list(self.pools[0].recall)

        def stats(values: list[float]) -> dict[str, float]:
            return {"mean": float(np.mean(values)), "std": float(np.std(values))}

        return {
            "gallery": self.pools[0].gallery,
            "seeds": len(self.pools),
            "queries_per_seed": self.pools[0].queries,
            "recall": {str(k): stats([p.recall[k] for p in self.pools]) for k in ks},
            "median_rank": stats([p.median_rank for p in self.pools]),
            "mean_rank": stats([p.mean_rank for p in self.pools]),
            "mrr": stats([p.mrr for p in self.pools]),
            "chance_recall": {
                str(k): float(np.mean([p.chance_recall[k] for p in self.pools])) for k in ks
            },
        }


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Both directions' results and the protocol that produced them."""

    directions: Mapping[str, DirectionResult]
    protocol: Mapping[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form, as written to ``metrics.json``."""
        return {
            "protocol": dict(self.protocol),
            "directions": {
                name: {
                    "full": d.full.to_dict(),
                    "curve": {"k": list(d.curve[0]), "recall": list(d.curve[1])},
                    "pools": d.pool_mean(),
                }
                for name, d in self.directions.items()
            },
        }


def evaluate_pairs(pairs: PairedEmbeddings, config: EvalConfig = EvalConfig()) -> EvalResult:
    """Evaluate both directions on the full gallery and, when asked, on pools.

    Raises:
        ConfigError: a pool size larger than the test set.
    """
    import torch

    device = resolve_device(config.device)
    n = len(pairs.sample_ids)
    if config.pool_size is not None and config.pool_size > n:
        raise ConfigError(
            f"--pool-size {config.pool_size} is larger than the {n} test pairs; choose at most {n}"
        )
    groups = pairs.groups(config.positives)
    sides = {
        "video": torch.from_numpy(np.ascontiguousarray(pairs.video, dtype=np.float32)).to(device),
        "music": torch.from_numpy(np.ascontiguousarray(pairs.music, dtype=np.float32)).to(device),
    }
    results = {}
    for name, (query, gallery) in DIRECTIONS.items():
        ranks, positives = _ranks(sides[query], sides[gallery], groups, config)
        full = rank_metrics(ranks, positives, n, config.ks)
        ks, recall = recall_curve(ranks, n)
        pools = [
            _pool_metrics(sides[query], sides[gallery], groups, seed, config)
            for seed in range(config.pool_seeds if config.pool_size else 0)
        ]
        results[name] = DirectionResult(
            full, (tuple(int(k) for k in ks), tuple(float(v) for v in recall)), tuple(pools)
        )
        logger.info("%s: R@10 %.1f%% over %d queries", name, full.recall.get(10, -1.0), n)
    protocol = {
        "pairs": n,
        "positives": config.positives,
        "ties": "a negative scoring equal to the best positive ranks above it",
        "score": "dot product of L2-normalised float32 embeddings (cosine), exact",
        "pool_size": config.pool_size,
        "pool_seeds": config.pool_seeds if config.pool_size else 0,
        "ks": list(config.ks),
    }
    return EvalResult(results, protocol)


def _pool_metrics(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    groups: npt.NDArray[np.int64],
    seed: int,
    config: EvalConfig,
) -> RankMetrics:
    """Deal the pairs into disjoint pools of ``pool_size`` (seeded) and rank within each pool."""
    import torch

    size = config.pool_size
    assert size is not None
    order = np.random.default_rng(seed).permutation(len(groups))
    ranks, positives = [], []
    for start in range(0, len(order) - size + 1, size):
        pool = order[start : start + size]
        index = torch.from_numpy(pool).to(queries.device)
        r, p = _ranks(queries[index], gallery[index], groups[pool], config)
        ranks.append(r)
        positives.append(p)
    return rank_metrics(np.concatenate(ranks), np.concatenate(positives), size, config.ks)


def _ranks(
    queries: torch.Tensor, gallery: torch.Tensor, groups: npt.NDArray[np.int64], config: EvalConfig
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each query's rank and how many positives it has in this gallery."""
    import torch

    g = torch.from_numpy(groups)
    ranks = retrieval_ranks(queries, gallery, g, g, chunk_bytes=config.chunk_bytes)
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return ranks.cpu().numpy(), counts[inverse].astype(np.int64)
