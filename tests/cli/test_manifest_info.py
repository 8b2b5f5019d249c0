"""``svm manifest info``: the dataset's funnel in pipeline order, as text and as ``--json``.

The dataset is built by the real stages (manifest from a URL list, download from a loopback
server, preprocess, extract with ``vmnet_music``, splits); the run folder holds the files
``svm train`` and ``svm evaluate`` write (config, epochs, metrics).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from svm_toolkit.cli import cli
from svm_toolkit.config import to_dict
from svm_toolkit.io.shards import ShardWriter, latest_statuses
from svm_toolkit.manifest.funnel import dataset_funnel
from svm_toolkit.schema import COL, ledger_schema, with_provenance
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from svm_toolkit.testing.pairs import PairsSpec, write_pairs
from svm_toolkit.train.config import TRAIN_PRESETS

RUN = "offline-run"


def svm(*args: str | Path) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def svm_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svm_toolkit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five samples: one bad URL, one 404, one silent video, two that reach the features."""
    root = tmp_path_factory.mktemp("funnel")
    served = root / "served"
    served.mkdir()
    for name, spec in {
        "a": MediaSpec(seconds=3, size=(160, 240)),
        "b": MediaSpec(seconds=2, size=(160, 240)),
        "mute": MediaSpec(seconds=2, size=(160, 240), audio=None),
    }.items():
        make_media(served / f"{name}.mp4", spec)
    ds = root / "ds"
    with LoopbackServer(served) as server:
        rows = [(n, server.url(Route.MEDIA, f"{n}.mp4")) for n in ("a", "b", "mute")]
        rows += [("gone", server.url(Route.MEDIA, "missing.mp4")), ("bad", "not a url")]
        urls = root / "urls.csv"
        urls.write_text("id,url\n" + "".join(f"{i},{u}\n" for i, u in rows))
        svm("manifest", "urls", urls, "-o", ds, "--id-column", "id")
        svm("download", ds)
    settings = root / "preprocess.yaml"
    settings.write_text("filters: {min_motion: 0.0}\nworkers: 1\nmel: []\n")
    svm("preprocess", ds, "--config", settings)
    svm("extract", ds, "--device", "cpu", "--workers", "1", "--extractor", "vmnet_music")
    svm("splits", "make", ds, "--ratios", "0.5,0.25,0.25")
    _write_run(ds / "runs" / RUN)
    return ds


