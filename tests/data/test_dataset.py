"""svm_toolkit.data: the PyTorch Dataset, its collate, and the one join the trainer uses too."""

from __future__ import annotations

import functools
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch

import svm_toolkit
import svm_toolkit.data
from svm_toolkit.data import FeatureDataset, JoinedFeatures, collate, join_features
from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardLimits, ShardWriter, shard_path
from svm_toolkit.schema import COL, feature_schema, with_provenance
from svm_toolkit.testing.pairs import PairsSpec, write_pairs
from svm_toolkit.train.data import load_pairs

VIDEO, AUDIO, RAGGED = "efficientnet_lite0", "vggish", "ragged"
SPEC = PairsSpec(
    pairs=24, songs=16, steps=4, audio_steps=1, video_dim=12, audio_dim=6, video=VIDEO, audio=AUDIO
)
README = Path(__file__).resolve().parents[2] / "README.md"


def write_steps(directory: Path, name: str, steps: dict[str, np.ndarray]) -> None:
    """One more shard of ``name``'s features: each sample's (T, D) steps, 0.5 s apart."""
    dim = next(iter(steps.values())).shape[1]
    schema = with_provenance(
        feature_schema(dim, sequence=True),
        "extract",
        extractor=name,
        input_contract={"modality": "synthetic", "dim": dim, "step_s": 0.5},
    )
    lengths = np.array([len(v) for v in steps.values()])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    flat = np.concatenate(list(steps.values())).astype(np.float16)
    times = np.concatenate([0.5 * np.arange(n) for n in lengths])
    table = pa.table(
        {
            COL.sample_id: list(steps),
            COL.embeddings: pa.ListArray.from_arrays(
                offsets, pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), dim)
            ),
            COL.timestamps_s: pa.ListArray.from_arrays(offsets, pa.array(times, pa.float32())),
        },
        schema=schema,
    )
    limits = ShardLimits(vector_columns=(COL.embeddings,))
    with ShardWriter(directory, "part", schema, status_column=None, limits=limits) as writer:
        writer.write(table)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 pairs (16 songs) named like the README's features, and a ragged third feature."""
    root = write_pairs(tmp_path_factory.mktemp("data") / "my_dataset", SPEC)
    rng = np.random.default_rng(1)
    ids = [f"pair{i:06d}" for i in range(SPEC.pairs)]
    write_steps(
        DatasetLayout(root).features_dir(RAGGED),
        RAGGED,
        {s: rng.standard_normal((1 + i % 5, 3)) for i, s in enumerate(ids)},
    )
    return root


def examples() -> list[str]:
    """The README example (the module docstring's), and README.md's copies once it has them."""
    doc = svm_toolkit.data.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\n* ", 1)[0]
    found = [textwrap.dedent(block).strip()]
    if README.exists():
        found += [
            code
            for code in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
            if "from svm_toolkit.data import FeatureDataset" in code
        ]
    return found


