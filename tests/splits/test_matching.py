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
    hashes = list(rng.integers(0, 2**63, (500, 12), dtype=np.int64).astype(np.uint64))  # 6 s
    copy = hashes[10].copy()
    for k in range(len(copy)):  # 3 bits moved in every frame
        for bit in rng.choice(64, 3, replace=False).tolist():
            copy[k] ^= np.uint64(1 << bit)
    hashes[20] = copy
    hashes[30] = hashes[40][:8].copy()  # a 4 s clip of video 40
    hashes[50] = np.concatenate([hashes[60][:4], hashes[50][4:]])  # 4 of 12 moments: below 0.6
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


def flip_hashes(
    values: npt.NDArray[np.uint64], bits: int, rng: np.random.Generator
) -> npt.NDArray[np.uint64]:
    """Flip ``bits`` random bits of every hash (a re-encode moves a few)."""
    out = values.copy()
    for k in range(len(out)):
        for bit in rng.choice(64, bits, replace=False).tolist():
            out[k] ^= np.uint64(1 << bit)
    return out


def random_tracks(rng: np.random.Generator, n: int, length: int) -> list[npt.NDArray[np.uint64]]:
    return list(rng.integers(0, 2**63, (n, length), dtype=np.int64).astype(np.uint64))


def test_a_cut_of_a_picture_track_is_found_at_its_offset(rng: np.random.Generator) -> None:
    tracks = random_tracks(rng, 300, 360)  # 3 minutes at 0.5 s
    tracks[200] = flip_hashes(tracks[7][150:210], 4, rng)  # 30 s from 75 s on, re-encoded
    tracks[201] = flip_hashes(tracks[8], 5, rng)  # the whole video
    found = picture_matches(tracks)
    assert list(zip(found.a.tolist(), found.b.tolist(), strict=True)) == [(7, 200), (8, 201)]
    assert found.offset_s is not None
    assert found.offset_s.tolist() == [-75.0, 0.0]  # 200's moment t is 7's moment t + 75 s
    assert (found.score >= 0.9).all()


def test_a_shared_title_card_or_flat_pictures_do_not_link(rng: np.random.Generator) -> None:
    tracks = random_tracks(rng, 50, 120)
    title = rng.integers(0, 2**63, 4, dtype=np.int64).astype(np.uint64)
    for i in (1, 2, 3):
        tracks[i][:4] = title  # three videos open on the same 2 s title card
    for i in (10, 11):
        tracks[i][:] = 0  # black (flat) all through
    tracks[12][:] = 0
    tracks[12][:2] = tracks[13][:2]  # 1 s of one video, then black
    assert len(picture_matches(tracks)) == 0


def test_audio_matches_carry_their_offset(rng: np.random.Generator) -> None:
    prints = random_prints(rng, 50)
    prints[9] = flip(prints[4][40:], 0.02, rng)
    found = audio_matches(prints)
    assert found.offset_s is not None
    assert found.offset_s.tolist() == pytest.approx([-40 * 4096 / 3 / 11_025])
