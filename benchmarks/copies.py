"""Recall of planted copies per kind, and precision over 200 distinct videos.

    .venv/bin/python benchmarks/copies.py [--distinct 200] [--seconds 6]

Builds the corpus of :mod:`svm_toolkit.testing.copies` with real ffmpeg: a 3-minute original
(384 x 216, 24 fps, twelve 15 s scenes of procedural footage with a moving camera, a random
tune) and a 1-minute letterboxed one, one copy of each kind, and ``--distinct`` videos of
``--seconds`` (192 x 108, two scenes each, of the same generator families with other seeds and
parameters, each with its own tune). Every file goes through the real ``Preprocessor`` (picture
track, Chromaprint); the picture and audio matchers of ``svm splits make`` then run over all of
them at once. It prints, per copy kind, the link found to its original (score, offset) and,
for precision, every link that touches a distinct video, and the closest distinct pair a looser
search finds (``picture_min_share`` 0.2, one vote), as the margin.

``tests/splits/test_copies.py`` asserts the same kinds on a smaller corpus.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.preprocess.sample import PreprocessJob, Preprocessor
from svm_toolkit.splits.matching import MatchConfig, Matches, audio_matches, picture_matches
from svm_toolkit.testing.copies import COPY_KINDS, make_copies, make_distinct

OPEN = FilterConfig(
    min_motion=None, max_speech_ratio=None, max_black_ratio=None, require_audio=False
)


def pairs(found: Matches) -> dict[frozenset[int], tuple[float, float, int]]:
    """Each pair's score, offset and first index."""
    offsets = found.offset_s if found.offset_s is not None else np.full(len(found), np.nan)
    return {
        frozenset((a, b)): (s, o, a)
        for a, b, s, o in zip(
            found.a.tolist(), found.b.tolist(), found.score.tolist(), offsets.tolist(), strict=True
        )
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distinct", type=int, default=200, help="distinct videos")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each, s")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="svm-bench-copies-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        originals, copies = make_copies(root / "copies")
        distinct = make_distinct(root / "distinct", args.distinct, seconds=args.seconds)
        made_s = time.perf_counter() - started
        paths = [*originals, root / "copies" / "other_picture.mp4", *(c.path for c in copies)]
        paths += distinct
        preprocess = Preprocessor(DatasetLayout(root), PreprocessConfig(filters=OPEN, workers=1))
        started = time.perf_counter()
        results = [preprocess(PreprocessJob(p.stem, p.relative_to(root).as_posix())) for p in paths]
        pre_s = time.perf_counter() - started
    index = {p: i for i, p in enumerate(paths)}
    tracks = [np.asarray(r.phash, np.uint64) for r in results]
    prints = [
        r.chromaprint if r.chromaprint is not None else np.zeros(0, np.uint32) for r in results
    ]
    started = time.perf_counter()
    found = {"picture": pairs(picture_matches(tracks)), "audio": pairs(audio_matches(prints))}
    match_s = time.perf_counter() - started
    print(
        f"corpus made in {made_s:.0f} s, preprocessed in {pre_s:.0f} s, matched in {match_s:.2f} s"
    )
    print(f"\n{'copy kind':20} {'link':8} {'found':>6} {'score':>6} {'offset s':>9} {'planted':>8}"
          f"  other kind")  # fmt: skip
    recalled = 0
    for copy in copies:
        key = frozenset((index[copy.original], index[copy.path]))
        hit = found[copy.link].get(key)
        other = "audio" if copy.link == "picture" else "picture"
        also = found[other].get(key)
        if hit is not None:
            recalled += 1
            score, offset, first = hit
            offset = offset if first == index[copy.original] else -offset
            shown = f"{also[0]:.3f}" if also else "none"
            print(f"{copy.kind:20} {copy.link:8} {'yes':>6} {score:6.3f} {offset:9.2f} "
                  f"{0.0 - copy.offset_s + 0.0:8.2f}  {other}: {shown}")  # fmt: skip
        else:
            print(f"{copy.kind:20} {copy.link:8} {'NO':>6}")
    print(f"\nrecall: {recalled} of {len(copies)} planted copies linked by the right kind")
    distinct_ix = {index[p] for p in distinct}
    false = [
        (kind, results[min(p)].sample_id, results[max(p)].sample_id, v[0])
        for kind, links in found.items()
        for p, v in links.items()
        if p & distinct_ix
    ]
    print(f"precision: {len(false)} links touch the {len(distinct)} distinct videos {false[:5]}")
    loose = dataclasses.replace(MatchConfig(), picture_min_share=0.2, picture_min_votes=1)
    near = picture_matches([tracks[i] for i in sorted(distinct_ix)], loose)
    top = float(near.score.max()) if len(near) else 0.0
    print(f"closest distinct pair (picture, any share, one vote): {top:.3f} "
          f"(the link needs {MatchConfig().picture_min_share})")  # fmt: skip
    print("\nkinds:", "; ".join(f"{k}: {v}" for k, v in COPY_KINDS.items()))


if __name__ == "__main__":
    main()
