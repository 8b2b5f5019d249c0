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

Pictures (picture tracks: a 64-bit DCT perceptual hash for every 0.5 s of a video's timeline,
:func:`svm_toolkit.preprocess.fingerprint.picture_track`): a key is 24 fixed bit positions of one
hash, in 6 tables with different positions (locality-sensitive hashing by bit sampling), and
a vote carries the offset between the two moments, as for audio. A re-encoded copy moves only a
few bits, so many of its moments share keys at one offset; the check compares the tracks at
that offset: ``picture_min_share`` of the overlapping moments within ``picture_max_bits``, over
at least ``picture_min_overlap_s``. Flat moments (hash 0: black, fades) count neither way.

Cost: sorting the keys. For 200,000 samples of 30 s (48 M audio keys, and 60-hash picture
tracks: 72 M picture keys before each sample's repeats are dropped), `svm splits make` took 58 s
and `svm splits validate` 51 s on a 2-core VM, peak memory 5.75 GB (with 6 keyframe hashes per
sample: 32 s, 32 s, 5.40 GB; ``benchmarks/splits.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

#: Perceptual-hash index: tables of keys, each key this many fixed bit positions of a hash.
PICTURE_TABLES = 6
PICTURE_KEY_BITS = 24
#: Fewest seconds of non-flat picture that ever link two videos, however short they are.
PICTURE_LEAST_OVERLAP_S = 4.0
#: Seconds between two Chromaprint sub-fingerprints (a 4096-sample frame every third of a
#: frame at 11,025 Hz).
AUDIO_ITEM_S = 4096 / 3 / 11_025


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Thresholds of the duplicate searches.

    Attributes:
        audio_min_votes: shared sub-fingerprints at one offset before two soundtracks are
            compared bit by bit.
        audio_min_similarity: share of equal bits over the overlap for the same song, in [0, 1].
        audio_min_overlap: sub-fingerprints the aligned soundtracks must overlap (24 = ~3 s).
        picture_max_bits: Hamming distance (of 64 bits) under which two hashes are the same
            picture (10 rather than 8: on the corpus of ``benchmarks/copies.py``, with hashes of
            0.5 s windows, the 30 s cut matched 0.58 of its moments at 8 bits and 0.68-0.72 at
            10, while the closest pair of 200 distinct videos stayed at 0.55-0.57 at either;
            with today's 1.5 s windows the cut matches 0.97).
        picture_min_share: share of the overlapping moments of two picture tracks that must
            match, at their offset.
        picture_min_votes: shared hash keys at one offset before two picture tracks are
            compared.
        picture_min_overlap_s: seconds of non-flat picture the aligned tracks must share (or
            80 % of the shorter track's, when it is shorter, but never less than
            :data:`PICTURE_LEAST_OVERLAP_S`): two videos that open on the same title card or logo
            for a few seconds are not copies.
        picture_step_s: seconds between two hashes of a picture track (the preprocess's
            :data:`svm_toolkit.preprocess.fingerprint.PICTURE_STEP_S`).
        max_bucket: keys shared by more samples than this are ignored (silence, black frames).
    """

    audio_min_votes: int = 3
    audio_min_similarity: float = 0.88
    audio_min_overlap: int = 24
    picture_max_bits: int = 10
    picture_min_share: float = 0.6
    picture_min_votes: int = 2
    picture_min_overlap_s: float = 10.0
    picture_step_s: float = 0.5
    max_bucket: int = 64

    def __post_init__(self) -> None:
        if not 0.0 < self.audio_min_similarity <= 1.0 or not 0.0 < self.picture_min_share <= 1.0:
            raise ValueError(f"similarity and share thresholds must be in (0, 1]: {self}")
        if min(self.audio_min_votes, self.audio_min_overlap, self.max_bucket,
               self.picture_min_votes) < 1:  # fmt: skip
            raise ValueError(f"votes, overlap and bucket size must be >= 1: {self}")
        if self.picture_min_overlap_s < 0 or self.picture_step_s <= 0:
            raise ValueError(f"picture overlap must be >= 0 s and its step > 0 s: {self}")
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
    def empty(cls, *, with_offsets: bool = False) -> Matches:
        """No pairs (with an empty ``offset_s`` when ``with_offsets``)."""
        pairs, none = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return cls(pairs, pairs.copy(), none, none.copy() if with_offsets else None)


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
        The matching pairs; ``score`` is the share of equal bits at the best offset, and
        ``offset_s`` the time in ``b`` of a moment minus its time in ``a``, seconds.
    """
    values, owners, positions = _flatten(prints, np.uint32)
    # a sample votes once per key: repeats (held notes, a loop) would outvote real matches
    packed = (owners.astype(np.uint64) << np.uint64(32)) | values.astype(np.uint64)
    _, first = np.unique(packed, return_index=True)
    a, b, offset = _shared_keys(
        values[first].astype(np.uint64), owners[first], positions[first], config.max_bucket
    )
    if not len(a):
        return Matches.empty(with_offsets=True)
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
    rows: list[tuple[int, int, float, float]] = []
    for p, (s, _) in best.items():
        i, j = divmod(p, len(prints))
        x, y = prints[i], prints[j]
        overlap = min(len(x) - max(0, -s), len(y) - max(0, s))
        if overlap < config.audio_min_overlap:
            continue
        score, at = max((_bit_similarity(x, y, s + d), s + d) for d in (0, -1, 1))
        if score >= config.audio_min_similarity:
            rows.append((i, j, score, at * AUDIO_ITEM_S))
    return _matches(rows)


def _sampled_bits(values: npt.NDArray[np.uint64], bits: npt.NDArray[np.int64]) -> IntArray:
    """The bits at positions ``bits`` of each value, packed into an integer (bit k = bits[k])."""
    out = np.zeros(len(values), np.uint64)
    for k, position in enumerate(bits.tolist()):
        out |= ((values >> np.uint64(position)) & np.uint64(1)) << np.uint64(k)
    return out.astype(np.int64)


def picture_matches(
    tracks: Sequence[npt.NDArray[np.uint64]], config: MatchConfig = MatchConfig()
) -> Matches:
    """Pairs of samples that show the same pictures over a stretch of time, at any offset.

    Each track is a perceptual hash every ``config.picture_step_s`` seconds of a video's
    timeline (:func:`svm_toolkit.preprocess.fingerprint.picture_track`; 0 = a flat picture,
    never matched). Keys sample ``PICTURE_KEY_BITS`` fixed bit positions of each hash, in
    ``PICTURE_TABLES`` tables; a sample votes once per key (a still scene repeats its keys), and
    a vote carries the offset between the two samples. Two hashes 4 bits apart share a key in
    one of the 6 tables with probability 0.61, 8 bits apart 0.10, so a 30 s copy (60 hashes,
    most within a few bits) collects several votes at its offset; unrelated hashes share a key
    with probability 2^-24 per table.

    The pair is then checked at the offset most votes agree on, and one step either side: a
    hash of one video matches when it lies within ``picture_max_bits`` of the other's hash at
    that moment or one step before or after (a cut or another frame rate samples moments up to
    half a step apart). The pair links when ``picture_min_share`` of the overlapping non-flat
    moments match, and they span at least ``picture_min_overlap_s`` seconds (or 80 % of the
    shorter video's non-flat moments, for videos shorter than that, and never less than 4 s).

    Args:
        tracks: the picture track of each sample (empty: no picture).
        config: thresholds.

    Returns:
        The matching pairs; ``score`` is the share of matching moments over the overlap, and
        ``offset_s`` the time in ``b`` of a moment minus its time in ``a``, seconds (a copy cut
        from ``a`` at 60 s has -60).
    """
    flat, owners, positions = _flatten(tracks, np.uint64)
    values = np.asarray(flat, np.uint64)
    real = values != np.uint64(0)
    values, owners, positions = values[real], owners[real], positions[real]
    chooser = np.random.default_rng(0x5EED)  # fixed: the same keys in every run
    key_parts, owner_parts, position_parts = [], [], []
    for table in range(PICTURE_TABLES):
        bits = np.sort(chooser.choice(64, PICTURE_KEY_BITS, replace=False))
        key = (table << PICTURE_KEY_BITS) | _sampled_bits(values, bits)
        # one vote per sample and key: a still scene would outvote the real matches
        _, first = np.unique((owners << 32) | key, return_index=True)
        key_parts.append(key[first])
        owner_parts.append(owners[first])
        position_parts.append(positions[first])
    if not key_parts or not sum(len(k) for k in key_parts):
        return Matches.empty(with_offsets=True)
    a, b, offset = _shared_keys(
        np.concatenate(key_parts).astype(np.uint64),
        np.concatenate(owner_parts),
        np.concatenate(position_parts),
        config.max_bucket,
    )
    if not len(a):
        return Matches.empty(with_offsets=True)
    span = int(np.abs(offset).max()) + 1
    keys, votes = np.unique((a * len(tracks) + b) * (2 * span + 1) + (offset + span),
                            return_counts=True)  # fmt: skip
    pair, shift = np.divmod(keys, 2 * span + 1)
    order = np.lexsort((votes, pair))  # per pair, its most voted offset last
    pair, shift, votes = pair[order], shift[order] - span, votes[order]
    last = np.r_[pair[1:] != pair[:-1], True]
    pair, shift, votes = pair[last], shift[last], votes[last]
    strong = votes >= config.picture_min_votes
    rows: list[tuple[int, int, float, float]] = []
    for p, s in zip(pair[strong].tolist(), shift[strong].tolist(), strict=True):
        i, j = divmod(p, len(tracks))
        found = _track_check(tracks[i], tracks[j], s, config)
        if found is not None:
            rows.append((i, j, found[0], found[1] * config.picture_step_s))
    return _matches(rows)


def _track_check(
    x: npt.NDArray[np.uint64], y: npt.NDArray[np.uint64], offset: int, config: MatchConfig
) -> tuple[float, int] | None:
    """The share of matching moments of two tracks at ``offset`` +- 1, and the offset used.

    Moment ``i`` of ``x`` is compared with moments ``i + s - 1``, ``i + s`` and ``i + s + 1`` of
    ``y``; flat moments (0) of either count neither as overlap nor as a match.

    Returns:
        ``(share, s)`` at the best ``s``, or ``None`` when no ``s`` passes.
    """
    x, y = np.asarray(x, np.uint64), np.asarray(y, np.uint64)
    shorter = min(int(np.count_nonzero(x)), int(np.count_nonzero(y)))
    needed = (
        max(
            min(config.picture_min_overlap_s, 0.8 * shorter * config.picture_step_s),
            PICTURE_LEAST_OVERLAP_S,
        )
        / config.picture_step_s
        - 1e-9
    )
    padded = np.r_[np.uint64(0), y, np.uint64(0)]  # pad: 0 is never within reach
    best: tuple[float, int] | None = None
    for s in (offset, offset - 1, offset + 1):
        lo, hi = max(0, -s), min(len(x), len(y) - s)
        if hi - lo <= 0:
            continue
        xs = x[lo:hi]
        usable = (xs != 0) & (y[lo + s : hi + s] != 0)
        overlap = int(usable.sum())
        if overlap == 0 or overlap < needed:
            continue
        near = np.full(len(xs), 64, np.int64)
        for e in (-1, 0, 1):
            other = padded[lo + s + e + 1 : hi + s + e + 1]
            bits = np.bitwise_count(xs ^ other).astype(np.int64)
            bits[other == 0] = 64
            near = np.minimum(near, bits)
        share = float(((near <= config.picture_max_bits) & usable).sum()) / overlap
        if share >= config.picture_min_share and (best is None or share > best[0]):
            best = (share, s)
    return best


def _matches(rows: list[tuple[int, int, float, float]]) -> Matches:
    """Rows ``(a, b, score, offset_s)`` as :class:`Matches`, sorted by pair."""
    if not rows:
        return Matches.empty(with_offsets=True)
    a, b, score, offset_s = zip(*sorted(rows), strict=True)
    return Matches(
        np.asarray(a, np.int64),
        np.asarray(b, np.int64),
        np.asarray(score, np.float64),
        np.asarray(offset_s, np.float64),
    )
