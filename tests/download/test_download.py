"""svm download against the loopback server: every route and fault, real yt-dlp and ffprobe."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from svm_toolkit.download import BreakerOpen, DownloadConfig, run_download
from svm_toolkit.download.adopt import adopt
from svm_toolkit.download.sample import Job
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import read_shards
from svm_toolkit.manifest import MANIFEST_PRESETS, ManifestConfig, build_manifest
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from tests.manifest.helpers import write_list

FAST = DownloadConfig(
    timeout_s=5, socket_timeout_s=1, max_attempts=2, backoff_s=0.01, concurrency=4
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    make_media(root / "clip.mp4", MediaSpec(seconds=2, size=(160, 120)))
    make_media(root / "tall.mp4", MediaSpec(seconds=1, size=(96, 160)))
    make_media(root / "silent.mp4", MediaSpec(seconds=1, audio=None))
    make_media(root / "tone.m4a", MediaSpec(seconds=1, video=None, container="m4a"))
    (root / "zero.mp4").write_bytes(b"")
    (root / "corrupt.mp4").write_bytes(os.urandom(4096))
    (root / "nomedia.html").write_text("<html><body><p>No video here.</p></body></html>")
    return root


@pytest.fixture(scope="module")
def server(files: Path) -> Iterator[LoopbackServer]:
    with LoopbackServer(files, slow_s=3.0) as srv:
        yield srv


def dataset(tmp_path: Path, urls: dict[str, str]) -> Path:
    rows = [{"id": k, "url": v} for k, v in urls.items()]
    config = ManifestConfig(id_column="id")
    build_manifest([write_list(tmp_path / "urls.csv", rows)], tmp_path / "ds", config)
    return tmp_path / "ds"


def ledger(ds: Path) -> dict[str, dict[str, object]]:
    table = read_shards(ds / "ledger", "download")
    return {} if table is None else {r["sample_id"]: r for r in table.to_pylist()}


def leftovers(ds: Path) -> list[Path]:
    return [
        p for p in ds.rglob("*") if p.name.endswith((".part", ".tmp", ".ytdl")) or p.name == ".tmp"
    ]


def test_every_route_and_fault_ends_as_its_status(tmp_path: Path, server: LoopbackServer) -> None:
    urls = {
        "direct": server.url(Route.MEDIA, "clip.mp4"),
        "page": server.url(Route.PAGE, "clip.mp4"),
        "missing": server.url(Route.MISSING, "clip.mp4"),
        "bot": server.url(Route.BOT_CHECK, "clip.mp4"),
        "ratelimit": server.url(Route.RATE_LIMITED, "clip.mp4"),
        "error500": server.url(Route.SERVER_ERROR, "clip.mp4"),
        "slow": server.url(Route.SLOW, "clip.mp4"),
        "truncated": server.url(Route.TRUNCATED, "clip.mp4"),
        "nomedia": server.url(Route.MEDIA, "nomedia.html"),
        "zero": server.url(Route.MEDIA, "zero.mp4"),
        "corrupt": server.url(Route.MEDIA, "corrupt.mp4"),
        "silent": server.url(Route.MEDIA, "silent.mp4"),
        "badurl": "ftp://example.invalid/x.mp4",
    }
    ds = dataset(tmp_path, urls)
    summary = run_download(ds, FAST)
    rows = ledger(ds)
    assert {k: r["status"] for k, r in rows.items()} == {
        "direct": "ok",
        "page": "ok",
        "missing": "unavailable",
        "bot": "bot_check",
        "ratelimit": "rate_limited",
        "error500": "network_error",
        "slow": "timeout",
        "truncated": "network_error",
        "nomedia": "not_media",
        "zero": "decode_error",
        "corrupt": "decode_error",
        "silent": "no_audio",
    }  # the invalid URL never reaches the downloader: it has no ledger row
    assert summary.attempted == 12 and summary.by_status["ok"] == 2 and summary.candidates == 12
    assert (
        rows["ratelimit"]["attempts"] == 2 and rows["bot"]["attempts"] == 1
    )  # only retryable ones retry
    direct = rows["direct"]
    assert direct["media_path"] == "media/di/direct.mp4" and direct["format"] == "direct"
    assert (direct["width"], direct["height"], direct["has_audio"]) == (160, 120, True)
    assert (ds / "media" / "di" / "direct.mp4").read_bytes() == (
        server.root / "clip.mp4"
    ).read_bytes()
    assert (ds / "media" / "pa" / "page.mp4").exists()
    assert sorted(p.name for p in (ds / "media").rglob("*.mp4")) == ["direct.mp4", "page.mp4"]
    assert leftovers(ds) == []
    assert "HTTP Error 404" in str(rows["missing"]["detail"])


def test_rerun_skips_done_and_retry_reruns_only_those(
    tmp_path: Path, server: LoopbackServer
) -> None:
    ds = dataset(
        tmp_path,
        {
            "ok1": server.url(Route.MEDIA, "clip.mp4"),
            "rl": server.url(Route.RATE_LIMITED, "tall.mp4"),
        },
    )
    run_download(ds, FAST)
    again = run_download(ds, FAST)
    assert (again.attempted, again.skipped) == (0, 2)
    before = server.requests.count("/ratelimit/tall.mp4")
    retried = run_download(ds, _with(FAST, retry=("rate_limited",)))
    assert (retried.attempted, retried.skipped) == (1, 1)
    assert server.requests.count("/ratelimit/tall.mp4") == before + 2
    assert ledger(ds)["rl"]["status"] == "rate_limited"
    history = read_shards(ds / "ledger", "download", latest=False)
    # compacted at the end of the run: outside readers see the retried sample once
    assert history is not None and history.column("sample_id").to_pylist().count("rl") == 1


def _with(config: DownloadConfig, **changes: object) -> DownloadConfig:
    return replace(config, **changes)  # type: ignore[arg-type]


def test_audio_only_and_clip_sections(tmp_path: Path, server: LoopbackServer) -> None:
    rows = [{"id": "tone", "url": server.url(Route.MEDIA, "tone.m4a")}]
    build_manifest(
        [write_list(tmp_path / "u.csv", rows)], tmp_path / "ds", ManifestConfig(id_column="id")
    )
    summary = run_download(tmp_path / "ds", _with(FAST, audio_only=True))
    assert (
        summary.by_status == {"ok": 1} and (tmp_path / "ds" / "media" / "to" / "tone.m4a").exists()
    )
    tone = ledger(tmp_path / "ds")["tone"]  # the real container and codecs are recorded
    assert (tone["container"], tone["video_codec"], tone["audio_codec"]) == ("m4a", None, "aac")

    clip = [{"url": server.url(Route.MEDIA, "clip.mp4"), "start": "0.5", "end": "1.5"}]
    build_manifest(
        [write_list(tmp_path / "c.csv", clip)], tmp_path / "clips", MANIFEST_PRESETS["generic"]
    )
    run_download(tmp_path / "clips", FAST)
    (row,) = ledger(tmp_path / "clips").values()
    assert row["status"] == "ok" and str(row["sample_id"]).endswith("_00000500_00001500")
    assert float(row["media_duration_s"]) < 1.9  # only the section was kept


def test_full_disk_is_an_io_error_and_the_run_goes_on(
    tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = dataset(
        tmp_path,
        {"a": server.url(Route.MEDIA, "clip.mp4"), "b": server.url(Route.MEDIA, "tall.mp4")},
    )
    real_replace = os.replace

    def full(src: object, dst: object) -> None:
        if str(dst).endswith("a.mp4"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr("svm_toolkit.download.sample.os.replace", full)
    run_download(ds, FAST)
    rows = ledger(ds)
    assert rows["a"]["status"] == "io_error" and "No space left" in str(rows["a"]["detail"])
    assert rows["b"]["status"] == "ok" and leftovers(ds) == []


def test_circuit_breaker_stops_the_run_and_a_rerun_resumes(
    tmp_path: Path, server: LoopbackServer
) -> None:
    urls = {f"r{i}": server.url(Route.RATE_LIMITED, f"clip{i}.mp4") for i in range(6)}
    ds = dataset(tmp_path, urls)
    pauses: list[float] = []
    config = _with(
        FAST,
        concurrency=1,
        max_attempts=1,
        breaker_threshold=2,
        breaker_max_pauses=1,
        breaker_pause_s=30,
    )
    with pytest.raises(BreakerOpen, match="2 downloads in a row were refused"):
        run_download(ds, config, sleep=pauses.append)
    assert len([p for p in pauses if p > 1]) == 1  # one 30 s pause, then the stop
    done = ledger(ds)
    assert 0 < len(done) < 6  # what finished is kept; the rest is still to do
    resumed = run_download(ds, _with(config, breaker_threshold=10), sleep=pauses.append)
    assert resumed.attempted == 6 - len(done) and len(ledger(ds)) == 6


def placed(ds: Path) -> int:
    """Count media files placed so far (the downloader's scratch folder comes and goes)."""
    try:
        fans = [p for p in (ds / "media").iterdir() if p.name != ".tmp"]
        return sum(len(list(fan.glob("*.mp4"))) for fan in fans)
    except FileNotFoundError:
        return 0


def test_killed_runs_resume_to_exactly_once_and_identical_files(
    tmp_path: Path, server: LoopbackServer
) -> None:
    names = ["clip.mp4", "tall.mp4"] * 10
    urls = {f"v{i:02d}": server.url(Route.MEDIA, name) for i, name in enumerate(names)}
    ds = dataset(tmp_path, urls)
    (tmp_path / "cfg.yaml").write_text("commit_every_s: 0\nconcurrency: 2\n")
    command = [
        sys.executable,
        "-m",
        "svm_toolkit",
        "download",
        str(ds),
        "--config",
        str(tmp_path / "cfg.yaml"),
    ]
    for kill_after in (2, 7, 13):  # kill at several points
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while placed(ds) < kill_after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "download:" in final.stdout
    history = read_shards(ds / "ledger", "download", latest=False)
    assert history is not None
    ids = history.column("sample_id").to_pylist()
    assert sorted(ids) == sorted(urls)  # every sample exactly once
    assert set(history.column("status").to_pylist()) == {"ok"}
    for sample, name in zip(sorted(urls), names, strict=True):
        got = (ds / "media" / sample[:2] / f"{sample}.mp4").read_bytes()
        assert (
            hashlib.sha256(got).digest()
            == hashlib.sha256((server.root / name).read_bytes()).digest()
        )
    assert leftovers(ds) == []


def test_max_failure_rate_exits_3(tmp_path: Path, server: LoopbackServer) -> None:
    ds = dataset(
        tmp_path,
        {"a": server.url(Route.MISSING, "a.mp4"), "b": server.url(Route.MEDIA, "clip.mp4")},
    )
    command = [
        sys.executable,
        "-m",
        "svm_toolkit",
        "download",
        str(ds),
        "--max-failure-rate",
        "0.25",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 3
    assert "50% of this run's samples failed (limit 25%)" in result.stderr
    assert "download: 2 videos (0 done before): 1 ok, 1 unavailable" in result.stdout


def test_access_options_reach_ytdlp(tmp_path: Path) -> None:
    from svm_toolkit.download.fetch import ytdlp_options

    config = DownloadConfig(
        cookies="cookies.txt",
        cookies_from_browser="firefox",
        proxy="socks5://127.0.0.1:1080",
        sleep_interval_s=1.0,
        max_sleep_interval_s=3.0,
        ytdlp_options={"geo_bypass": True, "retries": 9},
    )
    options = ytdlp_options(config, tmp_path)
    assert options["cookiefile"] == "cookies.txt" and options["cookiesfrombrowser"] == ("firefox",)
    assert options["proxy"] == "socks5://127.0.0.1:1080"
    assert (options["sleep_interval"], options["max_sleep_interval"]) == (1.0, 3.0)
    assert options["geo_bypass"] is True and options["retries"] == 9  # pass-through wins
    assert options["format"].startswith("bv*[height<=?480][vcodec^=avc1]+ba[acodec^=mp4a]")
    assert options["merge_output_format"] == "mp4"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (
            OSError(errno.EHOSTUNREACH, "No route to host"),
            "network_error",
        ),  # has an errno, still network
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "network_error"),
        (TimeoutError("timed out"), "timeout"),
    ],
)
def test_network_errors_are_never_disk_errors(error: Exception, status: str) -> None:
    from svm_toolkit.download.fetch import _network
    from svm_toolkit.errors import SampleError

    with pytest.raises(SampleError) as caught, _network(FAST):
        raise error
    assert caught.value.status == status


