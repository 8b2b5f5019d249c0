"""A worker that dies on a sample marks that sample and the run goes on (issue 17.5).

The crashes are real: a segfault (``SIGSEGV`` sent to itself) inside a real worker process of
the real pool of ``svm preprocess`` and ``svm extract``. The worker function is swapped in the
main process only, for one that crashes on the samples named ``segv*`` and otherwise does the
stage's real work. The 7.1 AAC video that used to segfault preprocessing goes through both
stages for real.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.extract import prepare as extract_prepare
from svm_toolkit.extract import runner as extract_runner
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.prepare import ExtractJob, Prepared
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter, read_shards
from svm_toolkit.preprocess import PreprocessConfig, run_preprocess
from svm_toolkit.preprocess import runner as preprocess_runner
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.preprocess.sample import PreprocessJob, PreprocessResult
from svm_toolkit.schema import COL, ledger_schema, with_provenance
from svm_toolkit.testing import MediaSpec, make_media

PREPROCESS = PreprocessConfig(
    filters=FilterConfig(min_motion=None, max_speech_ratio=None), workers=2
)
EXTRACT = ExtractConfig(device="cpu", workers=2, batch_size=4)


def segfault_on_segv(job: PreprocessJob) -> PreprocessResult:
    """Preprocess worker: crash on ``segv*`` samples, else the real work."""
    if job.sample_id.startswith("segv"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return preprocess_runner._work(job)


def segfault_decoding_segv(job: ExtractJob) -> Prepared:
    """Extract decode worker: crash on ``segv*`` samples, else the real decode."""
    if job.sample_id.startswith("segv"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return extract_prepare.prepare(job)


def surround(path: Path) -> Path:
    """4 s of a moving picture over 7.1 AAC (8 channels), the layout that crashed PyAV."""
    pan = "|".join(f"c{i}=c0" for i in range(8))
    subprocess.run(
        [ffmpeg.require(), "-v", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x240:rate=10:duration=4",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
         "-filter_complex", f"[1:a]pan=7.1|{pan}[a]", "-map", "0:v", "-map", "[a]",
         "-c:v", "libx264", "-g", "10", "-c:a", "aac", "-ac", "8", str(path)],
        check=True,
    )  # fmt: skip
    return path


def make_dataset(root: Path) -> Path:
    """A downloaded dataset: two plain videos, two that crash their worker, one in 7.1."""
    layout = DatasetLayout(root)
    paths = {
        sid: make_media(
            layout.media_path(sid, ".mp4"), MediaSpec(seconds=4, size=(160, 240), gop=10)
        )
        for sid in ("plain1", "segv1", "plain2", "segv2")
    }
    target = layout.media_path("surround", ".mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    paths["surround"] = surround(target)
    write_downloads(root, paths)
    return root


def write_downloads(root: Path, paths: dict[str, Path]) -> None:
    """The download ledger of a dataset whose media files are ``paths`` (sample id -> file)."""
    rows = [
        {
            COL.sample_id: sid, COL.stage: "download", COL.status: "ok", COL.attempts: 1,
            COL.started_at: datetime.now(UTC), COL.seconds: 0.1,
            COL.media_path: path.relative_to(root).as_posix(),
        }
        for sid, path in paths.items()
    ]  # fmt: skip
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(DatasetLayout(root).ledger_dir, "download", schema) as writer:
        writer.write(rows)


def rows(root: Path, prefix: str) -> dict[str, dict[str, object]]:
    table = read_shards(root / "ledger", prefix)
    assert table is not None
    return {r[COL.sample_id]: r for r in table.to_pylist()}


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("crash") / "ds")


def test_preprocess_marks_the_crashing_samples_and_goes_on(
    downloaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = shutil.copytree(downloaded, tmp_path / "ds")
    with monkeypatch.context() as patch:
        patch.setattr(preprocess_runner, "_work", segfault_on_segv)
        assert run_preprocess(root, PREPROCESS).attempted == 5
    ledger = rows(root, "preprocess")
    assert set(ledger) == {"plain1", "plain2", "segv1", "segv2", "surround"}
    for sid in ("segv1", "segv2"):
        assert ledger[sid]["status"] == "decode_error"
        assert "worker crashed (signal 11: SIGSEGV)" in str(ledger[sid]["detail"])
    for sid in ("plain1", "plain2", "surround"):
        assert ledger[sid]["status"] == "ok", ledger[sid]["detail"]
    assert run_preprocess(root, PREPROCESS).attempted == 0  # a re-run is a no-op


def test_extract_marks_the_crashing_video_for_every_extractor(
    downloaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = shutil.copytree(downloaded, tmp_path / "ds")
    run_preprocess(root, PREPROCESS)  # for real: the 7.1 video no longer crashes its worker
    ledger = rows(root, "preprocess")
    assert {sid: r["status"] for sid, r in ledger.items()} == dict.fromkeys(ledger, "ok")
    assert ledger["surround"]["audio_channels"] == 8
    monkeypatch.setattr(extract_runner, "prepare", segfault_decoding_segv)
    assert extract_runner.run_extract(root, EXTRACT).attempted == 5
    for name in EXTRACT.extractors:
        ledger = rows(root, extract_runner.ledger_prefix(name))
        for sid in ("segv1", "segv2"):
            assert ledger[sid]["status"] == "decode_error"
            assert "worker crashed (signal 11: SIGSEGV)" in str(ledger[sid]["detail"])
        for sid in ("plain1", "plain2", "surround"):
            assert ledger[sid]["status"] == "ok", (name, ledger[sid]["detail"])
    assert extract_runner.run_extract(root, EXTRACT).attempted == 0  # a re-run is a no-op


def test_a_lone_crashing_video_is_isolated_too(
    downloaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One video to do still runs in a worker process (not in the main one) when workers > 1."""
    media = downloaded / "media"
    source = next(media.rglob("segv1.mp4"))
    roots = {}
    for stage in ("preprocess", "extract"):
        path = tmp_path / stage / "media" / "segv1.mp4"
        path.parent.mkdir(parents=True)
        shutil.copy(source, path)
        write_downloads(tmp_path / stage, {"segv1": path})
        roots[stage] = tmp_path / stage
    with monkeypatch.context() as patch:
        patch.setattr(preprocess_runner, "_work", segfault_on_segv)
        run_preprocess(roots["preprocess"], PREPROCESS)
    assert rows(roots["preprocess"], "preprocess")["segv1"]["status"] == "decode_error"
    run_preprocess(roots["extract"], PREPROCESS)
    monkeypatch.setattr(extract_runner, "prepare", segfault_decoding_segv)
    extract_runner.run_extract(roots["extract"], EXTRACT)
    for name in EXTRACT.extractors:
        row = rows(roots["extract"], extract_runner.ledger_prefix(name))["segv1"]
        assert row["status"] == "decode_error" and "signal 11" in str(row["detail"])
