"""``svm extract`` end to end with the offline defaults: outputs, batching, resume, failures."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from svm_toolkit.errors import ConfigError, InputError, MissingWeightsError
from svm_toolkit.extract.config import DEFAULT_BATCH_SIZE, ExtractConfig
from svm_toolkit.extract.precision import resolve_precision
from svm_toolkit.extract.runner import ledger_prefix, run_extract
from svm_toolkit.io.shards import committed_shards, read_shards, stats_path
from svm_toolkit.preprocess import run_preprocess
from svm_toolkit.schema import COL, read_provenance
from tests.preprocess.test_stage import CONFIG as PREPROCESS
from tests.preprocess.test_stage import make_dataset

CONFIG = ExtractConfig(device="cpu", workers=1, batch_size=5)
NAMES = ("efficientnet_lite0", "vmnet_music")


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_dataset(tmp_path_factory.mktemp("extract"))
    run_preprocess(root, PREPROCESS)
    return root


def copy(root: Path, to: Path) -> Path:
    shutil.copytree(root, to, ignore=shutil.ignore_patterns("features", "extract_*"))
    return to


def features(root: Path, name: str) -> dict[str, dict[str, object]]:
    table = read_shards(root / "features" / name, "part")
    assert table is not None
    return {r[COL.sample_id]: r for r in table.to_pylist()}


def statuses(root: Path, name: str) -> dict[str, str]:
    table = read_shards(root / "ledger", ledger_prefix(name), columns=[COL.status])
    assert table is not None
    return dict(zip(table[COL.sample_id].to_pylist(), table[COL.status].to_pylist(), strict=True))


@pytest.fixture(scope="module")
def done(preprocessed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy(preprocessed, tmp_path_factory.mktemp("done") / "ds")
    summary = run_extract(root, CONFIG)
    assert summary.attempted == len(statuses(root, NAMES[0]))
    return root


def test_every_ok_video_gets_features_with_times_and_a_pooled_vector(done: Path) -> None:
    ok = {k for k, s in statuses(done, "efficientnet_lite0").items() if s == "ok"}
    assert ok and ok == {k for k, s in statuses(done, "vmnet_music").items() if s == "ok"}
    visual, audio = features(done, "efficientnet_lite0"), features(done, "vmnet_music")
    assert set(visual) == set(audio) == ok
    for sample_id in ok:
        row = visual[sample_id]
        steps = np.asarray(row[COL.embeddings], np.float32)
        assert steps.shape == (4, 1280)  # 4 s at 1 fps
        assert row[COL.timestamps_s] == [0.0, 1.0, 2.0, 3.0]
        pooled = np.asarray(row[COL.embedding], np.float32)
        mean = steps.mean(axis=0)
        np.testing.assert_allclose(pooled, mean / np.linalg.norm(mean), atol=2e-3)
        assert np.asarray(audio[sample_id][COL.embeddings]).shape == (1, 1140)


def test_shards_carry_provenance_and_vector_encodings(done: Path) -> None:
    shard = committed_shards(done / "features" / "efficientnet_lite0", "part")[0]
    meta = read_provenance(pq.read_schema(shard))
    assert meta["extractor"] == "efficientnet_lite0" and len(meta["weights_sha256"]) == 64
    assert meta["input_contract"]["dim"] == 1280 and meta["stage"] == "extract"
    columns = pq.ParquetFile(shard).metadata.row_group(0)
    for i in range(columns.num_columns):
        column = columns.column(i)
        vector = column.path_in_schema.startswith(("embeddings.", "embedding."))
        assert "BYTE_STREAM_SPLIT" not in column.encodings  # DuckDB cannot read it for float16
        assert ("RLE_DICTIONARY" not in column.encodings) or not vector
        assert not (vector and column.is_stats_set)
        assert column.is_stats_set or column.path_in_schema != COL.sample_id
        assert column.compression == "ZSTD"
    assert json.loads(stats_path(shard).read_text())["rows"] == pq.read_metadata(shard).num_rows
    frame = pq.read_table(shard).to_pandas()
    assert len(frame.iloc[0][COL.embedding]) == 1280


def test_hugging_face_datasets_reads_the_shards_as_they_are(
    done: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")  # a dev dependency: never skipped in CI
    shards = [str(p) for p in committed_shards(done / "features" / "efficientnet_lite0", "part")]
    loaded = datasets.load_dataset(
        "parquet", data_files=shards, split="train", cache_dir=str(tmp_path)
    )
    assert loaded.num_rows == len(features(done, "efficientnet_lite0"))
    assert str(loaded.features[COL.embedding]) == "List(Value('float16'), length=1280)"
    row = loaded.with_format("numpy")[0]
    assert row[COL.embeddings].shape == (4, 1280)  # its numpy format widens float16 to float32
    expected = features(done, "efficientnet_lite0")[row[COL.sample_id]][COL.embedding]
    np.testing.assert_array_equal(row[COL.embedding], np.asarray(expected, np.float32))


def test_batches_mixing_videos_equal_one_video_at_a_time(done: Path, tmp_path: Path) -> None:
    root = copy(done, tmp_path / "ds")
    run_extract(root, dataclasses.replace(CONFIG, batch_size=1, extractors=(NAMES[0],)))
    mixed, single = features(done, NAMES[0]), features(root, NAMES[0])
    for sample_id, row in mixed.items():
        np.testing.assert_allclose(
            np.asarray(row[COL.embeddings], np.float32),
            np.asarray(single[sample_id][COL.embeddings], np.float32),
            atol=2e-3,
        )


def test_provenance_says_which_precision_ran_and_fp32_stays_close(
    done: Path, tmp_path: Path
) -> None:
    def meta(root: Path, name: str) -> dict[str, object]:
        return read_provenance(
            pq.read_schema(committed_shards(root / "features" / name, "part")[0])
        )

    auto = resolve_precision("auto", torch.device("cpu"))  # bf16 on CPUs that have it
    assert meta(done, NAMES[0])["precision"] == auto
    assert meta(done, NAMES[0])["config"]["precision"] == "auto"  # type: ignore[index]
    assert meta(done, "vmnet_music")["precision"] == "fp32"  # handcrafted: no network
    root = copy(done, tmp_path / "ds")
    run_extract(root, dataclasses.replace(CONFIG, precision="fp32", extractors=(NAMES[0],)))
    assert meta(root, NAMES[0])["precision"] == "fp32"
    for sample_id, row in features(root, NAMES[0]).items():
        a = np.asarray(row[COL.embeddings], np.float64)
        b = np.asarray(features(done, NAMES[0])[sample_id][COL.embeddings], np.float64)
        cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cosines.min() > 0.995  # bf16 rounding (1.0 when auto is fp32 here)


def test_the_batch_size_defaults_per_device() -> None:
    assert ExtractConfig().batch_size_on("cpu") == DEFAULT_BATCH_SIZE["cpu"] == 8
    assert ExtractConfig().batch_size_on("cuda:1") == DEFAULT_BATCH_SIZE["cuda"] == 64
    assert ExtractConfig(batch_size=5).batch_size_on("cuda") == 5


def test_a_killed_run_resumes_to_the_same_rows(done: Path, tmp_path: Path) -> None:
    root = copy(done, tmp_path / "ds")
    seen: list[str] = []

    def stop_after_one(sample_id: str) -> None:
        seen.append(sample_id)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_extract(root, CONFIG, on_video=stop_after_one)
    assert set(statuses(root, NAMES[0])) == set(seen)  # the finished video is committed
    resumed = run_extract(root, CONFIG)
    assert resumed.skipped == 1
    assert statuses(root, NAMES[0]) == statuses(done, NAMES[0])
    assert features(root, NAMES[1]).keys() == features(done, NAMES[1]).keys()
    assert run_extract(root, CONFIG).attempted == 0


def test_a_deleted_feature_shard_is_rebuilt_by_a_plain_rerun(done: Path, tmp_path: Path) -> None:
    root = shutil.copytree(done, tmp_path / "ds")
    shutil.rmtree(root / "features" / NAMES[0])
    ok = features(done, NAMES[0]).keys()
    again = run_extract(root, CONFIG)  # the ledger says ok, the features are gone: redone
    assert again.by_status == {f"{NAMES[0]} ok": len(ok)}  # the other extractor is kept
    assert features(root, NAMES[0]).keys() == ok
    kept = read_shards(root / "features" / NAMES[1], "part", columns=[], latest=False)
    assert kept is not None and kept.num_rows == len(features(done, NAMES[1]))
    assert run_extract(root, CONFIG).attempted == 0


def test_a_corrupt_video_is_a_status_among_good_ones(preprocessed: Path, tmp_path: Path) -> None:
    root = copy(preprocessed, tmp_path / "ds")
    good = sorted(k for k, s in _preprocess_statuses(root).items() if s == "ok")
    target = next((root / "media").rglob(f"{good[0]}.mp4"))
    target.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    run_extract(root, CONFIG)
    result = statuses(root, NAMES[0])
    assert result[good[0]] == "decode_error"
    assert all(result[k] == "ok" for k in good[1:])


def test_worker_processes_give_the_same_features(done: Path, tmp_path: Path) -> None:
    root = copy(done, tmp_path / "ds")
    run_extract(root, dataclasses.replace(CONFIG, workers=2))
    assert statuses(root, NAMES[0]) == statuses(done, NAMES[0])
    for name in NAMES:
        ours, theirs = features(root, name), features(done, name)
        for sample_id, row in theirs.items():
            np.testing.assert_allclose(
                np.asarray(ours[sample_id][COL.embeddings], np.float32),
                np.asarray(row[COL.embeddings], np.float32),
                atol=2e-3,
            )


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="svm preprocess"):
        run_extract(tmp_path, CONFIG)
    with pytest.raises(ConfigError, match="known: "):
        run_extract(tmp_path, dataclasses.replace(CONFIG, extractors=("nope",)))
    with pytest.raises(ConfigError, match=r"--retry ok: .*features"):  # features are kept
        run_extract(tmp_path, dataclasses.replace(CONFIG, retry=("ok",)))
    with pytest.raises(MissingWeightsError, match="resnet50"):
        run_extract(
            tmp_path,
            dataclasses.replace(
                CONFIG, extractors=("resnet50",), weights=(("resnet50", str(tmp_path / "x")),)
            ),
        )


def _preprocess_statuses(root: Path) -> dict[str, str]:
    table = read_shards(root / "ledger", "preprocess", columns=[COL.status])
    assert table is not None
    return dict(zip(table[COL.sample_id].to_pylist(), table[COL.status].to_pylist(), strict=True))


def test_fps_sets_the_frames_per_second_of_visual_features(done: Path, tmp_path: Path) -> None:
    root = copy(done, tmp_path / "ds")
    run_extract(root, dataclasses.replace(CONFIG, fps=2.0, extractors=(NAMES[0],)))
    for row in features(root, NAMES[0]).values():
        assert np.asarray(row[COL.embeddings]).shape == (8, 1280)  # 4 s at 2 fps
        assert row[COL.timestamps_s] == pytest.approx([i / 2 for i in range(8)], abs=1e-3)


def test_decoding_in_this_process_leaves_its_torch_threads_alone(
    done: Path, tmp_path: Path
) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        run_extract(copy(done, tmp_path / "ds"), CONFIG)  # workers=1: decoding runs here
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
