"""``--engine ray`` on a local Ray instance: each stage's outputs equal the local engine's.

One Ray instance (2 CPUs, as on CI) serves the whole module; actors reserve half a CPU so a pool
and CPU tasks fit beside each other.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from svm_toolkit.download import BreakerOpen, DownloadConfig, run_download
from svm_toolkit.download.limits import LowDiskSpace
from svm_toolkit.engines import EngineConfig
from svm_toolkit.engines.ray_data import import_ray
from svm_toolkit.errors import MissingWeightsError
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.runner import run_extract
from svm_toolkit.io.shards import committed_shards, read_shards
from svm_toolkit.preprocess import run_preprocess
from svm_toolkit.schema import read_provenance
from svm_toolkit.testing import LoopbackServer, Route
from tests.download.test_download import dataset
from tests.preprocess.test_stage import CONFIG as PREPROCESS
from tests.preprocess.test_stage import make_dataset

RAY = EngineConfig("ray", cpus_per_actor=0.5)
FAST = DownloadConfig(timeout_s=5, socket_timeout_s=1, max_attempts=2, backoff_s=0.01)
TIMING = {"started_at", "seconds"}  # the only columns that differ between two runs


@pytest.fixture(scope="module", autouse=True)
def ray_instance() -> Iterator[None]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private instance: no tokens
    ray = import_ray()  # a dev dependency: these tests never skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def rows(root: Path, directory: str, prefix: str, *, key: str = "sample_id") -> dict[str, Any]:
    """Every committed row of some shards by id, without the timing columns or the root's path."""
    table = read_shards(root / directory, prefix, latest=False)
    assert table is not None

    def same(value: Any) -> Any:
        return value.replace(str(root), "<root>") if isinstance(value, str) else value

    found = {
        r[key]: {k: same(v) for k, v in r.items() if k not in TIMING} for r in table.to_pylist()
    }
    assert len(found) == table.num_rows, "an id was written twice"
    return found


def test_download_on_ray_equals_local(tmp_path: Path, server: LoopbackServer) -> None:
    urls = {
        **{f"v{i}": server.url(Route.MEDIA, "clip.mp4") for i in range(4)},
        "page": server.url(Route.PAGE, "clip.mp4"),
        "missing": server.url(Route.MISSING, "clip.mp4"),
        "silent": server.url(Route.MEDIA, "silent.mp4"),
    }
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local = dataset(tmp_path / "local", urls)
    remote = dataset(tmp_path / "ray", urls)
    run_download(local, FAST)
    summary = run_download(remote, FAST, engine=RAY)
    assert summary.attempted == len(urls)
    assert rows(remote, "ledger", "download") == rows(local, "ledger", "download")
    for sample in urls:
        ours, theirs = (sorted((ds / "media").rglob(f"{sample}.*")) for ds in (remote, local))
        assert [p.read_bytes() for p in ours] == [p.read_bytes() for p in theirs]


