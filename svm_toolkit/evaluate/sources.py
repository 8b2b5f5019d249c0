"""Where evaluated embeddings come from: a trained run, two extractors' raw features, or a file.

A run embeds its dataset's split with its best model (``best.pt``) on the same centred windows
as its validation. Raw features are scored as they are (zero-shot): each sample's steps are
averaged and L2-normalised, which only makes sense when both extractors embed into one space
(ImageBind's audio and vision heads, 1024-d each). A file holds any model's embeddings
(:data:`FILE_COLUMNS`), so a new method is scored by exactly the same protocol.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import InputError
from svm_toolkit.evaluate.protocol import PairedEmbeddings
from svm_toolkit.io.atomic import read_json
from svm_toolkit.io.checked import read_table
from svm_toolkit.schema import COL
from svm_toolkit.train.checkpoint import RunFiles
from svm_toolkit.train.data import PairedData, load_pairs

#: Columns of an embeddings file: one row per test pair.
FILE_COLUMNS = (COL.sample_id, "video", "music")


def file_embeddings(path: Path) -> PairedEmbeddings:
    """Read any model's embeddings of the test pairs from Parquet.

    One row per pair: ``sample_id``, ``video`` and ``music`` (float lists of one length D) and
    optionally ``music_id``; each vector is L2-normalised here.

    Raises:
        InputError: not Parquet (or damaged), an unsafe sample id, a missing column, unequal
            lengths or a non-finite value (the message names the file, the row and what to fix).
    """
    table = read_table(path)  # a damaged file or an unsafe id: InputError naming the row
    missing = [c for c in FILE_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(
            f"{path}: no column(s) {missing}; an embeddings file needs sample_id, video and "
            "music (float lists of one length), and may have music_id"
        )
    sides = {}
    for side in ("video", "music"):
        rows = table.column(side).to_pylist()
        lengths = {len(r) if r is not None else 0 for r in rows}
        if len(lengths) != 1 or 0 in lengths:
            bad = next(i for i, r in enumerate(rows) if r is None or len(r) != len(rows[0] or []))
            raise InputError(
                f"{path}: row {bad}: '{side}' must be a non-empty float list of the same length "
                "in every row"
            )
        values = np.asarray(rows, dtype=np.float32)
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
            raise InputError(f"{path}: row {bad}: '{side}' holds NaN or inf")
        sides[side] = values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)
    songs = table.column(COL.music_id).to_pylist() if COL.music_id in table.column_names else None
    n = table.num_rows
    try:
        return PairedEmbeddings(
            tuple(table.column(COL.sample_id).to_pylist()),
            sides["video"],
            sides["music"],
            tuple(str(s) if s is not None else None for s in songs) if songs else (None,) * n,
        )
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


def run_dataset(run: Path) -> Path:
    """The dataset a run was trained on, as its ``config.json`` records it.

    A relative path (what ``svm train`` records) is relative to the run folder, so a run copied
    or moved together with its dataset finds it; an absolute one (older runs) is taken as is.

    Raises:
        InputError: no dataset recorded, or none where the record points (``--dataset`` fixes
            both).
    """
    config = RunFiles(run).config
    recorded = read_json(config).get("dataset")
    if not recorded:
        raise InputError(f"{config}: no dataset recorded; pass --dataset DATASET")
    path = Path(recorded)
    dataset = path if path.is_absolute() else Path(run) / path
    if not dataset.is_dir():
        raise InputError(
            f"{config}: the run's dataset '{recorded}' is not at {dataset}; pass --dataset "
            "DATASET (copy a run together with its dataset to keep them together)"
        )
    return dataset


def run_embeddings(
    run: Path, *, split: str, dataset: Path | None = None, device: str = "cpu"
) -> PairedEmbeddings:
    """Embed one split of the run's dataset with the run's best model.

    Raises:
        InputError: no such run, or the split has no pairs.
    """
    from svm_toolkit.train.trainer import load_run, paired_embeddings

    if not RunFiles(run).config.exists():
        raise InputError(f"{run}: not a run folder (no config.json); train one with `svm train`")
    config, model = load_run(run, device)
    cache = RunFiles(run).cache  # features the run memory-mapped (--mmap) stay mapped
    data = load_pairs(
        dataset or run_dataset(run),
        audio=config.audio,
        video=config.video,
        cache=cache if cache.exists() else None,
    )
    rows = data.rows(split)
    if len(rows) < 2:
        raise InputError(f"{run}: the {split} split has {len(rows)} pairs; at least 2 are needed")
    return paired_embeddings(model, data, rows, config, device)


def raw_embeddings(dataset: Path, *, audio: str, video: str, split: str) -> PairedEmbeddings:
    """The mean of each sample's steps, L2-normalised, for zero-shot scoring.

    Raises:
        InputError: the two extractors' dimensions differ (not one embedding space), or the
            split has fewer than 2 pairs.
    """
    data = load_pairs(dataset, audio=audio, video=video)
    if data.video.dim != data.audio.dim:
        raise InputError(
            f"zero-shot scoring compares {video} ({data.video.dim}-d) with {audio} "
            f"({data.audio.dim}-d) directly, which needs one embedding space (ImageBind: "
            f"imagebind_vision + imagebind_audio); train a model instead: "
            f"`svm train {dataset} --audio {audio} --video {video}`"
        )
    rows = data.rows(split)
    if len(rows) < 2:
        raise InputError(
            f"{dataset}: the {split} split has {len(rows)} pairs; at least 2 are needed"
        )
    return PairedEmbeddings(
        tuple(data.sample_ids[i] for i in rows),
        _pooled(data, "video", rows),
        _pooled(data, "audio", rows),
        tuple(data.music_ids[i] for i in rows),
    )


def _pooled(data: PairedData, side: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """float32 (len(rows), D): mean of each pair's steps on one side, unit length."""
    steps, lengths = data.steps(side, rows)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.add.reduceat(steps.astype(np.float32), starts, axis=0) / lengths[:, None]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)
