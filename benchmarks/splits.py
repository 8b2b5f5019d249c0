"""``svm splits make`` + ``validate`` at YT8M-music scale, against comparing all pairs.

    .venv/bin/python benchmarks/splits.py [--samples 200000] [--seconds 30]

Writes a dataset of generated fingerprints (a manifest, a preprocess ledger and
``preprocess/fingerprints/``): per sample a Chromaprint-like fingerprint of ``--seconds``
(8 random 32-bit sub-fingerprints a second) and a picture track of the same length (a 64-bit
hash every 0.5 s, as preprocessing writes them: shots of 2-10 s, each a random hash whose
moments move 0-6 bits from it, as a moving picture does). 1 % of the samples are planted copies
of another sample: the soundtrack shifted by 0-10 s with 3 % of its bits flipped (a re-encode),
and the picture track cut at the same point with 0-4 bits of every hash flipped. The samples
have no music ids, so only the fingerprint index can find the copies.

It prints, in one run:

* ``make`` and ``validate`` wall times and peak memory (the index, grouping, dealing, all
  checks, the report), and how many planted copies the index found;
* the baseline: comparing pairs one by one (``chromaprint_similarity``, the alignment search
  over +-10 s, plus the frame-hash distances) timed on 400 samples and extrapolated to all
  pairs.

Target (issue): 200,000 samples validate in minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardLimits, ShardWriter, write_table_atomic
from svm_toolkit.preprocess.fingerprint import chromaprint_similarity
from svm_toolkit.schema import (
    COL,
    FINGERPRINT_SCHEMA,
    MANIFEST_SCHEMA,
    PICTURE_TRACK_VERSION,
    PREPROCESS_FIELDS,
    ledger_schema,
    with_provenance,
)
from svm_toolkit.splits import SplitConfig, ValidateConfig, make_splits, validate_splits

RATE = 8  # sub-fingerprints per second
STEP_S = 0.5  # seconds per picture-track hash


def flip_bits(values: npt.NDArray[np.uint64], share: float, rng: np.random.Generator) -> None:
    """Flip each of the 32 low bits of every value with probability ``share``, in place."""
    for bit in range(32):
        hit = rng.random(len(values)) < share
        values[hit] ^= np.uint64(1 << bit)


def flip_hashes(
    values: npt.NDArray[np.uint64], counts: npt.NDArray[np.int64], rng: np.random.Generator
) -> None:
    """Flip ``counts[k]`` random bits of hash ``k``, in place."""
    for _ in range(int(counts.max(initial=0))):
        bits = rng.integers(0, 64, len(values)).astype(np.uint64)
        hit = counts > 0
        values[hit] ^= np.uint64(1) << bits[hit]
        counts = counts - 1


def picture_tracks(n: int, moments: int, rng: np.random.Generator) -> list[npt.NDArray[np.uint64]]:
    """``n`` picture tracks of ``moments`` hashes: shots of 2-10 s of hashes near the shot's."""
    shots = rng.integers(int(2 / STEP_S), int(10 / STEP_S) + 1, (n, moments))
    starts = np.cumsum(shots, axis=1) - shots  # each sample's shot boundaries, in moments
    tracks = np.zeros((n, moments), np.uint64)
    for i in range(n):
        shot = np.searchsorted(starts[i], np.arange(moments), side="right") - 1
        tracks[i] = rng.integers(0, 2**63, shot.max() + 1, dtype=np.int64).astype(np.uint64)[shot]
    flat = tracks.reshape(-1)
    flip_hashes(flat, rng.integers(0, 7, len(flat)), rng)
    return list(flat.reshape(n, moments))


