"""Find near-duplicate soundtracks and pictures by indexing, never by comparing all pairs.

Both searches use the same scheme:

1. Cut every fingerprint into keys, and put the keys of all samples in one sorted array. Keys
   shared by more than ``max_bucket`` samples (silence, black frames) are dropped: they say
   nothing about which samples are copies.
2. Samples that share keys become candidate pairs. Each shared key is one vote.
3. Each candidate with enough votes is checked with the full fingerprints.

Audio (Chromaprint, about 8 sub-fingerprints a second, :mod:`svm_toolkit.preprocess.fingerprint`):
a key is a whole 32-bit sub-fingerprint. A vote also carries the offset between the two positions,
so the check compares the bits at the offset that most votes agree on. The same recording
re-encoded shares more than 90 % of its sub-fingerprints exactly when aligned, and still 15-20 %
when it starts at another point, so a few votes at one offset always appear. The check needs
``audio_min_similarity`` of the bits equal over the overlap (re-encoded: > 0.95; different songs
of the demo corpus: up to 0.80).

Pictures (64-bit DCT perceptual hashes of a few frames per video): a key is 24 fixed bit positions
of one hash, in 16 tables with different positions (locality-sensitive hashing by bit sampling).
A re-encoded copy moves only a few bits, so its frames share keys in some table; unrelated
frames almost never do. The check needs ``picture_min_share`` of the frames of the video with
fewer frames to lie within ``picture_max_bits`` of some frame of the other.

Cost: sorting the keys. For 200,000 samples of 30 s (48 M audio keys), `svm splits make` took
50 s on a 2-core VM (``benchmarks/splits.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

#: Perceptual-hash index: tables of keys, each key this many fixed bit positions of a hash.
PICTURE_TABLES = 16
PICTURE_KEY_BITS = 24


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Thresholds of the duplicate searches.

    Attributes:
        audio_min_votes: shared sub-fingerprints at one offset before two soundtracks are
            compared bit by bit.
        audio_min_similarity: share of equal bits over the overlap for the same song, in [0, 1].
        audio_min_overlap: sub-fingerprints the aligned soundtracks must overlap (24 = ~3 s).
        picture_max_bits: Hamming distance (of 64 bits) under which two frames are the same.
        picture_min_share: share of the shorter video's frames that must find their match.
        max_bucket: keys shared by more samples than this are ignored (silence, black frames).
    """

    audio_min_votes: int = 3
    audio_min_similarity: float = 0.88
    audio_min_overlap: int = 24
    picture_max_bits: int = 8
    picture_min_share: float = 0.6
    max_bucket: int = 64

    def __post_init__(self) -> None:
        if not 0.0 < self.audio_min_similarity <= 1.0 or not 0.0 < self.picture_min_share <= 1.0:
            raise ValueError(f"similarity and share thresholds must be in (0, 1]: {self}")
        if min(self.audio_min_votes, self.audio_min_overlap, self.max_bucket) < 1:
            raise ValueError(f"votes, overlap and bucket size must be >= 1: {self}")
        if not 0 <= self.picture_max_bits < 64:
            raise ValueError(f"picture_max_bits must be in [0, 63], got {self.picture_max_bits}")


