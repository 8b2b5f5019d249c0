"""``svm export``: round trips in both formats, the newest row per sample, kills and resumes."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.export import (
    INDEX_NAME,
    ExportConfig,
    export_dataset,
    npy_path,
    sample_id_of,
    sample_key,
)
from svm_toolkit.export.source import FeatureSource, Steps
from svm_toolkit.io.checked import read_table
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardLimits, ShardWriter, committed_shards, read_shards
from svm_toolkit.schema import COL, feature_schema, with_provenance
from svm_toolkit.testing.pairs import PairsSpec, write_pairs

SPEC = PairsSpec(pairs=36, songs=30, steps=5, audio_steps=1, video_dim=24, audio_dim=12)
FEATURES = (SPEC.video, SPEC.audio)
DOTTED = "pair.000001"  # ids may hold dots; the webdataset key may not
RETRIED = ("pair000002", "pair000003", DOTTED)


def _rewrite_id(path: Path, old: str, new: str) -> None:
    table = read_table(path)
    ids = [new if s == old else s for s in table.column(COL.sample_id).to_pylist()]
    index = table.schema.get_field_index(COL.sample_id)
    table = table.set_column(index, table.schema.field(index), pa.array(ids, pa.string()))
    pq.write_table(table, path)


def _retry(directory: Path, ids: tuple[str, ...], steps: int, seed: int) -> None:
    """Commit newer rows for ``ids`` in a new writer session, as ``svm extract --retry`` does."""
    first = committed_shards(directory, "part")[0]
    schema = pq.read_schema(first)
    dim = schema.field(COL.embedding).type.list_size
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((len(ids), steps, dim)).astype(np.float16)
    rows = [
        {
            COL.sample_id: sample_id,
            COL.embeddings: list(v),
            COL.timestamps_s: [float(t) for t in range(steps)],
            COL.embedding: v.mean(axis=0),
        }
        for sample_id, v in zip(ids, values, strict=True)
    ]
    limits = ShardLimits(vector_columns=(COL.embeddings, COL.embedding))
    with ShardWriter(directory, "part", schema, status_column=None, limits=limits) as writer:
        writer.write(rows)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Paired features written by the shard writer, one id with a dot, three samples retried."""
    root = write_pairs(tmp_path_factory.mktemp("export") / "ds", SPEC)
    layout = DatasetLayout(root)
    for path in (layout.manifest, layout.splits):
        _rewrite_id(path, "pair000001", DOTTED)
    for name, steps in ((SPEC.video, SPEC.steps + 2), (SPEC.audio, SPEC.audio_steps)):
        _retry(layout.features_dir(name), RETRIED, steps, seed=len(name))
    return root


def expected(root: Path, name: str) -> dict[str, tuple[np.ndarray, list[float]]]:
    """Each sample's newest committed row, read with the toolkit's own reader."""
    table = read_shards(DatasetLayout(root).features_dir(name), "part")
    assert table is not None
    out = {}
    for row in table.to_pylist():
        values = np.asarray(row[COL.embeddings], dtype=np.float16)
        out[row[COL.sample_id]] = values, row[COL.timestamps_s]
    return out


def splits(root: Path) -> dict[str, str]:
    table = pq.read_table(DatasetLayout(root).splits)
    return dict(zip(table["sample_id"].to_pylist(), table["split"].to_pylist(), strict=True))


