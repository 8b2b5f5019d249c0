"""YouTube-8M frame-level records: parsing and ``svm manifest yt8m --features`` on one core.

    .venv/bin/python benchmarks/yt8m_parse.py [--records 300] [--seconds 250] [--repeat 3]

Writes `--records` frame-level records of `--seconds` seconds each (real YT8M frame-level videos
have up to 300 seconds), every one labelled "Music video", and times on one pinned core (best of
``--repeat`` runs, wall and CPU time; CPU time is this process's, kernel time included, and
tells the costs apart on a busy machine):

* read                    the file's bytes (the I/O floor)
* framing + CRC           svm's TFRecord reader, both CRC-32C checks per record
* svm: select             framing + the context only (id, labels), hand-written decoder: what
                          label selection uses
* upb: select             the same with protobuf's C parser (upb), for comparison
* hand-written features   framing + the hand-written full decoder + float32 dequantisation
* svm: features           framing + ``parse_record(features=True)`` (upb context, feature lists
                          read as uint8 matrices): what the writer stores (the bytes are the
                          indices of the shards' 256 float16 values, see svm_toolkit.yt8m.parquet)
* protobuf (upb) features framing + protobuf's C parser on the same bytes + the official
                          float32 dequantisation: the baseline
* write + fsync           as many bytes as the records' feature values (one byte each) written
                          to a file, then fsynced: the I/O of the shards, done in one go
* svm manifest yt8m --features   end to end, in-process through ``build_yt8m_manifest`` into a
                          fresh dataset: selection, parse, both feature shard sets (float16
                          values, one byte each on disk) and the manifest, fsyncs included; its
                          commit threads run on the same pinned core (threads inherit it)

The target: end to end at least as fast as the baseline's decode alone. Then the real CLI runs
once in a child process (pinned to the same core): its wall time (Python's start-up included)
and peak RSS. `--profile` prints the top entries of a cProfile of one end-to-end run.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import google.protobuf
import numpy as np
import pyarrow as pa

from svm_toolkit.testing.tf_train import tf_train_messages
from svm_toolkit.testing.yt8m import synthetic_videos, write_vocabulary, write_yt8m
from svm_toolkit.yt8m import Yt8mConfig, build_yt8m_manifest
from svm_toolkit.yt8m.proto import decode_sequence_example
from svm_toolkit.yt8m.records import Layout, dequantize, parse_record
from svm_toolkit.yt8m.tfrecord import iter_records

MUSIC_VIDEO = 14  # the 2018 vocabulary's "Music video", which the default preset selects


def protobuf_features(message_class: type, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Decode a record with upb and dequantise its frames as the official code does."""
    message = message_class.FromString(data)
    lists = message.feature_lists.feature_list
    rgb = np.frombuffer(b"".join(f.bytes_list.value[0] for f in lists["rgb"].feature), np.uint8)
    audio = np.frombuffer(b"".join(f.bytes_list.value[0] for f in lists["audio"].feature), np.uint8)
    return dequantize(rgb.reshape(-1, 1024)), dequantize(audio.reshape(-1, 128))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is shown")
    parser.add_argument("--profile", action="store_true", help="profile one end-to-end run")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sequence_example = tf_train_messages()["SequenceExample"]
    print(
        f"machine: {platform.machine()}, 1 pinned core of {os.cpu_count()}, Python "
        f"{platform.python_version()}, protobuf {google.protobuf.__version__}, "
        f"pyarrow {pa.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "train0000.tfrecord"
        videos = synthetic_videos(
            args.records, labels=lambda i: (MUSIC_VIDEO,), seconds=args.seconds
        )
        write_yt8m(path, videos, layout=Layout.FRAME)
        vocabulary = write_vocabulary(root / "vocabulary.csv", {MUSIC_VIDEO: "Music video"})
        size = path.stat().st_size
        print(
            f"input: {args.records} frame-level records x {args.seconds} s, {size / 2**20:.1f} MiB"
        )

        def read() -> None:
            with path.open("rb") as fh:
                while fh.read(1 << 20):
                    pass

        def framing() -> None:
            for _ in iter_records(path):
                pass

        def select() -> None:
            for record in iter_records(path):
                parse_record(record.data, ref=record.ref)

        def upb_select() -> None:
            for record in iter_records(path):
                context = sequence_example.FromString(record.data).context.feature
                _ = context["id"].bytes_list.value[0], list(context["labels"].int64_list.value)

        def hand_written() -> None:
            for record in iter_records(path):
                _, lists = decode_sequence_example(record.data)
                for key, dim in (("rgb", 1024), ("audio", 128)):
                    chunks = b"".join(f[0] for f in lists[key])  # type: ignore[misc]
                    dequantize(np.frombuffer(chunks, np.uint8).reshape(-1, dim))

        def features() -> None:
            for record in iter_records(path):
                parse_record(record.data, ref=record.ref, features=True)

        def upb() -> None:
            for record in iter_records(path):
                protobuf_features(sequence_example, record.data)

        values = args.records * args.seconds * (1024 + 128)  # one byte per feature value
        chunk = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).data

        def write_fsync() -> None:
            with (root / "bytes.bin").open("wb") as fh:
                for _ in range(values >> 20):
                    fh.write(chunk)
                fh.write(chunk[: values & ((1 << 20) - 1)])
                fh.flush()
                os.fsync(fh.fileno())
            (root / "bytes.bin").unlink()

        datasets = iter(range(1_000_000))

        def end_to_end() -> None:
            dataset = root / f"dataset{next(datasets)}"  # a fresh one each run, removed untimed
            build_yt8m_manifest([path], vocabulary, dataset, Yt8mConfig(features=True))

        runs: list[tuple[str, Callable[[], None]]] = [
            ("read", read),
            ("framing + CRC", framing),
            ("svm: select (id, labels)", select),
            ("upb: select (id, labels)", upb_select),
            ("hand-written features", hand_written),
            ("svm: features", features),
            ("protobuf (upb) features", upb),
            ("write + fsync", write_fsync),
            ("svm manifest yt8m --features", end_to_end),
        ]
        print(f"{'':<30}{'seconds':>9}{'records/s':>11}{'MiB/s':>9}{'CPU s':>8}")
        best: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for name, run in runs:
            times = [_timed(run) for _ in range(args.repeat)]
            best[name], cpu[name] = min(t[0] for t in times), min(t[1] for t in times)
            seconds = best[name]
            print(
                f"{name:<30}{seconds:>9.3f}{args.records / seconds:>11,.0f}"
                f"{size / 2**20 / seconds:>9,.0f}{cpu[name]:>8.3f}"
            )
        base, ours = "protobuf (upb) features", "svm manifest yt8m --features"
        print(
            f"end to end / upb decode alone: {best[base] / best[ours]:.2f}x the speed "
            f"(target: >= 1.00x); in CPU time {cpu[base] / cpu[ours]:.2f}x"
        )
        for old in root.glob("dataset*"):
            shutil.rmtree(old)
        command = [sys.executable, "-m", "svm_toolkit", "manifest", "yt8m", str(path)]
        command += ["--vocabulary", str(vocabulary), "--features", "-o", str(root / "cli")]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        print(f"CLI (child process): {seconds:.2f} s, peak RSS {peak:,.0f} MiB")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(end_to_end)
            pstats.Stats(profile).sort_stats("tottime").print_stats(8)


def _timed(run: Callable[[], None]) -> tuple[float, float]:
    """Wall and CPU time (this process, kernel time included) of one run, seconds."""
    started, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - started, time.process_time() - cpu


if __name__ == "__main__":
    main()
