"""No URL can crash a run: whatever one sample raises becomes its status, and a re-run is a no-op.

Also: a hostile sample id never reaches the file system (checked before the scratch folder is
made or removed), whether it comes through a manifest or a job.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.download import DownloadConfig, ytdlp_pool
from svm_toolkit.download.pacing import CircuitBreaker, RateLimiter
from svm_toolkit.download.sample import Job, Pacing, download_sample
from svm_toolkit.errors import InputError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.probe import probe_media
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from tests.faults.download_helpers import dataset, ledger, leftovers, svm_download


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    root = tmp_path_factory.mktemp("served")
    make_media(root / "clip.mp4", MediaSpec(seconds=1, size=(96, 64)))
    shutil.copy(root / "clip.mp4", root / "café.mp4")
    with LoopbackServer(root) as srv:
        yield srv


def test_non_ascii_urls_and_file_pages_are_statuses_not_crashes(
    tmp_path: Path, server: LoopbackServer
) -> None:
    urls = {
        "cafe": f"{server.base_url}/media/café.mp4",  # raw IRI, as a list may hold it
        "cafe_page": f"{server.base_url}/page/café.mp4",
        "file_page": server.url(Route.PAGE_TO, "file:///etc/passwd"),
        "ok": server.url(Route.MEDIA, "clip.mp4"),
    }
    ds = dataset(tmp_path, urls)
    result = svm_download(ds)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = ledger(ds)
    assert {k: r["status"] for k, r in rows.items()} == {
        "cafe": "ok",
        "cafe_page": "ok",
        "file_page": "refused_host",
        "ok": "ok",
    }
    assert "/media/caf%C3%A9.mp4" in server.requests
    assert "file:///etc/passwd" in str(rows["file_page"]["detail"])
    again = svm_download(ds)
    assert again.returncode == 0 and "0 videos (4 done before)" in again.stdout


def test_an_unexpected_exception_is_that_samples_status(
    tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {"boom": server.url(Route.MEDIA, "clip.mp4"), "fine": server.url(Route.PAGE, "clip.mp4")}
    ds = dataset(tmp_path, urls)

    def probe(path: Path) -> object:  # a bug that only one sample meets
        if path.parent.name == "boom":  # the scratch folder is named after the sample
            raise KeyError("a key nobody expected")
        return probe_media(path)

    monkeypatch.setattr("svm_toolkit.download.sample.probe_media", probe)
    result = svm_download(ds, "--attempts", "3")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    rows = ledger(ds)
    assert rows["fine"]["status"] == "ok"
    assert rows["boom"]["status"] == "internal_error" and rows["boom"]["attempts"] == 1
    assert "KeyError" in str(rows["boom"]["detail"]) and leftovers(ds) == []
    monkeypatch.undo()
    again = svm_download(ds)
    assert again.returncode == 0 and "0 videos (2 done before)" in again.stdout


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[Path]:
    """A folder beside the dataset that no download may touch."""
    folder = tmp_path / "victim_dir"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    yield folder
    assert (folder / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


def test_a_hostile_id_in_a_job_touches_nothing(
    tmp_path: Path, server: LoopbackServer, victim: Path
) -> None:
    layout = DatasetLayout(tmp_path / "ds")
    (layout.media_dir / ".tmp").mkdir(parents=True)
    stop = threading.Event()
    pacing = Pacing(RateLimiter(None), CircuitBreaker(5, 1.0, 1), stop.wait, stop)
    before = len(server.requests)
    for sample_id in ("../../victim_dir", "../../../victim_dir", "/abs", "a/../../b", ".."):
        job = Job(sample_id, server.url(Route.MEDIA, "clip.mp4"), "url")
        with pytest.raises(InputError, match="cannot be used"):
            download_sample(job, layout, DownloadConfig(), pacing)
    assert len(server.requests) == before  # refused before anything was fetched
    assert sorted(p.name for p in layout.media_dir.iterdir()) == [".tmp"]


def test_a_hostile_id_in_a_manifest_stops_the_run_before_any_file_operation(
    tmp_path: Path, server: LoopbackServer, victim: Path
) -> None:
    ds = dataset(tmp_path, {"good": server.url(Route.MEDIA, "clip.mp4")})
    manifest = ds / "manifest.parquet"
    table = pq.read_table(manifest)
    ids = pa.array(["../../../victim_dir"], table.schema.field("sample_id").type)
    pq.write_table(
        table.set_column(table.schema.get_field_index("sample_id"), "sample_id", ids), manifest
    )
    before = len(server.requests)
    result = svm_download(ds)
    assert result.returncode == 2 and "victim_dir" in result.stderr
    assert len(server.requests) == before  # nothing was fetched
    assert not (ds / "media").exists() or not any((ds / "media").rglob("*.mp4"))


def test_an_idle_ytdlp_child_that_died_is_replaced_and_its_files_closed(
    tmp_path: Path, server: LoopbackServer
) -> None:
    ytdlp_pool.close_children()
    dead = ytdlp_pool.Child()
    dead.proc.kill()  # died while idle (out of memory, a stray signal)
    dead.proc.wait(timeout=10)
    with ytdlp_pool._lock:
        ytdlp_pool._idle.append(dead)
    ds = dataset(tmp_path, {"page": server.url(Route.PAGE, "clip.mp4")})
    result = svm_download(ds)
    assert result.returncode == 0, result.stderr
    assert ledger(ds)["page"]["status"] == "ok"  # a fresh child served it
    assert dead.proc.stdin is not None and dead.proc.stdin.closed
    assert dead.proc.stdout is not None and dead.proc.stdout.closed
    assert dead.log.closed  # its stderr file is not leaked
