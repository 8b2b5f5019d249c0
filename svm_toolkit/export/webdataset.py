"""The ``webdataset`` format: tar shards with one sample per key.

Layout of ``OUT``:

* ``<split>-000000.tar``, ``<split>-000001.tar``, …: each split's samples, in the order the
  first feature stores them, cut into tars of at most ``max_samples`` samples and about
  ``max_bytes`` bytes (a tar always holds at least one sample);
* in a tar, each sample is consecutive members sharing a key: ``<key>.json`` (``sample_id``,
  ``split``, ``music_id``, and per feature its ``shape`` ``[T, D]`` and ``timestamps_s``), then
  ``<key>.<feature>.npy`` per feature: float16, shape (T, D), the vectors as stored.

The ``webdataset`` library splits a member name at the first dot of its base name (key before,
extension after), and sample ids may hold dots; so the key is the id with each ``.`` written
``%2E`` (``%`` never occurs in an id, so :func:`sample_id_of` inverts it exactly); the json
holds the id itself. Members have fixed owners, modes and times, so the same export gives the
same bytes.

A tar is written to a hidden ``.<name>.tmp``, fsynced, then renamed into place: a tar present
is complete; a re-run keeps it and rewrites the one a killed run left unfinished.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svm_toolkit.export.source import FeatureSource, Sample, Steps
from svm_toolkit.io.atomic import atomic_path
from svm_toolkit.progress import Progress
from svm_toolkit.schema import Split

logger = logging.getLogger(__name__)

#: Per-member overhead counted toward a tar's size bound: a header block and padding, bytes.
_MEMBER_BYTES = 1024


@dataclass(frozen=True, slots=True)
class TarPlan:
    """One tar of the export.

    Attributes:
        name: its file name, ``<split>-NNNNNN.tar``.
        samples: its samples, in order.
        nbytes: the estimated size, bytes.
    """

    name: str
    samples: tuple[Sample, ...]
    nbytes: int


def sample_key(sample_id: str) -> str:
    """The member key of a sample: its id with ``.`` written ``%2E`` (keys hold no dot).

    Example:
        >>> sample_key("clip.v2")
        'clip%2Ev2'
    """
    return sample_id.replace(".", "%2E")


def sample_id_of(key: str) -> str:
    """The sample id of a member key (inverse of :func:`sample_key`)."""
    return key.replace("%2E", ".")


def tar_name(split: str, index: int) -> str:
    """``<split>-<index:06d>.tar``, the brace pattern ``<split>-{000000..NNNNNN}.tar`` reads."""
    return f"{split}-{index:06d}.tar"


def plan_tars(
    samples: Sequence[Sample],
    sources: Mapping[str, FeatureSource],
    *,
    max_samples: int,
    max_bytes: int,
) -> list[TarPlan]:
    """Cut each split's samples into tars bounded by samples and estimated bytes.

    Deterministic: the same samples and bounds give the same tars, which is what lets a re-run
    keep the tars a killed run finished.
    """
    plans: list[TarPlan] = []
    for split in [s.value for s in Split]:
        current: list[Sample] = []
        size = 0
        for sample in (s for s in samples if s.split == split):
            nbytes = _MEMBER_BYTES * (len(sources) + 1) + sum(
                source.nbytes(sample.sample_id) for source in sources.values()
            )
            if current and (len(current) >= max_samples or size + nbytes > max_bytes):
                plans.append(TarPlan(tar_name(split, _count(plans, split)), tuple(current), size))
                current, size = [], 0
            current.append(sample)
            size += nbytes
        if current:
            plans.append(TarPlan(tar_name(split, _count(plans, split)), tuple(current), size))
    return plans


def write_webdataset(
    out: Path,
    sources: Mapping[str, FeatureSource],
    plans: Sequence[TarPlan],
    *,
    read_bytes: int,
    bar: Progress,
) -> tuple[int, int, int]:
    """Write the tars of ``plans`` that are not in ``out`` yet.

    One pass over the features in storage order, ``read_bytes`` of vectors at a time, fills
    the tars of every split together (one open tar per split): memory holds one read, never a
    whole tar, and each feature is read once.

    Returns:
        ``(written, kept, bytes_written)``: tars written now, tars kept from an earlier run,
        bytes written.
    """
    for stale in out.glob(".*.tar.tmp"):  # a tar a killed run left unfinished
        stale.unlink()
    todo = [p for p in plans if not (out / p.name).exists()]
    bar.update(sum(len(p.samples) for p in plans) - sum(len(p.samples) for p in todo))
    plan_of = {s.sample_id: i for i, p in enumerate(todo) for s in p.samples}
    first = next(iter(sources.values()))
    order = sorted((s for p in todo for s in p.samples), key=lambda s: first.position(s.sample_id))
    open_tars: dict[int, _TarWriter] = {}
    nbytes = 0
    try:
        for chunk in _chunks(order, sources, read_bytes):
            ids = [s.sample_id for s in chunk]
            steps = {name: source.read(ids) for name, source in sources.items()}
            for sample in chunk:
                i = plan_of[sample.sample_id]
                if i not in open_tars:
                    open_tars[i] = _TarWriter(out / todo[i].name, len(todo[i].samples))
                writer = open_tars[i]
                _add_sample(writer.tar, sample, {n: s[sample.sample_id] for n, s in steps.items()})
                bar.update(1)
                writer.left -= 1
                if not writer.left:
                    nbytes += open_tars.pop(i).commit()
    finally:
        for writer in open_tars.values():
            writer.discard()
    return len(todo), len(plans) - len(todo), nbytes


class _TarWriter:
    """A tar being filled under a hidden temp name; :meth:`commit` renames it into place."""

    def __init__(self, path: Path, samples: int) -> None:
        self.path = path
        self.left = samples
        self._write = contextlib.ExitStack()  # the atomic write, open until commit or discard
        self.tmp = self._write.enter_context(atomic_path(path))
        self.file = self.tmp.open("wb")
        self.tar = tarfile.TarFile(fileobj=self.file, mode="w", format=tarfile.PAX_FORMAT)

    def commit(self) -> int:
        """Close the tar, then fsync and rename it into place; return its size, bytes."""
        self.tar.close()
        self.file.close()
        self._write.close()
        logger.debug("%s: written", self.path)
        return self.path.stat().st_size

    def discard(self) -> None:
        """Drop an unfinished tar (an error stopped the export)."""
        self.file.close()
        self._write.pop_all()  # never renamed into place
        self.tmp.unlink(missing_ok=True)


def _chunks(
    samples: Sequence[Sample], sources: Mapping[str, FeatureSource], read_bytes: int
) -> Iterator[list[Sample]]:
    """Consecutive runs of ``samples`` holding about ``read_bytes`` of vectors (at least one)."""
    chunk: list[Sample] = []
    size = 0
    for sample in samples:
        chunk.append(sample)
        size += sum(source.nbytes(sample.sample_id) for source in sources.values())
        if size >= read_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _add_sample(tar: tarfile.TarFile, sample: Sample, steps: Mapping[str, Steps]) -> None:
    key = sample_key(sample.sample_id)
    _add(tar, f"{key}.json", _json(sample, steps))
    for name, s in steps.items():
        buffer = io.BytesIO()
        np.save(buffer, s.values, allow_pickle=False)
        _add(tar, f"{key}.{name}.npy", buffer.getvalue())


def _json(sample: Sample, steps: Mapping[str, Steps]) -> bytes:
    record = {
        "sample_id": sample.sample_id,
        "split": sample.split,
        "music_id": sample.music_id,
        "features": {
            name: {"shape": list(s.values.shape), "timestamps_s": s.times_s.tolist()}
            for name, s in steps.items()
        },
    }
    return json.dumps(record, sort_keys=True).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _count(plans: Sequence[TarPlan], split: str) -> int:
    return sum(1 for p in plans if p.name.startswith(f"{split}-"))
