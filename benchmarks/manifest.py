"""Manifest building throughput vs the naive baseline, on one generated URL list.

    .venv/bin/python benchmarks/manifest.py [--rows 200000]

The list mixes YouTube (every URL form), TikTok and plain media URLs; 10 % of its rows repeat an
earlier video under another URL form. The baseline is what peers do: pandas `read_csv` and
`drop_duplicates` on the raw URL string (it cannot see that two URL forms are one video).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import string
import tempfile
import time
from pathlib import Path

import pandas as pd

from svm_toolkit.manifest import MANIFEST_PRESETS, build_manifest

YT_FORMS = (
    "https://www.youtube.com/watch?v={id}",
    "https://youtu.be/{id}?si=share",
    "https://m.youtube.com/watch?v={id}&t=10",
    "https://www.youtube.com/shorts/{id}",
    "https://music.youtube.com/watch?v={id}&list=RD",
)


def url_list(path: Path, rows: int, seed: int = 0) -> int:
    """Write ``rows`` URLs to ``path``; return the number of distinct videos."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-_"
    videos: list[tuple[str, str]] = []
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "likes", "theme"])
        for _ in range(rows):
            if videos and rng.random() < 0.10:  # an earlier video under another URL form
                kind, vid = rng.choice(videos)
            else:
                kind = rng.choice(["youtube", "youtube", "tiktok", "url"])
                vid = (
                    "".join(rng.choices(alphabet, k=11))
                    if kind == "youtube"
                    else str(rng.getrandbits(62))
                )
                videos.append((kind, vid))
            if kind == "youtube":
                url = rng.choice(YT_FORMS).format(id=vid)
            elif kind == "tiktok":
                url = f"https://www.tiktok.com/@user{int(vid) % 997}/video/{vid}" + rng.choice(
                    ["", "?lang=en"]
                )
            else:
                url = f"https://cdn.example.org/v/{vid}.mp4" + rng.choice(["", "?utm_source=x"])
            writer.writerow(
                [url, rng.randint(0, 2_000_000), rng.choice(["vlog", "travel", "dance"])]
            )
    return len(videos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, pandas {pd.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "urls.csv"
        distinct = url_list(src, args.rows)
        mib = src.stat().st_size / 2**20
        print(f"input: {args.rows:,} rows, {distinct:,} distinct videos, {mib:.1f} MiB CSV")

        started = time.perf_counter()
        naive = pd.read_csv(src).drop_duplicates("url")
        naive_s = time.perf_counter() - started

        started = time.perf_counter()
        summary = build_manifest([src], Path(tmp) / "ds", MANIFEST_PRESETS["generic"])
        ours_s = time.perf_counter() - started

    print(f"{'':<28}{'seconds':>9}{'rows/s':>11}{'samples':>10}")
    for name, seconds, samples in (
        ("pandas drop_duplicates(url)", naive_s, len(naive)),
        ("svm manifest urls", ours_s, summary.samples),
    ):
        print(f"{name:<28}{seconds:>9.2f}{args.rows / seconds:>11,.0f}{samples:>10,}")
    kept_naive, kept_ours = len(naive) - distinct, summary.samples - distinct
    print(
        f"distinct videos: {distinct:,}; duplicates kept: baseline {kept_naive:,}, svm {kept_ours}"
    )


if __name__ == "__main__":
    main()
