"""The split stage reads picture tracks, and reports the keyframe hashes of older versions and
the tracks of other recipes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter
from svm_toolkit.schema import COL, FINGERPRINT_SCHEMA, PICTURE_TRACK_VERSION, with_provenance
from svm_toolkit.splits.inputs import _fingerprints

OLD_SCHEMA = pa.schema([f for f in FINGERPRINT_SCHEMA if f.name != COL.phash_step_s])
TODAY = {"picture_track_version": PICTURE_TRACK_VERSION}


def write(
    layout: DatasetLayout,
    schema: pa.Schema,
    rows: list[dict[str, object]],
    **provenance: object,
) -> None:
    with ShardWriter(
        layout.fingerprints_dir,
        "part",
        with_provenance(schema, "preprocess", **provenance),
        status_column=None,
    ) as writer:
        writer.write(rows)


def row(sample_id: str, hashes: list[int], *, step: float | None) -> dict[str, object]:
    out: dict[str, object] = {
        COL.sample_id: sample_id,
        COL.phash: hashes,
        COL.phash_times_s: [0.5 * k for k in range(len(hashes))],
        COL.chromaprint: [1, 2, 3],
    }
    if step is not None:
        out[COL.phash_step_s] = step
    return out


def test_old_keyframe_hashes_are_reported_and_not_matched(tmp_path: Path) -> None:
    layout = DatasetLayout(tmp_path)
    write(layout, OLD_SCHEMA, [row("old", [5, 6], step=None), row("redone", [7], step=None)])
    write(layout, FINGERPRINT_SCHEMA, [row("redone", [8, 9, 10], step=0.5)], **TODAY)
    index = pd.Index(["old", "redone", "absent"])
    problems: list[tuple[str, str]] = []
    tracks, prints = _fingerprints(layout, index, problems)
    assert [t.tolist() for t in tracks] == [[], [8, 9, 10], []]
    assert [p.tolist() for p in prints] == [[1, 2, 3], [1, 2, 3], []]  # soundtracks still count
    assert len(problems) == 1
    shard, message = problems[0]
    assert "fingerprints" in shard
    assert "keyframe hashes of an older version, not a picture track, for 1 sample(s)" in message
    assert "delete DATASET/preprocess/fingerprints/" in message
    assert tracks[1].dtype == np.uint64


def test_tracks_of_another_recipe_are_reported_and_not_matched(tmp_path: Path) -> None:
    """Half-second windows (recipe 1, no version named) next to today's: only today's count."""
    layout = DatasetLayout(tmp_path)
    write(layout, FINGERPRINT_SCHEMA, [row("first", [5, 6], step=0.5), row("both", [7], step=0.5)])
    write(layout, FINGERPRINT_SCHEMA, [row("both", [8, 9], step=0.5), row("new", [3], step=0.5)],
          **TODAY)  # fmt: skip
    problems: list[tuple[str, str]] = []
    tracks, prints = _fingerprints(layout, pd.Index(["first", "both", "new"]), problems)
    assert [t.tolist() for t in tracks] == [[], [8, 9], [3]]
    assert [p.tolist() for p in prints] == [[1, 2, 3]] * 3
    assert len(problems) == 1
    message = problems[0][1]
    assert f"picture tracks of recipe 1, not this toolkit's {PICTURE_TRACK_VERSION}" in message
    assert "for 1 sample(s)" in message and "delete DATASET/preprocess/fingerprints/" in message
