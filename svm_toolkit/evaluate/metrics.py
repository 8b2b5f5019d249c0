"""Recall@K, median and mean rank, MRR, and their chance levels, from exact ranks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

#: The K of Recall@K reported by default (VM-NET's ``csehong/VM-NET`` ``eval.py`` logs
#: R@1/10/25/50/100/1000; MVBind, arXiv 2405.09286, reports Recall@K).
DEFAULT_KS: Final = (1, 5, 10, 25, 50)


@dataclass(frozen=True, slots=True)
class RankMetrics:
    """Retrieval metrics over one set of queries.

    Attributes:
        queries: number of queries.
        gallery: gallery size ``N`` each query was ranked against.
        recall: K -> share of queries whose best positive ranks within the top K, percent.
        median_rank: median rank of the best positive (1 = first).
        mean_rank: mean rank of the best positive.
        mrr: mean reciprocal rank, in [0, 1].
        chance_recall: K -> expected Recall@K of a random ranking with the same positives, percent.
        chance_median_rank: median rank a random ranking gives, over the same queries.
    """

    queries: int
    gallery: int
    recall: Mapping[int, float]
    median_rank: float
    mean_rank: float
    mrr: float
    chance_recall: Mapping[int, float]
    chance_median_rank: float

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly values (K keys as strings)."""
        return {
            "queries": self.queries,
            "gallery": self.gallery,
            "recall": {str(k): v for k, v in self.recall.items()},
            "median_rank": self.median_rank,
            "mean_rank": self.mean_rank,
            "mrr": self.mrr,
            "chance_recall": {str(k): v for k, v in self.chance_recall.items()},
            "chance_median_rank": self.chance_median_rank,
        }


def rank_metrics(
    ranks: npt.ArrayLike,
    positives: npt.ArrayLike,
    gallery: int,
    ks: Sequence[int] = DEFAULT_KS,
) -> RankMetrics:
    """Compute the metrics of one direction.

    Args:
        ranks: int, shape (Q,): each query's rank (1-based), e.g. from ``retrieval_ranks``.
        positives: int, shape (Q,): how many positives each query has in the gallery.
        gallery: gallery size ``N``.
        ks: the K of Recall@K.
    """
    r = np.asarray(ranks, dtype=np.float64)
    p = np.asarray(positives, dtype=np.int64)
    if r.ndim != 1 or r.shape != p.shape or r.size == 0:
        raise ValueError(f"ranks {r.shape} and positives {p.shape} must be equal, non-empty (Q,)")
    return RankMetrics(
        queries=int(r.size),
        gallery=int(gallery),
        recall={k: float(100.0 * np.mean(r <= k)) for k in ks},
        median_rank=float(np.median(r)),
        mean_rank=float(np.mean(r)),
        mrr=float(np.mean(1.0 / r)),
        chance_recall={k: float(100.0 * np.mean(chance_hit(p, gallery, k))) for k in ks},
        chance_median_rank=chance_median_rank(p, gallery),
    )


def chance_hit(positives: npt.NDArray[np.int64], gallery: int, k: int) -> npt.NDArray[np.float64]:
    """Probability that a random ranking puts one of ``p`` positives in the top ``k`` of ``N``.

    ``1 - C(N - p, k) / C(N, k)`` for each query's ``p``.

    Returns:
        float64, shape (Q,), in [0, 1].
    """
    n = float(gallery)
    p = positives.astype(np.float64)
    top = float(min(k, gallery))
    none = np.zeros_like(p)  # C(N - p, k) / C(N, k) where k <= N - p, else 0
    fits = top <= n - p
    q = p[fits]
    none[fits] = np.exp(
        gammaln(n - q + 1) - gammaln(n - q - top + 1) - gammaln(n + 1) + gammaln(n - top + 1)
    )
    return np.asarray(1.0 - none, dtype=np.float64)


def chance_median_rank(positives: npt.NDArray[np.int64], gallery: int) -> float:
    """Median, over queries, of the median rank of the best of ``p`` positives placed at random.

    The best of ``p`` random positions among ``N`` is at rank ``r`` or better with probability
    ``1 - C(N - r, p) / C(N, p)``; its median is the first ``r`` where that reaches one half.
    """
    medians = []
    for p in np.unique(positives):
        ranks = np.arange(1, gallery + 1, dtype=np.float64)
        # P(best rank <= r) = 1 - C(N - r, p) / C(N, p), computed in log space.
        tail = np.where(
            gallery - ranks >= p,
            np.exp(
                gammaln(gallery - ranks + 1)
                - gammaln(gallery - ranks - p + 1)
                - gammaln(gallery + 1)
                + gammaln(gallery - p + 1)
            ),
            0.0,
        )
        median = int(ranks[np.argmax(1.0 - tail >= 0.5)])
        # The CDF can be exactly one half (N = 100, p = 1: r = 50), where float rounding may
        # land on either side: settle the boundary exactly, 2 C(N - r, p) <= C(N, p).
        total, q = math.comb(gallery, int(p)), int(p)
        while median > 1 and 2 * math.comb(gallery - median + 1, q) <= total:
            median -= 1
        while median < gallery and 2 * math.comb(gallery - median, q) > total:
            median += 1
        medians.append(np.full(int(np.sum(positives == p)), float(median)))
    return float(np.median(np.concatenate(medians)))


def recall_curve(
    ranks: npt.ArrayLike, gallery: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Recall@K at K = 1, 2, 5, 10, 20, 50, … up to the gallery size, percent.

    Returns:
        ``(ks, recall)``: int64 and float64 arrays of equal length.
    """
    r = np.sort(np.asarray(ranks, dtype=np.int64))
    ks = [k * 10**e for e in range(12) for k in (1, 2, 5) if k * 10**e < gallery]
    grid = np.asarray([*ks, gallery], dtype=np.int64)
    hits = np.searchsorted(r, grid, side="right")
    return grid, 100.0 * hits / max(r.size, 1)