def read_tars(out: Path) -> dict[str, dict[str, bytes]]:
    """Every sample of every tar, with the standard library: key -> {extension: bytes}."""
    samples: dict[str, dict[str, bytes]] = {}
    for path in sorted(out.glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                data = tar.extractfile(member)
                assert data is not None
                samples.setdefault(key, {})[ext] = data.read()
    return samples


def test_webdataset_round_trip_equals_the_newest_rows(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "wds"
    config = ExportConfig("webdataset", FEATURES, max_samples=5, read_bytes=700)  # 2-3 a read
    summary = export_dataset(dataset, out, config)
    split_of = splits(dataset)
    assert summary.samples == len(split_of) == SPEC.pairs and summary.kept == 0
    samples = read_tars(out)
    assert set(samples) == {sample_key(s) for s in split_of}
    assert sample_key(DOTTED) == "pair%2E000001" and "." not in sample_key(DOTTED)
    for name in FEATURES:
        want = expected(dataset, name)
        for key, members in samples.items():
            sample_id = sample_id_of(key)
            values = np.load(io.BytesIO(members[f"{name}.npy"]), allow_pickle=False)
            assert values.dtype == np.float16
            assert np.array_equal(values, want[sample_id][0])
            meta = json.loads(members["json"])
            assert meta["sample_id"] == sample_id and meta["split"] == split_of[sample_id]
            assert meta["features"][name]["shape"] == list(values.shape)
            assert meta["features"][name]["timestamps_s"] == want[sample_id][1]
    assert json.loads(samples[sample_key(DOTTED)]["json"])["music_id"] == "song000001"
    retried = np.load(io.BytesIO(samples["pair000002"][f"{SPEC.video}.npy"]))
    assert retried.shape == (SPEC.steps + 2, SPEC.video_dim)  # the retry's row, not the first
    # tars hold one split each, at most max_samples samples, members of a sample consecutive
    for path in out.glob("*.tar"):
        with tarfile.open(path) as tar:
            keys = [m.name.split(".", 1)[0] for m in tar.getmembers()]
        assert len(keys) == 3 * len(set(keys)) and len(set(keys)) <= 5
        assert keys == sorted(keys, key=keys.index)  # grouped
        assert {split_of[sample_id_of(k)] for k in keys} == {path.name.split("-")[0]}
    last = len(list(out.glob("train-*.tar"))) - 1
    assert summary.read_with[0] == str(out / f"train-{{000000..{last:06d}}}.tar")


def test_a_source_reads_the_newest_rows_in_any_order_and_batch(dataset: Path) -> None:
    directory = DatasetLayout(dataset).features_dir(SPEC.video)
    want = expected(dataset, SPEC.video)
    source = FeatureSource(directory, batch_bytes=500)  # two rows per decoded batch
    ids = source.sample_ids
    assert sorted(ids) == sorted(want) and ids[-len(RETRIED) :] == list(RETRIED)
    got: dict[str, Steps] = {}
    for at in range(0, len(ids), 3):  # storage order over several calls: the stream goes on
        got |= source.read(ids[at : at + 3])
    got |= source.read(reversed(ids[:7]))  # earlier rows again: the stream restarts
    for sample_id, steps in got.items():
        assert np.array_equal(steps.values, want[sample_id][0])
        assert steps.times_s.tolist() == want[sample_id][1]
    assert source.read([ids[5]])[ids[5]].values.shape == (SPEC.steps, SPEC.video_dim)


def test_the_webdataset_library_reads_the_tars(dataset: Path, tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")  # a dev dependency: never skipped in CI
    out = tmp_path / "wds"
    export_dataset(dataset, out, ExportConfig("webdataset", FEATURES, max_samples=4))
    want = expected(dataset, SPEC.video)
    urls = [str(p) for p in sorted(out.glob("*.tar"))]
    seen = {}
    for sample in wds.WebDataset(urls, shardshuffle=False).decode():
        meta = sample["json"]
        assert sample_id_of(sample["__key__"]) == meta["sample_id"]
        values = sample[f"{SPEC.video}.npy"]
        assert values.dtype == np.float16
        assert np.array_equal(values, want[meta["sample_id"]][0])
        seen[meta["sample_id"]] = sample[f"{SPEC.audio}.npy"].shape
    assert len(seen) == SPEC.pairs and seen[DOTTED] == (1, SPEC.audio_dim)


def test_npy_round_trip_and_index(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "npy"
    summary = export_dataset(dataset, out, ExportConfig("npy", FEATURES, read_bytes=1000))
    assert summary.written == 2 * SPEC.pairs
    index = pq.read_table(out / INDEX_NAME).to_pylist()
    split_of = splits(dataset)
    assert [r["sample_id"] for r in index] == sorted(split_of)
    for name in FEATURES:
        want = expected(dataset, name)
        for row in index:
            assert row[f"{name}_path"] == npy_path(name, row["sample_id"])
            values = np.load(out / row[f"{name}_path"], allow_pickle=False)
            assert values.dtype == np.float16
            assert np.array_equal(values, want[row["sample_id"]][0])
            assert row[f"{name}_shape"] == list(values.shape)
            assert row[f"{name}_timestamps_s"] == want[row["sample_id"]][1]
            assert row["split"] == split_of[row["sample_id"]]
    assert (out / SPEC.video / "pa" / f"{DOTTED}.npy").exists()
    # every file present is complete; no temp is left
    assert not [p for p in out.rglob(".*") if p.name != ".export.json"]


def test_one_split_and_one_feature(dataset: Path, tmp_path: Path) -> None:
    config = ExportConfig("webdataset", (SPEC.audio,), split="val")
    summary = export_dataset(dataset, tmp_path / "val", config)
    val = {s for s, v in splits(dataset).items() if v == "val"}
    assert summary.by_split == {"val": len(val)}
    samples = read_tars(tmp_path / "val")
    assert {sample_id_of(k) for k in samples} == val
    assert all(set(m) == {"json", f"{SPEC.audio}.npy"} for m in samples.values())
    assert [p.name for p in (tmp_path / "val").glob("*.tar")] == ["val-000000.tar"]


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_pooled_only_features_export_as_one_step(dataset: Path, tmp_path: Path) -> None:
    """YouTube-8M video-level records: one ``embedding`` per sample, exported as (1, D) at 0 s."""
    root = Path(shutil.copytree(dataset, tmp_path / "ds"))
    ids = sorted(splits(root))
    schema = with_provenance(feature_schema(8, sequence=False), "extract", extractor="yt8m")
    values = np.arange(len(ids) * 8, dtype=np.float16).reshape(len(ids), 8) / 64
    rows = [{COL.sample_id: s, COL.embedding: v} for s, v in zip(ids, values, strict=True)]
    limits = ShardLimits(vector_columns=(COL.embedding,))
    directory = DatasetLayout(root).features_dir("yt8m_video")
    with ShardWriter(directory, "part", schema, status_column=None, limits=limits) as writer:
        writer.write(rows)
    export_dataset(root, tmp_path / "wds", ExportConfig("webdataset", ("yt8m_video",)))
    export_dataset(root, tmp_path / "npy", ExportConfig("npy", ("yt8m_video",)))
    samples = read_tars(tmp_path / "wds")
    index = {r["sample_id"]: r for r in pq.read_table(tmp_path / "npy" / INDEX_NAME).to_pylist()}
    for sample_id, want in zip(ids, values, strict=True):
        tarred = np.load(io.BytesIO(samples[sample_key(sample_id)]["yt8m_video.npy"]))
        filed = np.load(tmp_path / "npy" / index[sample_id]["yt8m_video_path"])
        assert tarred.dtype == np.float16 and np.array_equal(tarred, want[None])
        assert np.array_equal(filed, want[None])
        assert index[sample_id]["yt8m_video_timestamps_s"] == [0.0]


def test_a_killed_export_resumes_to_the_same_tars(dataset: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    export_dataset(dataset, whole, ExportConfig("webdataset", FEATURES, max_samples=1))
    total = len(list(whole.glob("*.tar")))
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "svm_toolkit", "-vv", "export", str(dataset)]
    args += ["--format", "webdataset", "-o", str(out), "--max-samples", "1"]
    args += ["--features", ",".join(FEATURES)]
    child = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    finished = 0
    for line in child.stderr:  # the export logs each finished tar at debug level
        finished += line.startswith("DEBUG svm_toolkit.export") and ".tar: " in line
        if finished == 3:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    done = list(out.glob("*.tar"))
    assert 3 <= len(done) < total
    rerun = export_dataset(dataset, out, ExportConfig("webdataset", FEATURES, max_samples=1))
    assert rerun.kept == len(done) and rerun.written == total - len(done)
    assert _files(out) == _files(whole)  # byte for byte, no temp left


def test_an_unfinished_tar_and_missing_npy_files_are_rewritten(
    dataset: Path, tmp_path: Path
) -> None:
    for fmt in ("webdataset", "npy"):
        whole, out = tmp_path / f"{fmt}-whole", tmp_path / fmt
        config = ExportConfig(fmt, FEATURES, max_samples=4)
        export_dataset(dataset, whole, config)
        export_dataset(dataset, out, config)
        gone = sorted(p for p in out.rglob("*") if p.suffix in (".tar", ".npy"))[1:4]
        for path in gone:  # as a kill leaves them: a half-written temp, no final file
            path.with_name(f".{path.name}.tmp").write_bytes(path.read_bytes()[:100])
            path.unlink()
        (out / INDEX_NAME).unlink(missing_ok=True)
        summary = export_dataset(dataset, out, config)
        assert summary.written == 3
        assert _files(out) == _files(whole)


def test_a_folder_of_another_export_or_other_files_is_refused(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "wds"
    export_dataset(dataset, out, ExportConfig("webdataset", FEATURES, max_samples=4))
    with pytest.raises(InputError, match="holds another export"):
        export_dataset(dataset, out, ExportConfig("webdataset", FEATURES, max_samples=5))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty and not an export"):
        export_dataset(dataset, tmp_path / "other", ExportConfig("npy"))
    with pytest.raises(ConfigError, match="unknown feature set 'nope'"):
        export_dataset(dataset, tmp_path / "x", ExportConfig("npy", ("nope",)))
    with pytest.raises(InputError, match="no committed features of 'vggish'"):  # known, not made
        export_dataset(dataset, tmp_path / "y", ExportConfig("npy", ("vggish",)))
    with pytest.raises(ConfigError, match="--format"):
        ExportConfig("hdf5")
    with pytest.raises(ConfigError, match="--split"):
        ExportConfig("npy", split="dev")


def test_cli_prints_one_summary_line(dataset: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from svm_toolkit.cli import cli

    out = tmp_path / "npy"
    args = ["export", str(dataset), "--format", "npy", "-o", str(out), "--split", "test"]
    result = CliRunner().invoke(cli, [*args, "--features", SPEC.audio])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("export: ") and "index.parquet" in lines[0]
    assert "Example" in CliRunner().invoke(cli, ["export", "--help"]).output


def test_round_trip_of_a_dataset_built_by_the_stages(tmp_path: Path) -> None:
    """Real ``svm preprocess``, ``svm extract`` and ``svm splits make`` outputs, both formats."""
    from svm_toolkit.extract.config import ExtractConfig
    from svm_toolkit.extract.runner import run_extract
    from svm_toolkit.preprocess import run_preprocess
    from svm_toolkit.schema import MANIFEST_SCHEMA, with_provenance
    from svm_toolkit.splits.make import SplitConfig, make_splits
    from tests.preprocess.test_stage import CONFIG as PREPROCESS
    from tests.preprocess.test_stage import make_dataset

    name = "efficientnet_lite0"  # per-second steps; the cheapest offline extractor
    root = make_dataset(tmp_path / "ds")  # a download ledger of six videos, one corrupt
    ledger = read_shards(DatasetLayout(root).ledger_dir, "download")
    assert ledger is not None
    ids = ledger.column(COL.sample_id).to_pylist()
    rows = [
        {COL.sample_id: s, COL.video_id: s, COL.url: f"https://example.org/{s}.mp4",
         COL.source: "url", COL.status: "ok", COL.music_id: f"song_{s}"}
        for s in ids
    ]  # fmt: skip
    manifest = pa.Table.from_pylist(rows, schema=with_provenance(MANIFEST_SCHEMA, "manifest"))
    pq.write_table(manifest, DatasetLayout(root).manifest)
    run_preprocess(root, dataclasses.replace(PREPROCESS, mel=()))
    run_extract(root, ExtractConfig(extractors=(name,), device="cpu", workers=1, batch_size=5))
    make_splits(root, SplitConfig())
    split_of = splits(root)
    wds = export_dataset(root, tmp_path / "wds", ExportConfig("webdataset", max_samples=2))
    npy = export_dataset(root, tmp_path / "npy", ExportConfig("npy"))
    assert wds.features == npy.features == (name,)  # every feature set by default
    samples = read_tars(tmp_path / "wds")
    index = {r["sample_id"]: r for r in pq.read_table(tmp_path / "npy" / INDEX_NAME).to_pylist()}
    assert set(index) == {sample_id_of(k) for k in samples} == set(split_of)
    want = expected(root, name)
    assert set(want) == set(split_of) and len(want) >= 3  # the ok samples
    for sample_id, (values, times) in want.items():
        tarred = np.load(io.BytesIO(samples[sample_key(sample_id)][f"{name}.npy"]))
        filed = np.load(tmp_path / "npy" / index[sample_id][f"{name}_path"])
        assert tarred.dtype == filed.dtype == np.float16 and values.shape == (4, 1280)
        assert np.array_equal(tarred, values) and np.array_equal(filed, values)
        assert index[sample_id][f"{name}_timestamps_s"] == times == [0.0, 1.0, 2.0, 3.0]
        assert index[sample_id]["music_id"] == f"song_{sample_id}"
