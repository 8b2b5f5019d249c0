"""Preprocess memory does not grow with the input (issue 17.6).

A 2-hour 2x2 video over silent audio (under a megabyte) took the old preprocess to 2.9 GB
(the whole soundtrack decoded, then analysed; 10 hours took 8.2 GB). Now a file longer than
``max_media_s`` is ``too_long`` from its header without decoding, and one whose container states
no duration (Matroska written to a pipe) is measured by the probe from its packets (read, not
decoded) and is ``too_long`` the same way; ``load_audio`` itself stops decoding as soon as a
soundtrack passes the bound (tested below on the same file). Peak RSS is measured as the
``ru_maxrss`` of a wrapper process whose only child is ``svm preprocess`` (one worker:
everything in that process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.errors import SampleError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.preprocess.audio import load_audio
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS
from tests.faults.test_worker_crash import rows, write_downloads

HOURS = 2
#: ``svm preprocess`` with torch and Silero loaded peaks at 780-830 MB on a one-video dataset
#: here; the 600 s bound adds about 40 MB of soundtrack. Without a bound these two files took it
#: to 2.9 GB (as did the code before the fix); an hour-long one, analysed whole, peaks at 1.3 GB.
PEAK_RSS_BOUND_MB = 1100
MAX_MEDIA_S = 600

WRAPPER = textwrap.dedent(
    """
    import json, resource, subprocess, sys
    rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"rc": rc, "peak_kb": peak}))
    """
)


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset of the same 2 h video twice: an mp4 that states its duration, and an mkv that
    does not."""
    root = tmp_path_factory.mktemp("long") / "ds"
    layout = DatasetLayout(root)
    mp4, mkv = layout.media_path("stated", ".mp4"), layout.media_path("unstated", ".mkv")
    for path in (mp4, mkv):
        path.parent.mkdir(parents=True, exist_ok=True)
    seconds = str(HOURS * 3600)
    subprocess.run(
        [ffmpeg.require(), "-v", "error",
         "-f", "lavfi", "-i", f"color=black:size=2x2:rate=1:duration={seconds}",
         "-f", "lavfi", "-i", "anullsrc=channel_layout=mono:sample_rate=8000", "-t", seconds,
         "-c:v", "libx264", "-g", "600", "-c:a", "aac", "-b:a", "8k", str(mp4)],
        check=True,
    )  # fmt: skip
    with mkv.open("wb") as out:  # written to a pipe: no duration in the header
        subprocess.run(
            [ffmpeg.require(), "-v", "error", "-i", str(mp4), "-c", "copy", "-f", "matroska",
             "pipe:1"],
            check=True, stdout=out,
        )  # fmt: skip
    write_downloads(root, {"stated": mp4, "unstated": mkv})
    return root


def test_every_preset_bounds_the_length() -> None:
    assert all(p.max_media_s is not None for p in PREPROCESS_PRESETS.values())
    assert PREPROCESS_PRESETS["generic"].max_media_s == 3600.0


def test_long_videos_are_too_long_within_a_memory_bound(long_videos: Path) -> None:
    command = [
        sys.executable, "-m", "svm_toolkit", "preprocess", str(long_videos), "--workers", "1",
        "--max-media-s", str(MAX_MEDIA_S),
    ]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, check=True
    )
    measured = json.loads(out.stdout)
    assert measured["rc"] == 0, out.stderr
    ledger = rows(long_videos, "preprocess")
    assert {sid: r["status"] for sid, r in ledger.items()} == {
        "stated": "too_long",
        "unstated": "too_long",
    }
    assert "7,200 s long, more than max_media_s = 600 s" in str(ledger["stated"]["detail"])
    assert "7,200 s long, more than max_media_s = 600 s" in str(ledger["unstated"]["detail"])
    for sample_id in ("stated", "unstated"):
        assert ledger[sample_id]["media_duration_s"] == pytest.approx(7200, abs=1)
    peak_mb = measured["peak_kb"] / 1024
    print(f"peak RSS of svm preprocess: {peak_mb:.0f} MB")
    assert peak_mb < PEAK_RSS_BOUND_MB


def test_audio_decoding_stops_at_the_bound(long_videos: Path) -> None:
    """The decoder's own bound, for a container whose duration lies or is missing."""
    mkv = DatasetLayout(long_videos).media_path("unstated", ".mkv")
    with pytest.raises(SampleError, match=r"longer than 60 s \(decoding stopped there"):
        load_audio(mkv, max_seconds=60)