def test_an_interrupted_ray_download_resumes_exactly_once(
    tmp_path: Path, server: LoopbackServer
) -> None:
    urls = {f"v{i}": server.url(Route.MEDIA, "clip.mp4") for i in range(6)}
    ds = dataset(tmp_path, urls)
    seen: list[str] = []

    def stop_after_two(result: Any) -> None:
        seen.append(result.sample_id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_download(ds, FAST, engine=RAY, on_result=stop_after_two)
    assert set(rows(ds, "ledger", "download")) == set(seen)
    resumed = run_download(ds, FAST, engine=RAY)
    # a download that finished as the run stopped placed its file: the resume adopts it
    assert resumed.skipped == 2 and resumed.attempted + resumed.adopted == 4
    assert set(rows(ds, "ledger", "download")) == set(urls)  # each sample exactly once


def test_the_circuit_breaker_is_shared_by_every_download_actor(
    tmp_path: Path, server: LoopbackServer
) -> None:
    urls = {f"r{i}": server.url(Route.RATE_LIMITED, f"clip{i}.mp4") for i in range(8)}
    ds = dataset(tmp_path, urls)
    config = dataclasses.replace(
        FAST, concurrency=2, max_attempts=1, breaker_threshold=2, breaker_max_pauses=0
    )
    with pytest.raises(BreakerOpen, match="2 downloads in a row were refused"):
        run_download(ds, config, engine=RAY)
    done = read_shards(ds / "ledger", "download")
    assert done is not None and 0 < done.num_rows < 8  # the rest is still to do


def test_low_disk_space_in_a_download_actor_stops_the_run_as_itself(
    tmp_path: Path, server: LoopbackServer
) -> None:
    ds = dataset(tmp_path, {"a": server.url(Route.MEDIA, "clip.mp4")})
    with pytest.raises(LowDiskSpace) as raised:
        run_download(ds, dataclasses.replace(FAST, min_free_gb=1e6), engine=RAY)
    assert type(raised.value) is LowDiskSpace and raised.value.exit_code == 4  # not a Ray error
    assert "--min-free-gb" in str(raised.value) and "Traceback" not in str(raised.value)
    assert read_shards(ds / "ledger", "download") is None


def test_ray_commits_finished_rows_while_the_other_actors_hang(
    tmp_path: Path, server: LoopbackServer
) -> None:
    urls = {
        "ok": server.url(Route.MEDIA, "clip.mp4"),
        "stuck": server.url(Route.TRICKLE, "clip.mp4"),
    }
    ds = dataset(tmp_path, urls)
    config = dataclasses.replace(FAST, concurrency=2, timeout_s=9, max_attempts=1)
    config = dataclasses.replace(config, commit_every_s=3, socket_timeout_s=20)
    run = threading.Thread(target=run_download, args=(ds, config), kwargs={"engine": RAY})
    run.start()
    committed_while_running = False
    while run.is_alive():
        found = read_shards(ds / "ledger", "download")
        if found is not None and found.column("sample_id").to_pylist() == ["ok"]:
            committed_while_running = run.is_alive()  # the timer, not a later result, committed
            if committed_while_running:
                break
        time.sleep(0.1)
    run.join(timeout=60)
    assert committed_while_running
    assert set(rows(ds, "ledger", "download")) == {"ok", "stuck"}


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six videos whose download is done, one of them corrupt (see tests/preprocess)."""
    return make_dataset(tmp_path_factory.mktemp("engines") / "downloaded")


@pytest.fixture(scope="module")
def preprocessed(downloaded: Path) -> tuple[Path, Path]:
    """The same videos preprocessed by each engine: (local, ray)."""
    local, remote = (shutil.copytree(downloaded, downloaded.with_name(n)) for n in ("lo", "ray"))
    run_preprocess(local, PREPROCESS)
    summary = run_preprocess(remote, dataclasses.replace(PREPROCESS, workers=2), engine=RAY)
    assert summary.attempted == 6 and summary.cropped == 1
    return local, remote


def test_preprocess_on_ray_equals_local(preprocessed: tuple[Path, Path]) -> None:
    local, remote = preprocessed
    ours, theirs = rows(remote, "ledger", "preprocess"), rows(local, "ledger", "preprocess")
    assert ours == theirs
    assert ours["broken"]["status"] == "decode_error" and ours["talk"]["status"] != "ok"
    fingerprints = "preprocess/fingerprints"
    assert rows(remote, fingerprints, "part") == rows(local, fingerprints, "part")
    # the local run's single worker computes the fbank with all of torch's threads, Ray's actors
    # with one: the sums differ in float32 rounding only
    mine, other = (rows(root, "preprocess/mel_imagebind", "part") for root in (remote, local))
    assert mine.keys() == other.keys() == {"good", "boxed", "noise"}
    for sample_id, row in other.items():
        assert mine[sample_id]["timestamps_s"] == row["timestamps_s"]
        np.testing.assert_allclose(mine[sample_id]["mel"], row["mel"], rtol=1e-5, atol=1e-5)


def test_an_interrupted_ray_preprocess_resumes(downloaded: Path, tmp_path: Path) -> None:
    root = shutil.copytree(downloaded, tmp_path / "ds")
    seen: list[Any] = []

    def stop_after_two(result: Any) -> None:
        seen.append(result)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_preprocess(root, PREPROCESS, engine=RAY, on_result=stop_after_two)
    assert len(rows(root, "ledger", "preprocess")) == 2
    resumed = run_preprocess(root, PREPROCESS, engine=RAY)
    assert (resumed.attempted, resumed.skipped) == (4, 2)
    assert set(rows(root, "ledger", "preprocess")) == set(rows(downloaded, "ledger", "download"))


EXTRACT = ExtractConfig(device="cpu", workers=1, batch_size=5)


def without_features(root: Path, to: Path) -> Path:
    return shutil.copytree(root, to, ignore=shutil.ignore_patterns("features", "extract_*"))


def assert_same_features(ours: Path, theirs: Path) -> None:
    for name in EXTRACT.extractors:
        mine, other = (
            rows(ours, f"features/{name}", "part"),
            rows(theirs, f"features/{name}", "part"),
        )
        assert mine.keys() == other.keys() and mine
        for sample_id, row in other.items():
            assert mine[sample_id]["timestamps_s"] == row["timestamps_s"]
            for column in ("embeddings", "embedding"):
                np.testing.assert_allclose(
                    np.asarray(mine[sample_id][column], np.float32),
                    np.asarray(row[column], np.float32),
                    atol=2e-3,
                )
        assert rows(ours, "ledger", f"extract_{name}") == rows(theirs, "ledger", f"extract_{name}")
        mine_meta, other_meta = (
            read_provenance(pq.read_schema(committed_shards(root / "features" / name, "part")[0]))
            for root in (ours, theirs)
        )
        assert mine_meta["precision"] == other_meta["precision"]  # resolved alike


def test_extract_on_ray_equals_local_with_a_corrupt_video(
    preprocessed: tuple[Path, Path], tmp_path: Path
) -> None:
    local = without_features(preprocessed[0], tmp_path / "local")
    remote = without_features(preprocessed[0], tmp_path / "ray")
    for root in (local, remote):  # a video that preprocessed fine is now unreadable
        (root / "media" / "go" / "good.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" * 64)
    run_extract(local, EXTRACT)
    summary = run_extract(remote, EXTRACT, engine=dataclasses.replace(RAY, videos_per_call=2))
    assert summary.attempted == 3 and summary.device == "cpu"
    assert_same_features(remote, local)
    ledger = rows(remote, "ledger", "extract_efficientnet_lite0")
    assert {k: r["status"] for k, r in ledger.items()} == {
        "good": "decode_error",
        "boxed": "ok",
        "noise": "ok",
    }


def test_an_interrupted_ray_extract_resumes(
    preprocessed: tuple[Path, Path], tmp_path: Path
) -> None:
    done = without_features(preprocessed[0], tmp_path / "done")
    run_extract(done, EXTRACT)
    root = without_features(preprocessed[0], tmp_path / "ds")

    def stop(sample_id: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_extract(root, EXTRACT, engine=RAY, on_video=stop)
    assert len(rows(root, "ledger", "extract_efficientnet_lite0")) == 1
    resumed = run_extract(root, EXTRACT, engine=RAY)
    assert (resumed.attempted, resumed.skipped) == (2, 1)
    assert_same_features(root, done)


def test_missing_weights_fail_before_ray_starts_work(preprocessed: tuple[Path, Path]) -> None:
    config = dataclasses.replace(EXTRACT, extractors=("resnet50",))
    with pytest.raises(MissingWeightsError, match="resnet50 needs its weights"):
        run_extract(preprocessed[1], config, engine=RAY)


def test_svm_extract_engine_ray_starts_its_own_ray(
    preprocessed: tuple[Path, Path], tmp_path: Path
) -> None:
    local = without_features(preprocessed[0], tmp_path / "local")
    remote = without_features(preprocessed[0], tmp_path / "ray")
    run_extract(local, EXTRACT)
    command = [sys.executable, "-m", "svm_toolkit", "extract", str(remote), "--device", "cpu"]
    done = subprocess.run(
        [*command, "--engine", "ray", "--batch-size", "5"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "3 efficientnet_lite0 ok, 3 vmnet_music ok" in done.stdout
    assert_same_features(remote, local)
    wrong = subprocess.run([*command, "--ray-address", "auto"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "--ray-address needs --engine ray" in wrong.stderr
