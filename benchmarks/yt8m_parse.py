"""YouTube-8M frame-level record parsing on one core, against baselines in the same run.

    .venv/bin/python benchmarks/yt8m_parse.py [--records 300] [--seconds 250]

Writes `--records` frame-level records of `--seconds` seconds each (real YT8M frame-level videos
have up to 300 seconds) and times, on one pinned core:

* read            the file's bytes (the I/O floor)
* framing + CRC   svm's TFRecord reader, both CRC-32C checks per record
* svm: select     framing + the context only (id, labels): what label selection needs
* svm: features   framing + full decode + dequantised float32 (T, 1024) and (T, 128) arrays
* protobuf (upb)  framing + protobuf's C parser on the same bytes + the same dequantisation
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import google.protobuf
import numpy as np

from svm_toolkit.testing.tf_train import tf_train_messages
from svm_toolkit.testing.yt8m import synthetic_videos, write_yt8m
from svm_toolkit.yt8m.records import Layout, dequantize, parse_record
from svm_toolkit.yt8m.tfrecord import iter_records


def protobuf_features(message_class: type, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    message = message_class.FromString(data)
    lists = message.feature_lists.feature_list
    rgb = np.frombuffer(b"".join(f.bytes_list.value[0] for f in lists["rgb"].feature), np.uint8)
    audio = np.frombuffer(b"".join(f.bytes_list.value[0] for f in lists["audio"].feature), np.uint8)
    return dequantize(rgb.reshape(-1, 1024)), dequantize(audio.reshape(-1, 128))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=250)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sequence_example = tf_train_messages()["SequenceExample"]
    print(
        f"machine: {platform.machine()}, 1 pinned core of {os.cpu_count()}, Python "
        f"{platform.python_version()}, protobuf {google.protobuf.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train0000.tfrecord"
        videos = synthetic_videos(args.records, labels=lambda i: (14,), seconds=args.seconds)
        write_yt8m(path, videos, layout=Layout.FRAME)
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

        def features() -> None:
            for record in iter_records(path):
                parse_record(record.data, ref=record.ref, features=True)

        def upb() -> None:
            for record in iter_records(path):
                protobuf_features(sequence_example, record.data)

        runs: list[tuple[str, Callable[[], None]]] = [
            ("read", read),
            ("framing + CRC", framing),
            ("svm: select (id, labels)", select),
            ("svm: features", features),
            ("protobuf (upb) features", upb),
        ]
        print(f"{'':<26}{'seconds':>9}{'records/s':>11}{'MiB/s':>9}")
        for name, run in runs:
            best = min(_timed(run) for _ in range(3))
            print(
                f"{name:<26}{best:>9.3f}{args.records / best:>11,.0f}{size / 2**20 / best:>9,.0f}"
            )


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
