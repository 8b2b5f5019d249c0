from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.testing.pairs import PairsSpec, write_pairs
from svm_toolkit.train.bank import FeatureBank
from svm_toolkit.train.data import PairedData, load_pairs

SPEC = PairsSpec(pairs=40, songs=30, steps=6, audio_steps=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"), SPEC)


def test_bank_reads_every_step_in_row_order(dataset: Path) -> None:
    directory = DatasetLayout(dataset).features_dir(SPEC.video)
    bank = FeatureBank.from_shards(directory)
    shards = sorted(directory.glob("part-*.parquet"))
    assert len(shards) == 2
    table = pq.read_table(shards)
    assert bank.sample_ids == tuple(table.column("sample_id").to_pylist())
    assert bank.values.shape == (40 * 6, SPEC.video_dim)
    first = np.asarray(table.column("embeddings")[0].as_py(), dtype=np.float16)
    np.testing.assert_array_equal(bank.values[:6], first)
    np.testing.assert_array_equal(bank.offsets[:3], [0, 6, 12])
    np.testing.assert_array_equal(bank.durations(), np.full(40, 6.0))


def test_pairs_from_a_memory_mapped_cache_stay_mapped(dataset: Path, tmp_path: Path) -> None:
    data = load_pairs(dataset, audio=SPEC.audio, video=SPEC.video, cache=tmp_path)
    assert isinstance(data.video.values, np.memmap) and isinstance(data.audio.values, np.memmap)
    memory = load_pairs(dataset, audio=SPEC.audio, video=SPEC.video)
    rows = np.arange(5)
    x, mask = (
        data.batch(rows, np.zeros(5), 4.0).video,
        data.batch(rows, np.zeros(5), 4.0).video_mask,
    )
    np.testing.assert_array_equal(x, memory.batch(rows, np.zeros(5), 4.0).video)
    assert mask.all()


def test_memory_mapped_cache_equals_in_memory(dataset: Path, tmp_path: Path) -> None:
    directory = DatasetLayout(dataset).features_dir(SPEC.video)
    memory = FeatureBank.from_shards(directory)
    first = FeatureBank.from_shards(directory, cache=tmp_path)
    again = FeatureBank.from_shards(directory, cache=tmp_path)  # read back from the cache
    assert isinstance(again.values, np.memmap)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    for bank in (first, again):
        assert bank.sample_ids == memory.sample_ids
        np.testing.assert_array_equal(bank.values, memory.values)
        np.testing.assert_array_equal(bank.offsets, memory.offsets)
        np.testing.assert_array_equal(bank.times_s, memory.times_s)


def test_windows_take_overlapping_steps_and_pad(dataset: Path) -> None:
    bank = FeatureBank.from_shards(DatasetLayout(dataset).features_dir(SPEC.video))
    rows = np.array([0, 1, 2])
    x, mask = bank.window(rows, np.array([0.0, 2.5, 5.0]), 3.0)
    # row 0: steps at 0, 1, 2; row 1: 2 (covers 2.5), 3, 4, 5 (starts before 5.5); row 2: 5
    np.testing.assert_array_equal(mask.sum(axis=1), [3, 4, 1])
    assert x.shape == (3, 4, SPEC.video_dim) and x.dtype == np.float32
    np.testing.assert_array_equal(x[1], bank.values[6 + 2 : 6 + 6].astype(np.float32))
    assert not x[0, 3].any() and not x[2, 1:].any()  # padding is zero


def test_a_single_clip_level_step_is_in_every_window(dataset: Path) -> None:
    bank = FeatureBank.from_shards(DatasetLayout(dataset).features_dir(SPEC.audio))
    x, mask = bank.window(np.array([0, 1]), np.array([0.0, 4.0]), 2.0)
    assert mask.tolist() == [[True], [True]]
    np.testing.assert_array_equal(x[:, 0], bank.values[:2].astype(np.float32))


def test_pairs_carry_splits_songs_and_groups(dataset: Path) -> None:
    data = load_pairs(dataset, audio=SPEC.audio, video=SPEC.video)
    assert len(data.sample_ids) == 40 and data.dropped == {}
    assert data.sample_ids == tuple(sorted(data.sample_ids))
    for bank, rows in ((data.video, data.video_rows), (data.audio, data.audio_rows)):
        assert [bank.sample_ids[r] for r in rows] == list(data.sample_ids)
    np.testing.assert_array_equal(
        data.steps("audio", np.array([3]))[0], data.audio.values[data.audio_rows[3]][None]
    )
    assert sum(len(data.rows(s)) for s in ("train", "val", "test")) == 40
    # pairs 0 and 30 share song 0: one group, one split
    assert data.music_ids[0] == data.music_ids[30] == "song000000"
    assert data.groups[0] == data.groups[30] == 0 and data.groups[1] == 1
    assert data.splits[0] == data.splits[30]
    starts = data.random_starts(data.rows("train"), 4.0, np.random.default_rng(0))
    assert ((starts >= 0) & (starts <= 2.0)).all()
    np.testing.assert_array_equal(data.centre_starts(np.array([0]), 4.0), [1.0])


def test_missing_features_and_splits_are_clear_errors(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no features of 'resnet50' yet; run `svm extract"):
        load_pairs(dataset, audio=SPEC.audio, video="resnet50")
    copy = write_pairs(tmp_path / "nosplits", PairsSpec(pairs=8))
    DatasetLayout(copy).splits.unlink()
    with pytest.raises(InputError, match="no splits; make them with `svm splits make"):
        load_pairs(copy, audio="synthetic_audio", video="synthetic_video")


def test_youtube8m_frame_features_pair_and_train(tmp_path: Path) -> None:
    from svm_toolkit.demo.yt8m import run_yt8m_demo
    from svm_toolkit.splits import SplitConfig, make_splits
    from svm_toolkit.train.config import ModelConfig, TrainConfig
    from svm_toolkit.train.trainer import train

    dataset = tmp_path / "dataset"
    run_yt8m_demo(tmp_path)  # frame-level TFRecords -> features/yt8m_rgb, features/yt8m_audio
    make_splits(dataset, SplitConfig(ratios=(0.6, 0.2, 0.2)))
    data = load_pairs(dataset, audio="yt8m_audio", video="yt8m_rgb")
    assert data.video.dim == 1024 and data.audio.dim == 128
    assert len(data.sample_ids) > 20 and (np.diff(data.video.offsets) > 1).all()  # per second
    config = TrainConfig(
        audio="yt8m_audio",
        video="yt8m_rgb",
        model=ModelConfig(width=16, embed_dim=8, heads=2),
        epochs=1,
        batch_size=8,
        window_s=30.0,
        device="cpu",
    )
    assert train(dataset, config, tmp_path / "run").epochs == 1


def _bank(name: str, lengths: list[int], step_s: float, dim: int = 3) -> FeatureBank:
    """A bank whose step j of sample i holds the value j (so a window's steps can be read)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    steps = np.concatenate([np.arange(n) for n in lengths])
    values = np.repeat(steps[:, None], dim, axis=1).astype(np.float16)
    times = (steps * step_s).astype(np.float32)
    ids = tuple(f"s{i}" for i in range(len(lengths)))
    return FeatureBank(name, ids, values, offsets, times, step_s)


def _paired(video: FeatureBank, audio: FeatureBank) -> PairedData:
    n = len(video.sample_ids)
    rows = np.arange(n, dtype=np.int64)
    return PairedData(
        video.sample_ids,
        video,
        audio,
        rows,
        rows,
        ("train",) * n,
        (None,) * n,
        rows.copy(),
        {},
    )


def test_a_one_step_music_descriptor_leaves_every_crop_all_video_steps() -> None:
    # vmnet_music: one step that declares 29.12 s; an 8 s video at 1 fps has 8 steps
    data = _paired(_bank("video", [8] * 6, 1.0), _bank("audio", [1] * 6, 29.12))
    rows = np.arange(6, dtype=np.int64)
    np.testing.assert_array_equal(data.durations(rows), np.full(6, 8.0))
    rng = np.random.default_rng(0)
    for window_s in (8.0, 12.0, 30.0):
        for _ in range(20):
            starts = data.random_starts(rows, window_s, rng)
            batch = data.batch(rows, starts, window_s)
            assert batch.video_mask.sum(axis=1).tolist() == [8] * 6
            np.testing.assert_array_equal(batch.video[:, :, 0], np.tile(np.arange(8), (6, 1)))
            assert batch.audio_mask.sum(axis=1).tolist() == [1] * 6
        centre = data.batch(rows, data.centre_starts(rows, window_s), window_s)
        assert centre.video_mask.sum(axis=1).tolist() == [8] * 6


def test_shorter_crops_stay_inside_the_video() -> None:
    data = _paired(_bank("video", [8, 5], 1.0), _bank("audio", [1, 1], 29.12))
    rows = np.arange(2, dtype=np.int64)
    starts = data.random_starts(np.tile(rows, 200), 4.0, np.random.default_rng(1))
    assert starts[::2].max() <= 4.0 and starts[1::2].max() <= 1.0
    mask = data.batch(np.tile(rows, 200), starts, 4.0).video_mask
    assert set(mask.sum(axis=1).tolist()) <= {4, 5}  # 4 s: 4 steps, 5 when it starts mid-step
    np.testing.assert_array_equal(data.centre_starts(rows, 4.0), [2.0, 0.5])


def test_windows_cover_the_right_steps_of_both_modalities() -> None:
    # a 3 s clip: video at 1 fps (3 steps), audio at 0.5 s steps (6 steps); and a clip
    # shorter than one video step (0.5 s of video, one 1 s step) with one audio step.
    data = _paired(_bank("video", [3, 1], 1.0), _bank("audio", [6, 1], 0.5))
    rows = np.arange(2, dtype=np.int64)
    np.testing.assert_array_equal(data.durations(rows), [3.0, 1.0])
    batch = data.batch(rows[:1], np.array([0.5]), 2.0)  # [0.5, 2.5)
    assert batch.video[0, :, 0].tolist() == [0, 1, 2]  # steps 0 (covers 0.5), 1, 2
    assert batch.audio[0, : int(batch.audio_mask[0].sum()), 0].tolist() == [1, 2, 3, 4]
    batch = data.batch(rows[:1], data.centre_starts(rows[:1], 1.0), 1.0)  # [1.0, 2.0)
    assert batch.video[0, :1, 0].tolist() == [1] and batch.video_mask[0].sum() == 1
    assert batch.audio[0, :2, 0].tolist() == [2, 3] and batch.audio_mask[0].sum() == 2
    one = data.batch(rows[1:], data.random_starts(rows[1:], 4.0, np.random.default_rng(0)), 4.0)
    assert one.video_mask.sum() == 1 and one.audio_mask.sum() == 1