def test_files_a_killed_run_placed_are_adopted_after_the_same_checks(
    tmp_path: Path, server: LoopbackServer
) -> None:
    urls = {
        "good": server.url(Route.MEDIA, "clip.mp4"),
        "page": server.url(Route.PAGE, "tall.mp4"),  # placed through yt-dlp
        "cut": server.url(Route.MEDIA, "tall.mp4"),
        "mute": server.url(Route.MEDIA, "clip.mp4"),
    }
    ds = dataset(tmp_path, urls)
    first = run_download(ds, FAST)
    assert first.by_status == {"ok": 4} and first.adopted == 0
    for shard in (ds / "ledger").glob("download*"):  # killed before any commit
        shard.unlink()
    media = ds / "media"
    cut = media / "cu" / "cut.mp4"
    cut.write_bytes(cut.read_bytes()[:300])  # unreadable: deleted, downloaded again
    mute = media / "mu" / "mute.mp4"
    mute.write_bytes((server.root / "silent.mp4").read_bytes())  # no audio: the same
    before = len(server.requests)
    resumed = run_download(ds, FAST)
    assert resumed.adopted == 2  # good and page, without a request
    assert resumed.attempted == 2 and resumed.by_status == {"ok": 2}
    assert "(0 done before, 2 adopted from media/)" in resumed.describe()
    assert sorted(server.requests[before:]) == ["/media/clip.mp4", "/media/tall.mp4"]
    rows = ledger(ds)
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(urls, "ok")
    good = rows["good"]
    assert good["detail"] == "adopted: found in media/ after an interrupted run"
    assert (good["format"], good["attempts"]) == ("adopted", 0)
    assert good["media_path"] == "media/go/good.mp4" and good["container"] == "mp4"
    assert (good["width"], good["height"], good["has_audio"]) == (160, 120, True)
    assert good["bytes"] == (server.root / "clip.mp4").stat().st_size
    assert rows["page"]["format"] == "adopted" and rows["page"]["height"] == 160
    for sample in ("cut", "mute"):
        assert rows[sample]["detail"] is None and rows[sample]["format"] == "direct"
    assert cut.read_bytes() == (server.root / "tall.mp4").read_bytes()
    assert mute.read_bytes() == (server.root / "clip.mp4").read_bytes()
    assert run_download(ds, FAST).attempted == 0  # and a re-run is a no-op
    assert leftovers(ds) == []


def test_a_file_is_adopted_only_for_a_sample_never_ok(
    tmp_path: Path, server: LoopbackServer
) -> None:
    ds = dataset(
        tmp_path,
        {"failed": server.url(Route.MISSING, "x.mp4"), "good": server.url(Route.MEDIA, "clip.mp4")},
    )
    assert run_download(ds, FAST).by_status == {"ok": 1, "unavailable": 1}
    # a --retry run placed the failed sample's file and was killed before its commit
    placed = ds / "media" / "fa" / "failed.mp4"
    placed.parent.mkdir(parents=True)
    placed.write_bytes((server.root / "clip.mp4").read_bytes())
    before = len(server.requests)
    retried = run_download(ds, _with(FAST, retry=("unavailable",)))
    assert (retried.adopted, retried.attempted) == (1, 0) and len(server.requests) == before
    assert ledger(ds)["failed"]["status"] == "ok"
    # a sample with an ok row in its history is never adopted (its file is an old download)
    layout = DatasetLayout(ds)
    jobs = [Job(s, "http://127.0.0.1/", "url") for s in ("failed", "good")]
    kept = adopt(jobs, layout, FAST, ever_ok={"failed", "good"})
    assert kept.results == [] and kept.jobs == jobs and placed.exists()
