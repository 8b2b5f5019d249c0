"""Recall@K, MedR, MnR, MRR and their chance levels, against hand-computed and exact values."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest

from svm_toolkit.evaluate.metrics import (
    chance_hit,
    chance_median_rank,
    rank_metrics,
    recall_curve,
)


def test_hand_computed_metrics_of_five_ranks() -> None:
    m = rank_metrics([1, 2, 3, 10, 50], [1, 1, 1, 1, 1], 100, ks=(1, 5, 10, 25, 50))
    assert m.queries == 5 and m.gallery == 100
    assert m.recall == {1: 20.0, 5: 60.0, 10: 80.0, 25: 80.0, 50: 100.0}
    assert m.median_rank == 3.0
    assert m.mean_rank == pytest.approx(66 / 5)
    assert m.mrr == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 10 + 1 / 50) / 5)
    assert m.chance_recall == pytest.approx({1: 1.0, 5: 5.0, 10: 10.0, 25: 25.0, 50: 50.0})
    assert m.chance_median_rank == 50.0  # P(rank <= r) = r / 100 first reaches 1/2 at r = 50


def test_an_even_number_of_ranks_has_the_middle_mean_as_median() -> None:
    m = rank_metrics(np.array([4, 1, 3, 2]), np.array([1, 1, 1, 1]), 4, ks=(1, 2))
    assert m.median_rank == 2.5
    assert m.mean_rank == 2.5
    assert m.recall == {1: 25.0, 2: 50.0}
    assert m.chance_recall == pytest.approx({1: 25.0, 2: 50.0})
    assert m.mrr == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


def test_chance_recall_averages_each_querys_own_positives() -> None:
    # N = 10, K = 1: one positive 1/10, two positives 2/10, five positives 5/10
    m = rank_metrics([1, 1, 1], [1, 2, 5], 10, ks=(1,))
    assert m.chance_recall[1] == pytest.approx(100 * (0.1 + 0.2 + 0.5) / 3)


def test_to_dict_is_json_with_string_ks() -> None:
    d: dict[str, Any] = rank_metrics([1, 7], [1, 1], 10, ks=(1, 5)).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["recall"] == {"1": 50.0, "5": 50.0}
    assert set(d["chance_recall"]) == {"1", "5"}


def test_invalid_ranks_are_errors() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        rank_metrics([], [], 10)
    with pytest.raises(ValueError, match="must be equal"):
        rank_metrics([1, 2], [1], 10)
    with pytest.raises(ValueError, match="must be equal"):
        rank_metrics([[1, 2]], [[1, 1]], 10)


@pytest.mark.parametrize(("n", "k"), [(10, 1), (10, 3), (100, 10), (1000, 50), (5, 5)])
def test_chance_hit_with_one_positive_is_k_over_n(n: int, k: int) -> None:
    assert chance_hit(np.array([1]), n, k) == pytest.approx([k / n])


def test_chance_hit_with_p_positives_is_one_minus_a_ratio_of_binomials() -> None:
    for n in range(2, 31):
        for p in range(1, n + 1):
            ks = range(1, n + 3)
            got = [float(chance_hit(np.array([p]), n, k)[0]) for k in ks]
            exact = [1 - math.comb(n - p, k) / math.comb(n, min(k, n)) for k in ks]
            assert got == pytest.approx(exact, rel=1e-9, abs=1e-12), (n, p)


def test_chance_hit_is_certain_once_k_leaves_no_room_for_the_negatives_alone() -> None:
    # with p positives, the top K holds only negatives at most while K <= N - p
    n, p = 20, 4
    assert chance_hit(np.array([p]), n, n - p) == pytest.approx([1 - 1 / math.comb(n, p)])
    for k in (n - p + 1, n - 1, n, n + 5):
        assert chance_hit(np.array([p]), n, k).tolist() == [1.0]
    assert chance_hit(np.array([n]), n, 1).tolist() == [1.0]


def test_chance_hit_is_per_query() -> None:
    hit = chance_hit(np.array([1, 2, 10]), 10, 2)
    assert hit.dtype == np.float64
    assert hit == pytest.approx([2 / 10, 1 - math.comb(8, 2) / math.comb(10, 2), 1.0])


def exact_median_best_rank(n: int, p: int) -> int:
    """Median best position of p positives over every placement among n, by enumeration."""
    best = [min(placement) + 1 for placement in itertools.combinations(range(n), p)]
    counts = np.bincount(best, minlength=n + 1)
    cumulative = np.cumsum(counts)
    return int(np.argmax(2 * cumulative >= len(best)))


def test_chance_median_rank_of_one_positive_in_ten_is_five() -> None:
    # P(rank <= r) = r / 10: 0.4 at r = 4, 0.5 at r = 5
    assert exact_median_best_rank(10, 1) == 5
    assert chance_median_rank(np.array([1]), 10) == 5.0


def test_chance_median_rank_matches_enumeration() -> None:
    for n in range(1, 13):
        for p in range(1, n + 1):
            assert chance_median_rank(np.array([p]), n) == exact_median_best_rank(n, p), (n, p)


@pytest.mark.parametrize("n", [12, 16, 20, 24, 98, 100, 1000, 100_000])
def test_chance_median_rank_is_exact_where_the_cdf_is_one_half(n: int) -> None:
    # one positive: P(rank <= N / 2) is exactly 1/2, which float rounding can miss
    assert chance_median_rank(np.array([1]), n) == n / 2


def test_chance_median_rank_is_the_median_over_queries() -> None:
    # N = 10: one positive -> 5; two positives -> 3 (2 C(10 - r, 2) <= 45 first at r = 3)
    assert exact_median_best_rank(10, 2) == 3
    assert chance_median_rank(np.array([1, 1, 2]), 10) == 5.0
    assert chance_median_rank(np.array([1, 2, 2]), 10) == 3.0
    assert chance_median_rank(np.array([1, 2]), 10) == 4.0


def test_recall_curve_by_hand() -> None:
    ks, recall = recall_curve([120, 1, 7, 60, 3], 120)
    assert ks.tolist() == [1, 2, 5, 10, 20, 50, 100, 120]
    assert recall.tolist() == pytest.approx([20, 20, 40, 60, 60, 60, 80, 100])


@pytest.mark.parametrize("n", [1, 2, 3, 10, 100, 101, 12345])
def test_recall_curve_ends_at_the_gallery_and_never_falls(n: int) -> None:
    ranks = np.random.default_rng(n).integers(1, n + 1, 50)
    ks, recall = recall_curve(ranks, n)
    assert ks.dtype == np.int64 and recall.dtype == np.float64
    assert ks[-1] == n and recall[-1] == 100.0
    assert len(set(ks.tolist())) == len(ks)
    assert np.all(np.diff(ks) > 0) and np.all(np.diff(recall) >= 0)
    assert ks[0] == 1
