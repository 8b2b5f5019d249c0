"""Exact retrieval ranks by chunked matrix products, with bounded memory.

For each query, the gallery items that share its group are its positives; the others are
negatives. The query's rank is 1 + the number of negatives that score **at least** as high as its
best positive: ties count against the query, so a model that scores everything alike ranks
every query last, never first. A hit at K means the best positive ranks within the top K, as in
VM-NET's affinity-matrix evaluation (Hong et al., arXiv 1704.06761; ``csehong/VM-NET``
``eval.py``).

The scores are computed in float32, one block of query rows at a time; each block of scores is
``rows x gallery`` float32 and is sized by ``chunk_bytes``. The best positive's score is read
out of the same block (never recomputed by another kernel), so exact ties stay exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import torch

DEFAULT_CHUNK_BYTES: Final = 256 * 2**20
#: Counts are summed in float32, exact below 2**24.
MAX_GALLERY: Final = 2**24


def chunk_rows(gallery: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Query rows per block so that one block of float32 scores takes about ``chunk_bytes``."""
    return max(1, chunk_bytes // (4 * max(gallery, 1)))


def retrieval_ranks(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    query_groups: torch.Tensor,
    gallery_groups: torch.Tensor,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> torch.Tensor:
    """Rank of each query's best positive in the gallery (1 = first).

    Args:
        queries: float, shape (Q, D), L2-normalised (scores are dot products).
        gallery: float, shape (G, D), on the same device as ``queries``.
        query_groups: int64, shape (Q,): the group of each query.
        gallery_groups: int64, shape (G,): the group of each gallery item; items sharing the
            query's group are its positives.
        chunk_bytes: memory of one block of scores, bytes.

    Returns:
        int64, shape (Q,), on the queries' device: 1 + the negatives scoring >= the best positive.

    Raises:
        ValueError: mismatched shapes, non-finite embeddings, a query without any positive in
            the gallery, or a gallery of 2**24 items or more.
    """
    import torch

    if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"queries {tuple(queries.shape)} and gallery {tuple(gallery.shape)} must be (N, D)"
        )
    if query_groups.shape != (queries.shape[0],) or gallery_groups.shape != (gallery.shape[0],):
        raise ValueError("one group per query and per gallery item is needed")
    if not (bool(torch.isfinite(queries.sum())) and bool(torch.isfinite(gallery.sum()))):
        # NaN scores compare false, so NaN embeddings would rank every query first.
        raise ValueError("queries and gallery must be finite (NaN or inf embeddings)")
    if gallery.shape[0] >= MAX_GALLERY:
        raise ValueError(
            f"a gallery of {gallery.shape[0]:,} is too large (at most {MAX_GALLERY:,})"
        )
    device = queries.device
    gallery = gallery.float()
    order = torch.argsort(gallery_groups.to(device), stable=True)
    sorted_groups = gallery_groups.to(device)[order]
    query_groups = query_groups.to(device)
    lo = torch.searchsorted(sorted_groups, query_groups, side="left")
    counts = torch.searchsorted(sorted_groups, query_groups, side="right") - lo
    if bool((counts == 0).any()):
        missing = int(torch.nonzero(counts == 0)[0, 0])
        raise ValueError(f"query {missing} has no positive in the gallery (group not found)")
    ranks = torch.empty(queries.shape[0], dtype=torch.int64, device=device)
    step = chunk_rows(gallery.shape[0], chunk_bytes)
    for start in range(0, queries.shape[0], step):
        rows = slice(start, start + step)
        scores = queries[rows].float() @ gallery.T  # (B, G) float32
        width = int(counts[rows].max())
        offsets = torch.arange(width, device=device)
        valid = offsets[None, :] < counts[rows, None]  # (B, P)
        where = order[(lo[rows, None] + offsets[None, :]).clamp(max=order.shape[0] - 1)]
        positive = scores.gather(1, where)  # (B, P), the positives' own scores
        best = positive.masked_fill(~valid, float("-inf")).max(dim=1).values  # (B,)
        tied_positives = ((positive >= best[:, None]) & valid).sum(dim=1)
        # In place, the block becomes 1.0 where a score reaches the best positive: one pass and
        # no new (B, G) tensor (a bool mask summed as int64 costs more than the matmul's tail).
        at_least = scores.ge_(best[:, None]).sum(dim=1)  # exact counts: G < 2**24
        ranks[rows] = 1 + at_least.long() - tied_positives
    return ranks
