"""Planted copies of procedural videos are linked by the right kind; 200 distinct videos are not.

The corpus (:mod:`svm_toolkit.testing.copies`) is made with real ffmpeg, preprocessed by the
real :class:`Preprocessor` and matched by the matchers ``svm splits make`` runs. The originals
are smaller here than in ``benchmarks/copies.py`` (256 x 144 instead of 384 x 216; distinct
videos of 4 s instead of 6 s), to keep CI fast; the kinds are the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.preprocess.sample import PreprocessJob, Preprocessor, PreprocessResult
from svm_toolkit.splits.matching import Matches, audio_matches, picture_matches
from svm_toolkit.testing.copies import COPY_KINDS, PlantedCopy, make_copies, make_distinct

#: Everything passes: the test is about fingerprints, not filters.
OPEN = FilterConfig(
    min_motion=None, max_speech_ratio=None, max_black_ratio=None, require_audio=False
)


class Corpus:
    """The preprocessed corpus and the links the matchers find in it."""

    def __init__(self, root: Path) -> None:
        originals, self.copies = make_copies(root / "copies", size=(256, 144))
        other = root / "copies" / "other_picture.mp4"
        self.distinct = make_distinct(root / "distinct", 200, seconds=4.0, size=(128, 72))
        paths = [*originals, other, *(c.path for c in self.copies), *self.distinct]
        preprocess = Preprocessor(DatasetLayout(root), PreprocessConfig(filters=OPEN, workers=1))
        self.results: list[PreprocessResult] = [
            preprocess(PreprocessJob(p.stem, p.relative_to(root).as_posix())) for p in paths
        ]
        self.index = {p: i for i, p in enumerate(paths)}
        tracks = [np.asarray(r.phash, np.uint64) for r in self.results]
        prints = [
            r.chromaprint if r.chromaprint is not None else np.zeros(0, np.uint32)
            for r in self.results
        ]
        self.found = {"picture": picture_matches(tracks), "audio": audio_matches(prints)}

    def link(self, kind: str, a: Path, b: Path) -> tuple[float, float] | None:
        """``(score, offset of b against a, s)`` of the link between two files, if found."""
        found: Matches = self.found[kind]
        i, j = self.index[a], self.index[b]
        for x, y, score, offset in zip(
            found.a.tolist(), found.b.tolist(), found.score.tolist(),
            (found.offset_s if found.offset_s is not None else found.score * np.nan).tolist(),
            strict=True,
        ):  # fmt: skip
            if {x, y} == {i, j}:
                return score, offset if x == i else -offset
        return None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("copies"))


def test_every_kind_is_planted(corpus: Corpus) -> None:
    assert [c.kind for c in corpus.copies] == list(COPY_KINDS)
    assert all(r.status == "ok" for r in corpus.results), [
        (r.sample_id, r.detail) for r in corpus.results if r.status != "ok"
    ]


@pytest.mark.parametrize("kind", list(COPY_KINDS))
def test_each_planted_copy_is_linked_by_the_right_kind(corpus: Corpus, kind: str) -> None:
    copy: PlantedCopy = next(c for c in corpus.copies if c.kind == kind)
    found = corpus.link(copy.link, copy.original, copy.path)
    assert found is not None, f"{kind}: no {copy.link} link to its original"
    score, offset = found
    assert score >= 0.9  # 0.6 links; the 30 s cut matched 0.68-0.72 with 0.5 s windows
    # the copy starts offset_s into the original: a moment at t there is at t - offset_s here
    assert offset == pytest.approx(-copy.offset_s, abs=0.5 + 1e-9), kind
    if kind in ("new_soundtrack", "cut_new_soundtrack"):  # the soundtrack cannot link them
        assert corpus.link("audio", copy.original, copy.path) is None
    if kind == "soundtrack_only":  # nor the picture
        assert corpus.link("picture", copy.original, copy.path) is None


def test_no_link_between_distinct_videos(corpus: Corpus) -> None:
    distinct = {corpus.index[p] for p in corpus.distinct}
    for kind, found in corpus.found.items():
        touching = [
            (corpus.results[a].sample_id, corpus.results[b].sample_id, round(s, 3))
            for a, b, s in zip(
                found.a.tolist(), found.b.tolist(), found.score.tolist(), strict=True
            )
            if a in distinct or b in distinct
        ]
        assert touching == [], kind


def test_motion_comes_from_the_timeline(corpus: Corpus) -> None:
    """Every procedural video moves; the picture track has a hash every 0.5 s."""
    for result in corpus.results:
        assert result.signals is not None and result.signals.motion is not None
        assert result.signals.motion > 0.5, result.sample_id
        assert result.phash_step_s == 0.5
        duration = result.facts.duration_s if result.facts else None
        assert duration is not None and abs(len(result.phash) * 0.5 - duration) <= 1.0
