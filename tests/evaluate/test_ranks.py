"""Exact retrieval ranks: hand-computed cases, ties against the query, chunking, a reference."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import torch

from svm_toolkit.evaluate.ranks import chunk_rows, retrieval_ranks


def f32(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def ids(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def unit(cosine: float) -> list[float]:
    """The 2-D unit vector whose dot product with (1, 0) is ``cosine``."""
    return [cosine, float(np.sqrt(1.0 - cosine**2))]


def normalised(rng: np.random.Generator, n: int, d: int) -> torch.Tensor:
    x = rng.standard_normal((n, d))
    return torch.from_numpy((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))


def reference_ranks(
    scores: npt.NDArray[np.float64],
    query_groups: npt.NDArray[np.int64],
    gallery_groups: npt.NDArray[np.int64],
) -> list[int]:
    """1 + the negatives scoring at least the best positive, one query at a time."""
    out = []
    for row, group in zip(scores, query_groups, strict=True):
        positive = gallery_groups == group
        best = row[positive].max()
        out.append(1 + int(np.sum(row[~positive] >= best)))
    return out


def test_a_hand_computed_2d_example() -> None:
    gallery = f32([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    queries = f32([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    # scores:  q0 [1, .6, 0, -1]  positive g0 (1): nothing above            -> 1
    #          q1 [1, .6, 0, -1]  positive g2 (0): 1 and .6 above            -> 3
    #          q2 [0, .8, 1, 0]   positive g3 (0): .8, 1 above, g0 ties (0)  -> 4
    #          q3 [.6, 1, .8, -.6] positive g0 (.6): 1 and .8 above          -> 3
    ranks = retrieval_ranks(queries, gallery, ids([0, 2, 3, 0]), ids([0, 1, 2, 3]))
    assert ranks.dtype == torch.int64
    assert ranks.tolist() == [1, 3, 4, 3]


def test_a_negative_tied_with_the_positive_ranks_above_it() -> None:
    gallery = f32([[0.0, 1.0], [0.0, -1.0], [-1.0, 0.0]])  # positive, tied negative, lower one
    ranks = retrieval_ranks(f32([[1.0, 0.0]]), gallery, ids([7]), ids([7, 8, 9]))
    assert ranks.tolist() == [2]


@pytest.mark.parametrize("n", [1, 2, 5, 33])
def test_a_constant_model_ranks_every_query_last(n: int) -> None:
    same = f32([[0.6, 0.8]] * n)
    ranks = retrieval_ranks(same, same, torch.arange(n), torch.arange(n))
    assert ranks.tolist() == [n] * n


def test_identical_embeddings_with_shared_groups_rank_after_all_negatives() -> None:
    same = f32([[1.0, 0.0]] * 5)
    groups = ids([0, 0, 1, 1, 1])  # group 0 has 3 negatives, group 1 has 2
    assert retrieval_ranks(same, same, groups, groups).tolist() == [4, 4, 3, 3, 3]


def test_multi_positive_ranks_the_best_positive_and_ignores_the_others() -> None:
    cosines = [0.2, 0.95, 0.9, 0.7, 0.5, 0.1]
    groups = [1, 2, 1, 3, 1, 4]  # positives of group 1 score .2, .9, .5; negatives .95, .7, .1
    ranks = retrieval_ranks(
        f32([[1.0, 0.0]]), f32([unit(c) for c in cosines]), ids([1]), ids(groups)
    )
    assert ranks.tolist() == [2]  # only .95 is above the best positive .9


def test_several_positives_tied_at_the_best_score() -> None:
    gallery = f32([unit(0.9), unit(0.3), unit(0.9), unit(0.9), unit(0.5)])
    query = f32([[1.0, 0.0]])
    # positives g0, g2 (both .9), negatives g1 (.3), g3 (.9, tied), g4 (.5)
    assert retrieval_ranks(query, gallery, ids([0]), ids([0, 1, 0, 2, 3])).tolist() == [2]
    # positives g0, g2, g3 all tied at .9: the tied positives do not count against each other
    assert retrieval_ranks(query, gallery, ids([0]), ids([0, 1, 0, 0, 3])).tolist() == [1]


def test_both_directions_are_the_rows_and_the_columns_of_one_score_matrix() -> None:
    video = f32([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    music = f32([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    pairs = torch.arange(3)
    # video x music scores: [[1, 0, 0], [1, 0, 0], [0, 1, 1]], pair i is (video i, music i)
    # rows:    v0 1 first -> 1; v1 0 below 1, tied with 0 -> 3; v2 1 tied with 1 -> 2
    # columns: m0 1 tied with 1 -> 2; m1 0 tied with 0, below 1 -> 3; m2 1 above 0, 0 -> 1
    assert retrieval_ranks(video, music, pairs, pairs).tolist() == [1, 3, 2]
    assert retrieval_ranks(music, video, pairs, pairs).tolist() == [2, 3, 1]


def test_queries_and_gallery_may_differ_in_size(rng: np.random.Generator) -> None:
    gallery = normalised(rng, 7, 3)
    queries = gallery[[4, 4, 0]]
    ranks = retrieval_ranks(queries, gallery, ids([4, 4, 0]), torch.arange(7))
    assert ranks.tolist() == [1, 1, 1]


def test_one_row_per_chunk_gives_exactly_the_unchunked_ranks(rng: np.random.Generator) -> None:
    queries, gallery = normalised(rng, 300, 32), normalised(rng, 200, 32)
    gallery_groups = torch.from_numpy(rng.integers(0, 60, 200))
    query_groups = gallery_groups[torch.from_numpy(rng.integers(0, 200, 300))]
    assert chunk_rows(200, 4 * 200) == 1
    whole = retrieval_ranks(queries, gallery, query_groups, gallery_groups)
    for chunk_bytes in (4 * 200, 4 * 200 * 7, 4 * 200 * 299):
        chunked = retrieval_ranks(
            queries, gallery, query_groups, gallery_groups, chunk_bytes=chunk_bytes
        )
        assert torch.equal(chunked, whole)
    assert int(whole.min()) >= 1 and int(whole.max()) <= 200


def test_random_data_matches_a_brute_force_reference(rng: np.random.Generator) -> None:
    q, g = rng.standard_normal((120, 16)), rng.standard_normal((90, 16))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    gallery_groups = rng.integers(0, 40, 90)
    query_groups = gallery_groups[rng.integers(0, 90, 120)]
    ranks = retrieval_ranks(
        torch.from_numpy(q.astype(np.float32)),
        torch.from_numpy(g.astype(np.float32)),
        torch.from_numpy(query_groups),
        torch.from_numpy(gallery_groups),
        chunk_bytes=4 * 90 * 13,
    )
    assert ranks.tolist() == reference_ranks(q @ g.T, query_groups, gallery_groups)


def test_integer_embeddings_with_many_exact_ties_match_the_reference(
    rng: np.random.Generator,
) -> None:
    q, g = rng.integers(-2, 3, (150, 3)), rng.integers(-2, 3, (110, 3))  # exact small scores
    gallery_groups = rng.integers(0, 25, 110)
    query_groups = gallery_groups[rng.integers(0, 110, 150)]
    ranks = retrieval_ranks(
        torch.from_numpy(q.astype(np.float32)),
        torch.from_numpy(g.astype(np.float32)),
        torch.from_numpy(query_groups),
        torch.from_numpy(gallery_groups),
        chunk_bytes=4 * 110 * 11,
    )
    expected = reference_ranks((q @ g.T).astype(np.float64), query_groups, gallery_groups)
    assert ranks.tolist() == expected
    assert len(set(expected)) > 10  # the ties spread the ranks, not all first or last


def test_a_query_without_any_positive_is_an_error() -> None:
    gallery = f32([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="query 1 has no positive"):
        retrieval_ranks(gallery, gallery, ids([0, 5]), ids([0, 1]))


def test_mismatched_shapes_are_errors() -> None:
    two, three = f32([[1.0, 0.0]] * 2), f32([[1.0, 0.0, 0.0]] * 2)
    with pytest.raises(ValueError, match="must be"):
        retrieval_ranks(two, three, ids([0, 1]), ids([0, 1]))
    with pytest.raises(ValueError, match="must be"):
        retrieval_ranks(f32([1.0, 0.0]), two, ids([0]), ids([0, 1]))
    with pytest.raises(ValueError, match="one group per"):
        retrieval_ranks(two, two, ids([0, 1, 2]), ids([0, 1]))
    with pytest.raises(ValueError, match="one group per"):
        retrieval_ranks(two, two, ids([0, 1]), ids([0]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_embeddings_are_errors_not_perfect_scores(bad: float) -> None:
    good = f32([[1.0, 0.0], [0.0, 1.0]])
    broken = f32([[bad, bad], [bad, bad]])
    with pytest.raises(ValueError, match="finite"):
        retrieval_ranks(broken, good, ids([0, 1]), ids([0, 1]))
    with pytest.raises(ValueError, match="finite"):
        retrieval_ranks(good, broken, ids([0, 1]), ids([0, 1]))


def test_chunk_rows_is_at_least_one_row() -> None:
    assert chunk_rows(1000, 4 * 1000 * 25) == 25
    assert chunk_rows(1000, 1) == 1
    assert chunk_rows(0, 400) == 100
