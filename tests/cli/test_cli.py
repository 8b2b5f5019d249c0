"""The CLI as a user runs it: a real process, its output and its exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.testing.pairs import PairsSpec, write_pairs
from svm_toolkit.testing.yt8m import synthetic_videos, write_vocabulary, write_yt8m
from svm_toolkit.yt8m import Layout
from tests.manifest.helpers import write_list


def svm(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svm_toolkit", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "Exit codes:"),
        (("manifest", "urls"), "Formats: .csv"),
        (("manifest", "info"), "by source, status and split"),
        (("demo",), "loopback HTTP server"),
        (("train",), "resume"),
        (("evaluate",), "ties count"),
        (("env",), "bug reports"),
        (("download",), "--cookies-from-browser"),
        (("manifest", "yt8m"), "--lookup-base"),
        (("preprocess",), "filtered:<name>"),
    ],
)
def test_help_teaches(args: tuple[str, ...], expected: str) -> None:
    result = svm(*args, "--help")
    assert result.returncode == 0
    assert expected in result.stdout


def test_manifest_urls_then_info(tmp_path: Path) -> None:
    src = write_list(tmp_path / "urls.csv")
    result = svm("manifest", "urls", src, "--preset", "svm10k", "-o", tmp_path / "ds")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "manifest: 4 rows -> 4 samples (0 duplicates merged): 3 ok, 1 filtered:min_likes in "
    )
    assert "  source  youtube 2 · tiktok 1 · url 1" in result.stdout

    again = svm("manifest", "urls", src, "--preset", "svm10k", "-o", tmp_path / "ds")
    assert again.returncode == 0 and "unchanged" in again.stdout

    info = svm("manifest", "info", tmp_path / "ds")
    assert info.returncode == 0
    assert "4 samples" in info.stdout and "source  youtube 2 · tiktok 1 · url 1" in info.stdout


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ("manifest", "urls", "missing.csv", "-o", "ds"), "missing.csv: no such file"),
        (
            "url,likes\nhttp://a/x,1,2\n",
            ("manifest", "urls", "in.csv", "-o", "ds"),
            "in.csv:2: 3 fields",
        ),
        (
            "url\nhttp://a/x\n",
            ("manifest", "urls", "in.csv", "--url-column", "link", "-o", "ds"),
            "no column 'link'",
        ),
        (
            "id,url\n../../x,http://a/x\n",
            ("manifest", "urls", "in.csv", "--id-column", "id", "-o", "ds"),
            "in.csv:2: id '../../x'",
        ),
        ("", ("manifest", "urls", "in.csv", "-o", "ds"), "in.csv: no rows"),
        (
            "url\nhttp://a/x\n",
            ("manifest", "urls", "in.csv", "--config", "cfg.yaml", "-o", "ds"),
            "unknown field(s) ['colour']",
        ),
        (None, ("manifest", "info", "."), "no manifest"),
        (None, ("manifest", "urls", "in.csv"), "Missing option '-o'"),
        (
            None,
            ("manifest", "urls", "x.csv", "--min-likes", "-3", "-o", "ds"),
            "-3 is not in the range x>=0",
        ),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(
    tmp_path: Path, setup: str | None, args: tuple[str, ...], message: str
) -> None:
    if setup is not None:
        (tmp_path / "in.csv").write_text(setup)
    (tmp_path / "cfg.yaml").write_text("colour: blue\n")
    result = svm(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ds").exists() and not (tmp_path.parent / "x").exists()


def test_changed_manifest_needs_overwrite(tmp_path: Path) -> None:
    src = write_list(tmp_path / "urls.txt")
    assert svm("manifest", "urls", src, "-o", tmp_path / "ds").returncode == 0
    src.write_text("https://youtu.be/dQw4w9WgXcQ\n")
    refused = svm("manifest", "urls", src, "-o", tmp_path / "ds")
    assert refused.returncode == 2 and "pass --overwrite" in refused.stderr
    assert svm("manifest", "urls", src, "-o", tmp_path / "ds", "--overwrite").returncode == 0


def test_env_lists_versions() -> None:
    result = svm("env")
    assert result.returncode == 0
    for name in ("svm_toolkit", "python", "pyarrow", "yt-dlp", "torch", "cuda", "ffmpeg"):
        assert any(line.split()[0] == name for line in result.stdout.splitlines()), name


def test_demo_command(tmp_path: Path) -> None:
    result = svm("demo", "-o", tmp_path / "demo", "--clips", "3", "--seconds", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("corpus     3 clips of 3 s at 240x424")
    assert lines[1].startswith(
        "manifest   6 rows -> 5 samples (1 duplicate merged): 4 ok, 1 invalid_url"
    )
    assert lines[2].startswith("download   4 videos (0 done before): 3 ok, 1 unavailable;")
    assert lines[3].startswith("preprocess 3 videos (0 done before): 2 ok, 1 filtered:speech;")
    assert lines[4].startswith(
        "extract    2 videos (0 done before): 2 efficientnet_lite0 ok, 2 vmnet_music ok;"
    )
    assert lines[5].startswith("splits     2 samples: train ")
    assert lines[6].startswith("validate   2 samples (train ")
    assert lines[7].startswith("train      ")
    assert lines[8].startswith("evaluate   skipped: ")
    assert lines[9].startswith("yt8m       60 records in 2 file(s) -> ")
    dataset = tmp_path / "demo" / "dataset"
    assert f"next: svm manifest info {dataset}" in lines
    assert f"      open {dataset / 'report.html'} (svm report, a page to look at)" in lines
    assert (
        lines[-1]
        == f"      svm compare {tmp_path / 'demo' / 'release'} {tmp_path / 'demo' / 'rebuilt'}"
    )


def test_preprocess_before_download_and_bad_options_exit_2(tmp_path: Path) -> None:
    result = svm("preprocess", tmp_path)
    assert result.returncode == 2 and "run 'svm download" in result.stderr
    result = svm("preprocess", tmp_path, "--mel", "imagebind,mfcc")
    assert result.returncode == 2
    assert "unknown Mel recipe mfcc; choose from imagebind, vggish, librosa" in result.stderr
    result = svm("extract", tmp_path, "--precision", "fp16")
    assert result.returncode == 2 and "'fp16' is not one of 'auto', 'bf16', 'fp32'" in result.stderr


@pytest.mark.parametrize(
    ("stage", "advice"),
    [
        ("download", "delete DATASET/media/ and DATASET/ledger/download-*.parquet"),
        ("preprocess", "delete DATASET/preprocess/fingerprints/"),
        ("extract", "delete DATASET/features/<extractor>/"),
    ],
)
def test_retry_ok_is_one_rule_in_every_stage(tmp_path: Path, stage: str, advice: str) -> None:
    result = svm(stage, tmp_path, "--retry", "timeout,ok")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"error: --retry ok: --retry redoes failed samples only; to redo the ok samples of "
        f"{stage}, {advice}"
    )
    assert result.stderr.rstrip().endswith(f"then run svm {stage} again")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "b", "--audio-only"), "--format and --audio-only cannot be used together"),
        (("--max-height", "720", "--format", "b"), "--format and --max-height cannot be used"),
        (("--audio-only", "--max-height", "720"), "--audio-only and --max-height cannot be used"),
        (("--config", "cfg.yaml", "--max-height", "720"), "format (in cfg.yaml) and --max-height"),
    ],
)
def test_conflicting_format_flags_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "cfg.yaml").write_text("format: bv*+ba/b\n")
    result = svm("download", ".", *args, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr


def test_manifest_yt8m(tmp_path: Path) -> None:
    videos = synthetic_videos(6, labels=lambda i: (14,) if i % 2 else (0,), seconds=2)
    write_yt8m(tmp_path / "frame" / "train0000.tfrecord", videos, layout=Layout.FRAME)
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", {0: "Game", 14: "Music video"})
    result = svm(
        "manifest",
        "yt8m",
        tmp_path / "frame",
        "--vocabulary",
        vocab,
        "--features",
        "-o",
        tmp_path / "ds",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "yt8m: 6 records in 1 file(s) -> 3 videos labelled Music video: 3 unresolved"
    )
    assert "features/yt8m_rgb: 3 videos" in result.stdout

    bad = svm(
        "manifest",
        "yt8m",
        tmp_path / "frame",
        "--vocabulary",
        vocab,
        "--labels",
        "Musicvideo",
        "-o",
        tmp_path / "x",
    )
    assert (
        bad.returncode == 2
        and "did you mean 'Music video'?" in bad.stderr
        and "Traceback" not in bad.stderr
    )


def test_train_evaluate_and_compare(tmp_path: Path) -> None:
    dataset = write_pairs(tmp_path / "ds", PairsSpec(pairs=80, steps=4, audio_steps=2))
    common = ["--audio", "synthetic_audio", "--video", "synthetic_video", "--device", "cpu"]
    small = ["--width", "16", "--embed-dim", "8", "--epochs", "2", "--batch-size", "16"]
    for encoder, mmap in (("transformer", []), ("mean", ["--mmap"])):
        result = svm(
            "train", dataset, *common, *small, "--encoder", encoder, "--window", "4",
            "-o", tmp_path / encoder, *mmap,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert len(list((tmp_path / encoder / "cache").glob("*.npy"))) == (2 if mmap else 0)
        assert result.stdout.splitlines()[-1] == f"next: svm evaluate {tmp_path / encoder}"
        assert "epoch   2  loss " in result.stdout
        result = svm("evaluate", tmp_path / encoder, "--pool-size", "5", "--pool-seeds", "2")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("test split, ") and "pools of 5 candidates" in lines[0]
        assert lines[1].split()[:3] == ["direction", "gallery", "R@1"]
        assert "  pools of 5" in result.stdout and "chance" in result.stdout
    result = svm("evaluate", "--compare", tmp_path / "transformer", tmp_path / "mean")
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "mean") in result.stdout and "music→video" in result.stdout
    result = svm("train", dataset, *common, *small, "--seed", "3", "-o", tmp_path / "mean")
    assert result.returncode == 2 and "--overwrite" in result.stderr  # another run's folder
    result = svm("evaluate", dataset)
    assert result.returncode == 2 and "not a run folder" in result.stderr
    mine = tmp_path / "mine.parquet"
    vectors = np.random.default_rng(0).normal(size=(12, 4)).tolist()
    pq.write_table(
        pa.table({"sample_id": [f"s{i}" for i in range(12)], "video": vectors, "music": vectors}),
        mine,
    )
    result = svm("evaluate", mine, "--ks", "1,5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("given split, 12 pairs")
    assert (tmp_path / "mine-eval" / "metrics.json").exists()
    result = svm("evaluate", dataset, "--audio", "synthetic_audio", "--video", "synthetic_video")
    assert result.returncode == 2 and "needs one embedding space" in result.stderr