@dataclass(frozen=True, slots=True)
class Matches:
    """Pairs of matching samples, by index: ``a[i] < b[i]``, each pair once.

    Attributes:
        a, b: sample indices, int64, shape (pairs,).
        score: the check's value, float64, shape (pairs,): the share of equal bits (audio) or
            of matched frames (pictures).
        offset_s: where the matcher knows it, the time shift of ``b`` against ``a`` in seconds,
            float64, shape (pairs,) (NaN for a pair without one); ``None`` when it does not.
    """

    a: IntArray
    b: IntArray
    score: npt.NDArray[np.float64]
    offset_s: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def empty(cls) -> Matches:
        """No pairs."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))


def _flatten(
    arrays: Sequence[npt.NDArray[np.generic]], dtype: type[np.generic]
) -> tuple[npt.NDArray[np.generic], IntArray, IntArray]:
    """All values in one array, with each value's sample index and position in its sample."""
    lengths = np.fromiter((len(x) for x in arrays), np.int64, len(arrays))
    values = np.concatenate([np.asarray(x, dtype) for x in arrays]) if len(arrays) else np.zeros(0)
    owners = np.repeat(np.arange(len(arrays), dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    positions = np.arange(len(values), dtype=np.int64) - np.repeat(starts, lengths)
    return values.astype(dtype, copy=False), owners, positions


def _shared_keys(
    keys: npt.NDArray[np.uint64], owners: IntArray, positions: IntArray, max_bucket: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Every pair of entries of different samples with the same key.

    Returns:
        ``(a, b, offset)``, int64, one row per shared key: sample ``a`` < sample ``b`` and the
        position in ``b`` minus the position in ``a``.
    """
    order = np.argsort(keys, kind="stable")
    keys, owners, positions = keys[order], owners[order], positions[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, len(keys)])
    kept = np.repeat((sizes >= 2) & (sizes <= max_bucket), sizes)
    keys, owners, positions = keys[kept], owners[kept], positions[kept]
    found: list[tuple[IntArray, IntArray, IntArray]] = []
    for step in range(1, max_bucket):
        i = np.flatnonzero(keys[step:] == keys[:-step])
        if not len(i):
            break
        j = i + step
        a, b, offset = owners[i], owners[j], positions[j] - positions[i]
        swap = a > b
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        offset = np.where(swap, -offset, offset)
        other = a != b
        found.append((a[other], b[other], offset[other]))
    if not found:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    a, b, offset = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return a, b, offset


def _bit_similarity(x: npt.NDArray[np.uint32], y: npt.NDArray[np.uint32], offset: int) -> float:
    """Share of equal bits of ``x[i]`` and ``y[i + offset]`` over their overlap."""
    x, y = (x[-offset:], y) if offset < 0 else (x, y[offset:])
    n = min(len(x), len(y))
    if n == 0:
        return 0.0
    differing = int(np.bitwise_count(x[:n] ^ y[:n]).sum())
    return 1.0 - differing / (32 * n)


def audio_matches(
    prints: Sequence[npt.NDArray[np.uint32]], config: MatchConfig = MatchConfig()
) -> Matches:
    """Pairs of samples whose soundtracks are the same recording, at any offset.

    Args:
        prints: one raw Chromaprint fingerprint per sample (uint32; empty: no audio).
        config: thresholds.

    Returns:
        The matching pairs; ``score`` is the share of equal bits at the best offset.
    """
    values, owners, positions = _flatten(prints, np.uint32)
    # a sample votes once per key: repeats (held notes, a loop) would outvote real matches
    packed = (owners.astype(np.uint64) << np.uint64(32)) | values.astype(np.uint64)
    _, first = np.unique(packed, return_index=True)
    a, b, offset = _shared_keys(
        values[first].astype(np.uint64), owners[first], positions[first], config.max_bucket
    )
    if not len(a):
        return Matches.empty()
    span = int(np.abs(offset).max()) + 1
    votes_key = (a * len(prints) + b) * (2 * span + 1) + (offset + span)
    keys, votes = np.unique(votes_key, return_counts=True)
    strong = votes >= config.audio_min_votes
    keys, votes = keys[strong], votes[strong]
    pair, shift = np.divmod(keys, 2 * span + 1)
    best: dict[int, tuple[int, int]] = {}
    for p, s, v in zip(pair.tolist(), (shift - span).tolist(), votes.tolist(), strict=True):
        if p not in best or v > best[p][1]:
            best[p] = (s, v)
    rows: list[tuple[int, int, float]] = []
    for p, (s, _) in best.items():
        i, j = divmod(p, len(prints))
        x, y = prints[i], prints[j]
        overlap = min(len(x) - max(0, -s), len(y) - max(0, s))
        if overlap < config.audio_min_overlap:
            continue
        score = max(_bit_similarity(x, y, s + d) for d in (-1, 0, 1))
        if score >= config.audio_min_similarity:
            rows.append((i, j, score))
    return _matches(rows)


def _sampled_bits(values: npt.NDArray[np.uint64], bits: npt.NDArray[np.int64]) -> IntArray:
    """The bits at positions ``bits`` of each value, packed into an integer (bit k = bits[k])."""
    out = np.zeros(len(values), np.uint64)
    for k, position in enumerate(bits.tolist()):
        out |= ((values >> np.uint64(position)) & np.uint64(1)) << np.uint64(k)
    return out.astype(np.int64)


def picture_matches(
    hashes: Sequence[npt.NDArray[np.uint64]], config: MatchConfig = MatchConfig()
) -> Matches:
    """Pairs of samples whose pictures are near-duplicates (re-encodes, rescales, re-uploads).

    Keys sample ``PICTURE_KEY_BITS`` fixed bit positions of each frame hash, in
    ``PICTURE_TABLES`` tables. Two frames 4 bits apart share a table's key with probability
    0.14, so a video of 6 frames finds its copy with probability > 0.999999; 8 bits apart,
    0.018 per table and frame (0.83 for 6 frames). Unrelated frames share a key with
    probability 2^-24 per table.

    Args:
        hashes: the 64-bit perceptual hashes of each sample's frames (empty: no picture).
        config: thresholds.

    Returns:
        The matching pairs; ``score`` is the share of matched frames of the video with fewer.
    """
    flat, owners, positions = _flatten(hashes, np.uint64)
    values = np.asarray(flat, np.uint64)
    chooser = np.random.default_rng(0x5EED)  # fixed: the same keys in every run
    keys = np.concatenate(
        [
            (table << PICTURE_KEY_BITS)
            | _sampled_bits(values, np.sort(chooser.choice(64, PICTURE_KEY_BITS, replace=False)))
            for table in range(PICTURE_TABLES)
        ]
    ).astype(np.uint64)
    a, b, _ = _shared_keys(
        keys,
        np.tile(owners, PICTURE_TABLES),
        np.tile(positions, PICTURE_TABLES),
        config.max_bucket,
    )
    if not len(a):
        return Matches.empty()
    a, b = np.divmod(np.unique(a * len(hashes) + b), len(hashes))
    share = _frame_share(hashes, a, b, config.picture_max_bits)
    keep = share >= config.picture_min_share
    return Matches(a[keep], b[keep], share[keep])


def _frame_share(
    hashes: Sequence[npt.NDArray[np.uint64]], a: IntArray, b: IntArray, max_bits: int
) -> npt.NDArray[np.float64]:
    """For each pair, the share of the shorter video's frames within ``max_bits`` of the other's.

    Vectorised over pairs, in chunks of 100,000 (about 30 MB for 6 frames a video).
    """
    frames = max((len(h) for h in hashes), default=0)
    table = np.zeros((len(hashes), frames), np.uint64)
    count = np.zeros(len(hashes), np.int64)
    for i, h in enumerate(hashes):
        table[i, : len(h)], count[i] = h, len(h)
    valid = np.arange(frames)[None, :] < count[:, None]
    out = np.zeros(len(a), np.float64)
    for start in range(0, len(a), 100_000):
        x, y = a[start : start + 100_000], b[start : start + 100_000]
        bits = np.bitwise_count(table[x][:, :, None] ^ table[y][:, None, :]).astype(np.int64)
        bits[~(valid[x][:, :, None] & valid[y][:, None, :])] = 64  # padding never matches
        close = bits <= max_bits
        from_i = (close.any(axis=2) & valid[x]).sum(axis=1)
        from_j = (close.any(axis=1) & valid[y]).sum(axis=1)
        shorter = np.where(count[x] <= count[y], from_i / np.maximum(count[x], 1),
                           from_j / np.maximum(count[y], 1))  # fmt: skip
        out[start : start + len(x)] = shorter
    return out


def _matches(rows: list[tuple[int, int, float]]) -> Matches:
    if not rows:
        return Matches.empty()
    a, b, score = zip(*sorted(rows), strict=True)
    return Matches(np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(score, np.float64))
