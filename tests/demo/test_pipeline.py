from __future__ import annotations

from pathlib import Path

from svm_toolkit.demo import CorpusConfig, run_demo
from svm_toolkit.demo.pipeline import demo_ks
from svm_toolkit.manifest import read_manifest


def test_demo_runs_every_stage_and_reruns(tmp_path: Path) -> None:
    config = CorpusConfig(clips=5, songs=3, seconds=3.5)  # clip 2 talks, clip 4 is letterboxed
    lines = []
    report = run_demo(tmp_path, config, on_stage=lines.append)
    stages = ["corpus", "manifest", "download", "preprocess", "extract", "splits", "validate"]
    stages += ["train", "evaluate", "yt8m", "release", "rebuild", "compare", "report"]
    assert [s.stage for s in report.stages] == stages == [s.stage for s in lines]
    assert report.stages[2].summary.startswith("6 videos (0 done before): 5 ok, 1 unavailable;")
    assert report.stages[3].summary.startswith(
        "5 videos (0 done before): 4 ok, 1 filtered:speech; 1 with black borders cropped;"
    )
    media = tmp_path / "dataset" / "media"
    assert sorted(p.name for p in media.iterdir()) == ["de"]  # no scratch folder left
    assert sorted(p.name for p in (media / "de").iterdir()) == [f"demo00{i}.mp4" for i in range(5)]

    rows = read_manifest(report.dataset).to_pylist()
    by_id = {r["sample_id"]: r for r in rows}
    assert set(by_id) == {f"demo00{i}" for i in range(5)} | {"broken000", "gone000"}
    assert by_id["broken000"]["status"] == "invalid_url"
    assert by_id["demo000"]["music_id"] == "song000" and by_id["demo000"]["duration_s"] == 3.5
    assert report.info.samples == 7
    assert (
        report.stages[1].summary == "8 rows -> 7 samples (1 duplicate merged): 6 ok, 1 invalid_url"
    )

    assert report.stages[4].summary.startswith(
        "4 videos (0 done before): 4 efficientnet_lite0 ok, 4 vmnet_music ok;"
    )
    assert report.stages[5].summary.startswith("4 samples: train ")  # songs keep clips together
    assert "links: music_id " in report.stages[5].summary
    assert report.stages[6].summary.endswith(": clean") or " 0 errors" in report.stages[6].summary
    assert (tmp_path / "dataset" / "splits.parquet").exists()
    assert report.stages[7].summary.startswith("2 train / 1 val pairs; ")
    assert report.stages[8].summary == (
        "skipped: 1 pair(s) in test, at least 2 needed (use more --clips)"
    )  # tests/test_notebooks.py evaluates a bigger corpus
    assert (tmp_path / "dataset" / "runs" / "tivm-demo" / "best.pt").exists()
    assert report.stages[9].summary.startswith("60 records in 2 file(s) -> ")
    yt8m = read_manifest(tmp_path / "yt8m" / "dataset").to_pylist()
    assert {r["status"] for r in yt8m} == {"ok", "unavailable"}
    assert all(
        r["url"].startswith("https://www.youtube.com/watch?v=demo")
        for r in yt8m
        if r["status"] == "ok"
    )

    # the release rebuilt against "the web later": every 10th released sample gone (404), one
    # replaced by a clip of another song; compare reports exactly those
    planted, comparison = report.planted, report.comparison
    assert planted is not None and comparison is not None
    assert planted.missing == ("demo000",) and planted.replaced == "demo003"
    assert {m["sample_id"]: m["status"] for m in comparison.missing} == {"demo000": "unavailable"}
    assert [c["sample_id"] for c in comparison.changed] == ["demo003"]
    assert comparison.samples == 4 and comparison.survived == 3
    assert {name: f["matching"] for name, f in comparison.features.items()} == {
        "vmnet_music": 2
    }  # the replaced clip's features disagree too; the others are the same
    assert comparison.splits_check["errors"] == [] and comparison.exit_code() == 2
    assert report.stages[10].summary.startswith("4 samples (train 2 · val 1 · test 1);")
    assert report.stages[12].summary.startswith(
        "3 of 4 samples survived (75.0 %): 1 unavailable missing; 1 changed;"
    )
    assert (tmp_path / "rebuilt" / "compare" / "report.json").exists()
    for page in (tmp_path / "dataset" / "report.html", tmp_path / "rebuilt" / "report.html"):
        assert page.stat().st_size > 10_000, page  # the pages are checked in tests/report
    assert "with the compare section" in report.stages[13].summary
    assert not any(p.suffix == ".mp4" for p in (tmp_path / "release").rglob("*"))

    again = run_demo(tmp_path, config)
    assert again.stages[2].summary.startswith("0 videos (6 done before): nothing to do")
    assert again.stages[3].summary.startswith("0 videos (5 done before): nothing to do")
    assert again.stages[4].summary.startswith("0 videos (4 done before): nothing to do")
    assert again.stages[5].summary.endswith("unchanged")
    assert " (done before)" in again.stages[7].summary
    assert "download 0 videos (4 done before)" in again.stages[11].summary
    assert again.comparison is not None and again.comparison.describe() == comparison.describe()
    assert read_manifest(again.dataset).column("sample_id").to_pylist() == [
        r["sample_id"] for r in rows
    ]


def test_recall_is_reported_only_for_k_below_the_gallery() -> None:
    assert demo_ks(51) == (1, 5, 10, 25, 50)
    assert demo_ks(25) == (1, 5, 10)
    assert demo_ks(10) == (1, 5)
    assert demo_ks(1) == (1,)