@pytest.mark.parametrize("code", examples())
def test_the_readme_example_runs_verbatim_with_a_dataloader(
    code: str, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(code.splitlines()) <= 12
    monkeypatch.chdir(dataset.parent)  # the example's "my_dataset"
    seen: dict[str, Any] = {}
    exec(compile(code, "README example", "exec"), seen)
    video, mask, music = seen["video"], seen["mask"], seen["music"]
    assert video.dtype == torch.float32 and video.shape[1:] == (SPEC.steps, SPEC.video_dim)
    assert mask.dtype == torch.bool and mask.shape == video.shape[:2] and bool(mask.all())
    assert music.shape[1:] == (1, SPEC.audio_dim)
    assert seen["video_clip"].shape == (len(video), SPEC.video_dim)
    positives = seen["positives"]
    assert positives.dtype == torch.bool and bool(positives.diagonal().all())
    assert seen["train"].split == "train" and len(seen["loader"]) >= 1


def test_items_keep_float16_and_collate_pads_ragged_steps_with_masks(dataset: Path) -> None:
    data = FeatureDataset(dataset, features=(VIDEO, RAGGED), split=None)
    assert len(data) == SPEC.pairs and data.dims == {VIDEO: 12, RAGGED: 3}
    item = data[3]
    assert item["sample_id"] == "pair000003" == data.sample_ids[3]
    assert item[RAGGED].dtype == torch.float16 and item[RAGGED].shape == (4, 3)
    assert item[f"{RAGGED}_times_s"].tolist() == [0.0, 0.5, 1.0, 1.5]
    assert item[VIDEO].dtype == torch.float16 and item[VIDEO].shape == (4, 12)
    items = [data[i] for i in (0, 3, 4)]  # 1, 4 and 5 steps
    batch = collate(items)
    x, mask = batch[RAGGED], batch[f"{RAGGED}_mask"]
    assert x.dtype == torch.float32 and x.shape == (3, 5, 3)
    assert mask.sum(1).tolist() == [1, 4, 5]
    for row, item in enumerate(items):
        n = len(item[RAGGED])
        torch.testing.assert_close(x[row, :n], item[RAGGED].float(), rtol=0, atol=0)
        assert not x[row, n:].any() and not batch[f"{RAGGED}_times_s"][row, n:].any()
    assert batch["sample_id"] == ["pair000000", "pair000003", "pair000004"]
    assert batch["group"].dtype == torch.int64 and batch["group"].shape == (3,)
    half = functools.partial(collate, dtype=torch.float16)(items)
    assert half[RAGGED].dtype == torch.float16 and torch.equal(half[RAGGED].float(), x)
    with pytest.raises(ValueError, match="keys"):
        collate([items[0], {"sample_id": "x"}])


def test_splits_groups_and_one_join_shared_by_two_datasets(dataset: Path) -> None:
    joined = join_features(dataset, (VIDEO, AUDIO))
    parts = {s: FeatureDataset(joined, (VIDEO, AUDIO), s) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == SPEC.pairs
    assert all(p.joined is joined for p in parts.values())
    for name, part in parts.items():
        assert all(part[i]["split"] == name for i in range(len(part)))
    # pairs 0 and 16 share song 0: one group, one split
    everyone = FeatureDataset(joined, (AUDIO,))
    assert everyone[0]["music_id"] == everyone[16]["music_id"] == "song000000"
    assert everyone[0]["group"] == everyone[16]["group"] != everyone[1]["group"]
    assert everyone[0]["split"] == everyone[16]["split"]
    np.testing.assert_array_equal(everyone.groups, joined.groups)
    assert set(everyone[0]) == {"sample_id", "split", "music_id", "group", AUDIO, "vggish_times_s"}


def test_the_trainer_loads_through_the_same_join(dataset: Path) -> None:
    pairs = load_pairs(dataset, audio=AUDIO, video=VIDEO)
    data = FeatureDataset(dataset, (VIDEO, AUDIO))
    assert pairs.sample_ids == data.sample_ids and pairs.splits == data.joined.splits
    np.testing.assert_array_equal(pairs.groups, data.groups)
    steps, lengths = pairs.steps("video", np.array([5]))
    assert torch.equal(data[5][VIDEO], torch.from_numpy(steps))
    assert lengths.tolist() == [SPEC.steps]


def test_newest_rows_win_and_uncommitted_shards_do_not_count(dataset: Path, tmp_path: Path) -> None:
    import shutil

    root = shutil.copytree(dataset, tmp_path / "copy")
    directory = DatasetLayout(root).features_dir(RAGGED)
    write_steps(directory, RAGGED, {"pair000002": np.full((2, 3), 7.0)})  # a re-extraction
    stray = shard_path(directory, "part", 99)  # a shard no writer committed (no stats)
    stray.write_bytes(next(directory.glob("part-*.parquet")).read_bytes())
    data = FeatureDataset(root, (RAGGED,))
    assert len(data) == SPEC.pairs  # once each
    item = data[2]
    assert item["sample_id"] == "pair000002" and item[RAGGED].tolist() == [[7.0] * 3] * 2


def test_clear_errors(dataset: Path) -> None:
    with pytest.raises(ConfigError, match="use one of train, val, test"):
        FeatureDataset(dataset, (VIDEO,), "training")
    with pytest.raises(ConfigError, match="collide with item keys"):
        FeatureDataset(dataset, ("group",))
    with pytest.raises(ConfigError, match="each once"):
        join_features(dataset, (VIDEO, VIDEO))
    with pytest.raises(InputError, match=r"no features of 'resnet50' yet; run `svm extract"):
        FeatureDataset(dataset, (VIDEO, "resnet50"))
    joined = join_features(dataset, (VIDEO,))
    with pytest.raises(ConfigError, match="not \\['vggish'\\]"):
        FeatureDataset(joined, (AUDIO,))
    assert isinstance(joined, JoinedFeatures) and joined.features == (VIDEO,)


def test_exported_from_the_package() -> None:
    assert svm_toolkit.FeatureDataset is FeatureDataset and svm_toolkit.collate is collate
    assert callable(svm_toolkit.read_mel) and svm_toolkit.join_features is join_features
    assert issubclass(FeatureDataset, torch.utils.data.Dataset)