def fingerprints(
    n: int, seconds: float, rng: np.random.Generator
) -> tuple[list[npt.NDArray[np.uint32]], list[npt.NDArray[np.uint64]], list[tuple[int, int]]]:
    """Random fingerprints with 1 % planted copies; returns them and the (source, copy) pairs."""
    length = int(seconds * RATE)
    prints = list(rng.integers(0, 2**32, (n, length), dtype=np.uint64).astype(np.uint32))
    hashes = picture_tracks(n, int(seconds / STEP_S), rng)
    planted = []
    copies = rng.choice(n, size=n // 100, replace=False)
    sources = rng.choice(np.setdiff1d(np.arange(n), copies), size=len(copies), replace=False)
    for source, copy in zip(sources.tolist(), copies.tolist(), strict=True):
        shift = int(rng.integers(0, 10 * RATE))
        audio = prints[source][shift:].astype(np.uint64)
        flip_bits(audio, 0.03, rng)
        prints[copy] = audio.astype(np.uint32)
        picture = hashes[source][round(shift / RATE / STEP_S) :].copy()
        flip_hashes(picture, rng.integers(0, 5, len(picture)), rng)
        hashes[copy] = picture
        planted.append((min(source, copy), max(source, copy)))
    return prints, hashes, planted


def write_dataset(
    root: Path, prints: list[npt.NDArray[np.uint32]], hashes: list[npt.NDArray[np.uint64]]
) -> None:
    """A manifest, a preprocess ledger (all ok) and fingerprint shards."""
    n = len(prints)
    ids = [f"v{i:07d}" for i in range(n)]
    layout = DatasetLayout(root)
    manifest = pa.table(
        {
            COL.sample_id: ids,
            COL.video_id: ids,
            COL.url: [f"https://www.youtube.com/watch?v={i}" for i in ids],
            COL.source: ["youtube"] * n,
            COL.status: ["ok"] * n,
            COL.duration_s: np.full(n, 30.0),
        }
    )
    columns = {
        f.name: manifest.column(f.name) if f.name in manifest.column_names else pa.nulls(n, f.type)
        for f in MANIFEST_SCHEMA
    }
    write_table_atomic(
        pa.table(columns, schema=with_provenance(MANIFEST_SCHEMA, "manifest")), layout.manifest
    )
    now = datetime.now(UTC)
    schema = with_provenance(ledger_schema(*PREPROCESS_FIELDS), "preprocess")
    rng = np.random.default_rng(1)
    heights = rng.choice([360, 720, 1080], n).tolist()
    with ShardWriter(layout.ledger_dir, "preprocess", schema, limits=ShardLimits(50_000)) as w:
        w.write(
            [
                {
                    COL.sample_id: sample_id, COL.stage: "preprocess", COL.status: "ok",
                    COL.attempts: 1, COL.started_at: now, COL.seconds: 0.0,
                    "media_duration_s": 30.0, "width": 640, "height": height, COL.rotation: 0,
                }
                for sample_id, height in zip(ids, heights, strict=True)
            ]
        )  # fmt: skip
    schema = with_provenance(
        FINGERPRINT_SCHEMA, "preprocess", picture_track_version=PICTURE_TRACK_VERSION
    )
    with ShardWriter(
        layout.fingerprints_dir, "part", schema, status_column=None, limits=ShardLimits(20_000)
    ) as w:
        for start in range(0, n, 20_000):
            w.write(
                [
                    {COL.sample_id: ids[i], COL.phash: hashes[i].tolist(),
                     COL.phash_times_s: (np.arange(len(hashes[i])) * STEP_S).tolist(),
                     COL.phash_step_s: STEP_S, COL.chromaprint: prints[i].tolist()}
                    for i in range(start, min(n, start + 20_000))
                ]
            )  # fmt: skip


def pairwise_seconds_per_pair(
    prints: list[npt.NDArray[np.uint32]], hashes: list[npt.NDArray[np.uint64]], k: int
) -> float:
    """Seconds per pair of the one-by-one comparison, timed on the first ``k`` samples."""
    started = time.perf_counter()
    pairs = 0
    for i in range(k):
        for j in range(i + 1, k):
            chromaprint_similarity(prints[i], prints[j])
            np.bitwise_count(hashes[i][:, None] ^ hashes[j][None, :]).min()  # every alignment
            pairs += 1
    return (time.perf_counter() - started) / pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="soundtrack length, s")
    parser.add_argument("--pairwise", type=int, default=400, help="samples for the baseline")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores")
    rng = np.random.default_rng(0)
    prints, hashes, planted = fingerprints(args.samples, args.seconds, rng)
    n = args.samples
    print(f"dataset: {n:,} samples, {args.seconds:g} s soundtracks, {len(planted):,} planted\n")
    with tempfile.TemporaryDirectory(prefix="svm-bench-splits-") as scratch:
        root = Path(scratch)
        write_dataset(root, prints, hashes)

        started = time.perf_counter()
        made = make_splits(root, SplitConfig())
        make_s = time.perf_counter() - started
        started = time.perf_counter()
        report = validate_splits(root, ValidateConfig())
        report.write(root / "splits_report")
        validate_s = time.perf_counter() - started
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    per_pair = pairwise_seconds_per_pair(prints, hashes, args.pairwise)
    all_pairs = n * (n - 1) / 2
    found = made.links.get("audio", 0)
    print(f"svm splits make      {make_s:8.1f} s   audio links {found:,}, picture links "
          f"{made.links.get('picture', 0):,}, of {len(planted):,} planted")  # fmt: skip
    print(f"svm splits validate  {validate_s:8.1f} s   {report.describe()}")
    print(f"peak memory          {peak_gb:8.2f} GB")
    print(f"all pairs, one by one: {per_pair * 1e6:.0f} us/pair x {all_pairs:.3g} pairs = "
          f"{per_pair * all_pairs / 3600:,.0f} h (timed on {args.pairwise} samples)")  # fmt: skip
    print(f"speed-up of validate: {per_pair * all_pairs / validate_s:,.0f}x")


if __name__ == "__main__":
    main()
