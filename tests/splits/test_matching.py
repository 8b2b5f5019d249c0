"""The fingerprint index: copies found at any offset, unrelated and uninformative keys ignored."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from svm_toolkit.splits.links import Links, components, same_value
from svm_toolkit.splits.matching import MatchConfig, audio_matches, picture_matches


def random_prints(
    rng: np.random.Generator, n: int, length: int = 240
) -> list[npt.NDArray[np.uint32]]:
    return list(rng.integers(0, 2**32, (n, length), dtype=np.uint64).astype(np.uint32))


def flip(
    values: npt.NDArray[np.uint32], share: float, rng: np.random.Generator
) -> npt.NDArray[np.uint32]:
    """Flip each bit with probability ``share`` (a lossy re-encode)."""
    bits = rng.random((len(values), 32)) < share
    mask = (bits * (1 << np.arange(32, dtype=np.uint64))).sum(axis=1).astype(np.uint32)
    return values ^ mask


def test_a_reencoded_soundtrack_is_found_at_any_offset(rng: np.random.Generator) -> None:
    prints = random_prints(rng, 300)
    prints[7] = flip(prints[3][37:], 0.03, rng)  # starts 4.6 s later, 3 % of bits flipped
    prints[250] = flip(prints[100][:120], 0.02, rng)  # the first half only
    found = audio_matches(prints)
    assert list(zip(found.a.tolist(), found.b.tolist(), strict=True)) == [(3, 7), (100, 250)]
    assert (found.score > 0.95).all()


def test_unrelated_silent_and_repetitive_soundtracks_do_not_match(rng: np.random.Generator) -> None:
    prints = random_prints(rng, 200)
    silence = np.zeros(240, np.uint32)  # the same key in every silent track
    for i in range(100, 200):
        prints[i] = silence.copy()
    prints[5] = np.full(240, 12345, np.uint32)  # one held note: one key, one vote
    prints[6] = np.full(240, 12345, np.uint32)
    found = audio_matches(prints, MatchConfig(max_bucket=64))
    assert len(found) == 0


def test_near_duplicate_pictures_match_and_different_ones_do_not(rng: np.random.Generator) -> None:
    hashes = list(rng.integers(0, 2**63, (500, 6), dtype=np.int64).astype(np.uint64))
    copy = hashes[10].copy()
    for k in range(len(copy)):  # 3 bits moved in every frame
        for bit in rng.choice(64, 3, replace=False).tolist():
            copy[k] ^= np.uint64(1 << bit)
    hashes[20] = copy
    hashes[30] = hashes[40][:2].copy()  # a short clip of video 40: its 2 frames
    hashes[50] = np.concatenate([hashes[60][:2], hashes[50][2:]])  # 2 of 6 frames: below 0.6
    found = picture_matches(hashes)
    assert list(zip(found.a.tolist(), found.b.tolist(), strict=True)) == [(10, 20), (30, 40)]
    assert found.score.tolist() == [1.0, 1.0]


def test_black_frames_shared_by_many_videos_are_not_evidence(rng: np.random.Generator) -> None:
    hashes = list(rng.integers(0, 2**63, (100, 4), dtype=np.int64).astype(np.uint64))
    for i in range(100):
        hashes[i][0] = 0  # every video opens on black
    assert len(picture_matches(hashes, MatchConfig(max_bucket=64))) == 0


def test_same_value_links_and_components() -> None:
    a, b = same_value(["x", None, "y", "x", "", "y", "x"])
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 3), (0, 6), (2, 5)]
    labels = components(7, [Links("t", a, b, "t")])
    assert labels[0] == labels[3] == labels[6] and labels[2] == labels[5]
    assert len({labels[0], labels[1], labels[2], labels[4]}) == 4


@pytest.mark.parametrize("field", ["audio_min_similarity", "picture_min_share"])
def test_thresholds_are_checked(field: str) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        MatchConfig(**{field: 1.5})  # type: ignore[arg-type]
