"""The demo's YouTube-8M branch: generated TFRecords + vocabulary -> a resolved manifest + features.

Writes ``DIR/yt8m/vocabulary.csv`` (2018 layout; the music labels carry their 2018 indices),
two frame-level TFRecord files, and builds ``DIR/yt8m/dataset`` with ids resolved against a
loopback stand-in for YT8M's lookup and YT8M's own features written as feature shards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

from svm_toolkit.testing.yt8m import (
    Answer,
    Yt8mLookupStub,
    synthetic_videos,
    write_vocabulary,
    write_yt8m,
)
from svm_toolkit.yt8m import Layout, ResolveConfig, Yt8mConfig, Yt8mSummary, build_yt8m_manifest

#: Music labels at their indices in the 2018 ``vocabulary.csv`` (research.google.com/youtube8m),
#: and two labels for other videos.
DEMO_VOCABULARY: Final = {
    0: "Game", 3: "Concert", 4: "Musician", 7: "Car", 9: "Guitar", 14: "Music video", 31: "Piano",
}  # fmt: skip
_MUSIC_LABELS: Final = ((14,), (14, 3), (14, 4, 9), (14, 31))
_OTHER_LABELS: Final = ((0,), (7,), (0, 7))


def run_yt8m_demo(
    directory: Path, *, videos: int = 60, seconds: int = 8, seed: int = 0
) -> Yt8mSummary:
    """Generate the YT8M inputs under ``directory`` and build their dataset (re-runs reuse it)."""
    rng = np.random.default_rng(seed)
    music = rng.random(videos) < 2 / 3

    def labels(i: int) -> tuple[int, ...]:
        choices = _MUSIC_LABELS if music[i] else _OTHER_LABELS
        return choices[i % len(choices)]

    synthetic = synthetic_videos(videos, labels=labels, seconds=seconds, seed=seed)
    vocabulary = write_vocabulary(directory / "vocabulary.csv", DEMO_VOCABULARY)
    half = videos // 2
    write_yt8m(directory / "frame" / "train0000.tfrecord", synthetic[:half], layout=Layout.FRAME)
    write_yt8m(directory / "frame" / "validate0000.tfrecord", synthetic[half:], layout=Layout.FRAME)

    music_ids = [v.yt8m_id for v in synthetic if 14 in v.labels]
    answers: dict[str, str | Answer] = {pid: f"demo{i:07d}" for i, pid in enumerate(music_ids)}
    for gone in music_ids[::15]:  # some videos were deleted since YT8M was published
        answers[gone] = Answer.DELETED
    with Yt8mLookupStub(answers) as stub:
        config = Yt8mConfig(
            resolve=ResolveConfig(lookup_base=stub.base_url, allow_private_hosts=True),
            features=True,
        )
        return build_yt8m_manifest(
            [directory / "frame"], vocabulary, directory / "dataset", config, overwrite=True
        )