def _write_run(folder: Path) -> None:
    """The JSON files of a trained and evaluated run, as the trainer and evaluator write them."""
    folder.mkdir(parents=True)
    train = to_dict(TRAIN_PRESETS["offline"])
    (folder / "config.json").write_text(json.dumps({"dataset": "ds", "train": train}))
    epochs = [{"epoch": 1, "val_r10": 40.0}, {"epoch": 2, "val_r10": 55.0}]
    (folder / "epochs.json").write_text(json.dumps(epochs))
    full = {"recall": {"1": 10.0, "10": 60.0}, "mrr": 0.3}
    metrics = {
        "protocol": {"split": "test", "pairs": 2, "ks": [1, 10]},
        "directions": {"video_to_music": {"full": full}, "music_to_video": {"full": full}},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_the_funnel_lists_the_stages_in_pipeline_order(dataset: Path) -> None:
    lines = svm("manifest", "info", dataset).splitlines()
    assert lines[0] == f"{dataset}: 5 samples"
    assert lines[1] == "  source  url 5"
    heads = [line.split()[0] for line in lines[2:]]
    assert heads == [
        "manifest",
        "download",
        "preprocess",
        "extract",
        "vmnet_music",
        "splits",
        "runs",
        f"{RUN}:",
    ]
    text = "\n".join(lines)
    assert "manifest       5 samples: ok 4 · invalid_url 1;" in text
    # the manifest's ok is not a download's: 4 tried of the 4 the manifest let through
    assert "download       4 of 4: ok 2 · no_audio 1 · unavailable 1; " in text
    assert "preprocess     2 of 2: ok 2; ok media 0.1 min measured, median 2.5 s" in text
    assert "  vmnet_music  2 of 2: ok 2; 2 feature rows" in text
    assert "splits         2 of 2: train 1 · val 1 · test 0; 0 groups of 2+ (splits.parquet)" in (
        text
    )
    assert f"  {RUN}: preset offline, tivm-transformer-infonce, efficientnet_lite0 + " in text
    assert "2 epochs, best val R@10 55.0; test R@10 video→music 60.0, music→video 60.0" in text


def test_counts_are_the_ledgers_newest_rows(dataset: Path) -> None:
    funnel = dataset_funnel(dataset)
    for stage in ("download", "preprocess"):
        counted = funnel.stage(stage)
        assert counted is not None
        statuses = latest_statuses(dataset / "ledger", stage)
        assert counted.samples == len(statuses)
        assert sum(counted.by_status.values()) == len(statuses)
        assert counted.ok == list(statuses.values()).count("ok")


def test_a_retried_sample_counts_once_by_its_newest_status(dataset: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(dataset, tmp_path / "ds")
    schema = with_provenance(ledger_schema(), "download")
    row = {
        COL.sample_id: "gone",
        COL.stage: "download",
        COL.status: "timeout",
        COL.attempts: 2,
        COL.started_at: datetime.now(UTC),
        COL.seconds: 1.0,
    }
    with ShardWriter(copy / "ledger", "download", schema) as writer:
        writer.write(pa.Table.from_pylist([row], schema=schema))
    download = dataset_funnel(copy).stage("download")
    assert download is not None
    assert download.samples == 4
    assert dict(download.by_status) == {"ok": 2, "no_audio": 1, "timeout": 1}


def test_json_is_one_object_with_the_documented_keys(dataset: Path) -> None:
    result = svm_process("manifest", "info", dataset, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # one line: one object
    data: dict[str, Any] = json.loads(result.stdout)
    assert list(data) == ["stage", "dataset", "samples", "by_source", "stages", "splits", "runs"]
    assert data["dataset"] == str(dataset) and data["samples"] == 5
    assert data["by_source"] == {"url": 5}
    stage_keys = ["stage", "name", "samples", "of", "ok", "statuses", "bytes", "durations"]
    assert all(list(s) == [*stage_keys, "feature_rows"] for s in data["stages"])
    summary = [(s["stage"], s["name"], s["samples"], s["of"], s["ok"]) for s in data["stages"]]
    assert summary == [
        ("manifest", "manifest", 5, None, 4),
        ("download", "download", 4, 4, 2),
        ("preprocess", "preprocess", 2, 2, 2),
        ("extract", "vmnet_music", 2, 2, 2),
    ]
    download, preprocess = data["stages"][1], data["stages"][2]
    assert download["statuses"] == {"ok": 2, "no_audio": 1, "unavailable": 1}
    assert download["bytes"] > 10_000
    assert preprocess["durations"]["measured"] == 2
    assert preprocess["durations"]["median_s"] == pytest.approx(2.5, abs=0.1)
    assert preprocess["durations"]["total_h"] == pytest.approx(5.0 / 3600, abs=0.2 / 3600)
    assert data["stages"][0]["durations"] is None  # the URL list gave no durations
    assert data["stages"][3]["feature_rows"] == 2
    assert data["splits"] == {
        "samples": 2,
        "of": 2,
        "sizes": {"train": 1, "val": 1, "test": 0},
        "groups": 0,
        "source": "splits.parquet",
    }
    (run,) = data["runs"]
    assert run["name"] == RUN and run["preset"] == "offline" and run["epochs"] == 2
    assert run["best_val_r10"] == 55.0 and run["split"] == "test" and run["k"] == 10
    assert run["recall"] == {"video_to_music": 60.0, "music_to_video": 60.0}


def test_a_manifest_alone_says_what_comes_next(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("https://youtu.be/dQw4w9WgXcQ\nnot a url\n")
    svm("manifest", "urls", urls, "-o", tmp_path / "ds")
    result = svm_process("manifest", "info", tmp_path / "ds", "--json")
    data = json.loads(result.stdout)
    assert [s["stage"] for s in data["stages"]] == ["manifest"]
    assert data["splits"] is None and data["runs"] == []
    text = svm("manifest", "info", tmp_path / "ds")
    assert "input durations unknown (preprocess measures them)" in text
    assert f"next: svm download {tmp_path / 'ds'}" in text


def test_features_imported_without_a_ledger_are_not_a_share_of_a_stage(tmp_path: Path) -> None:
    """YT8M's features (and these generated ones) come with no download or extract ledger."""
    root = write_pairs(tmp_path / "ds", PairsSpec(pairs=20, songs=10))
    funnel = dataset_funnel(root)
    extract = [s for s in funnel.stages if s.stage == "extract"]
    assert [(s.name, s.samples, s.of, s.feature_rows) for s in extract] == [
        ("synthetic_audio", 20, None, 20),
        ("synthetic_video", 20, None, 20),
    ]
    assert funnel.splits is not None and funnel.splits.groups == 10  # two samples per song
    text = svm("manifest", "info", root)
    assert (
        "  synthetic_video  20 samples: ok 20; 20 feature rows (imported: no extract ledger)"
        in (text)
    )
