"""Where evaluated embeddings come from: a trained run, or two extractors' raw features.

A run embeds its dataset's split with its best model (``best.pt``) on the same centred windows
as its validation. Raw features are scored as they are (zero-shot): each sample's steps are
averaged and L2-normalised, which only makes sense when both extractors embed into one space
(ImageBind's audio and vision heads, 1024-d each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import InputError
from svm_toolkit.evaluate.protocol import PairedEmbeddings
from svm_toolkit.train.checkpoint import RunFiles, read_json
from svm_toolkit.train.data import PairedData, load_pairs


def run_dataset(run: Path) -> Path:
    """The dataset a run was trained on (recorded in its ``config.json``)."""
    recorded = read_json(RunFiles(run).config).get("dataset")
    if not recorded:
        raise InputError(f"{RunFiles(run).config}: no dataset recorded; pass --dataset")
    return Path(recorded)


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
    out = np.stack([data.steps(side, int(row)).astype(np.float32).mean(axis=0) for row in rows])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)
