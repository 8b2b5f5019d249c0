"""A stored file never lies about its format: named by its real container, MP4 by stream copy.

Real files made by ffmpeg (lavfi), each served under a ``.mp4`` URL by the loopback server
(``Content-Type: video/mp4``) whatever it holds, downloaded by ``svm download`` on the direct
path and through yt-dlp's generic extractor; every stored file is opened again with PyAV.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import pyarrow.parquet as pq
import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.download import DownloadConfig, run_download
from svm_toolkit.download.adopt import adopt
from svm_toolkit.download.conform import MP4_FAMILY, conform, placed_media, read_layout
from svm_toolkit.download.sample import Job
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import committed_shards, read_shards
from svm_toolkit.manifest import MANIFEST_PRESETS, ManifestConfig, build_manifest
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.preprocess.runner import run_preprocess
from svm_toolkit.testing import LoopbackServer, Route
from tests.manifest.helpers import write_list

FAST = DownloadConfig(
    timeout_s=20, socket_timeout_s=2, max_attempts=1, backoff_s=0.01, concurrency=4
)
VIDEO = "testsrc2=size=96x64:rate=10:duration=1.5"
AUDIO = "sine=frequency=440:sample_rate=44100:duration=1.5"

#: served name -> (ffmpeg muxer, codec arguments): every one is served as a ``.mp4`` URL.
SERVED = {
    "mkv_h264_aac.mp4": ("matroska", ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]),
    "mkv_vp8_vorbis.mp4": ("matroska", ["-c:v", "libvpx", "-c:a", "libvorbis"]),
    "mkv_h264_vorbis.mp4": (
        "matroska",
        ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libvorbis"],
    ),
    "ogg_theora.mp4": ("ogg", ["-c:v", "libtheora", "-c:a", "libvorbis"]),
    "webm_vp9_opus.mp4": (
        "webm",
        ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"],
    ),
    "mov_cinepak.mp4": ("mov", ["-c:v", "cinepak", "-c:a", "pcm_s16le"]),
    "real.mp4": (
        "mp4",
        ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-movflags", "+faststart"],
    ),
}

#: served name -> (stored suffix, stored PyAV container, video codec, audio codec, ledger detail)
EXPECTED = {
    "mkv_h264_aac.mp4": (
        ".mp4", MP4_FAMILY, "h264", "aac", "remuxed to mp4 from matroska,webm (stream copy)"
    ),
    "mkv_vp8_vorbis.mp4": (".webm", "matroska,webm", "vp8", "vorbis", None),
    "mkv_h264_vorbis.mp4": (".mkv", "matroska,webm", "h264", "vorbis", None),
    "ogg_theora.mp4": (".ogg", "ogg", "theora", "vorbis", None),
    "webm_vp9_opus.mp4": (
        ".mp4", MP4_FAMILY, "vp9", "opus", "remuxed to mp4 from matroska,webm (stream copy)"
    ),
    "mov_cinepak.mp4": (".mov", MP4_FAMILY, "cinepak", "pcm_s16le", None),
    "real.mp4": (".mp4", MP4_FAMILY, "h264", "aac", None),
}  # fmt: skip

#: the sample id of each served file
IDS = {name: name.removesuffix(".mp4").replace("_", "") for name in SERVED}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    for name, (muxer, codecs) in SERVED.items():
        args = ["-v", "error", "-y", "-f", "lavfi", "-i", VIDEO, "-f", "lavfi", "-i", AUDIO,
                "-pix_fmt", "yuv420p", *codecs, "-f", muxer, str(root / name)]  # fmt: skip
        ffmpeg.run(args, timeout_s=60)
    return root


@pytest.fixture(scope="module")
def server(served: Path) -> Iterator[LoopbackServer]:
    with LoopbackServer(served) as srv:
        yield srv


def dataset(tmp_path: Path, urls: dict[str, str], name: str = "ds") -> Path:
    rows = [{"id": k, "url": v} for k, v in urls.items()]
    build_manifest(
        [write_list(tmp_path / f"{name}.csv", rows)],
        tmp_path / name,
        ManifestConfig(id_column="id"),
    )
    return tmp_path / name


def ledger(ds: Path) -> dict[str, dict[str, object]]:
    table = read_shards(ds / "ledger", "download")
    return {} if table is None else {r["sample_id"]: r for r in table.to_pylist()}


def opened(path: Path) -> tuple[str, str | None, str | None]:
    """(container, video codec, audio codec) as PyAV reads the file."""
    with av.open(str(path)) as container:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        return (
            container.format.name,
            video.codec_context.name if video else None,
            audio.codec_context.name if audio else None,
        )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_stored(ds: Path, served: Path, route: str) -> None:
    rows = ledger(ds)
    for name, (suffix, container, vcodec, acodec, detail) in EXPECTED.items():
        sid = IDS[name]
        row = rows[sid]
        assert row["status"] == "ok", (name, row["detail"])
        stored = ds / str(row["media_path"])
        assert stored.suffix == suffix, name
        assert placed_media(DatasetLayout(ds), sid) == [stored]  # nothing else of it
        assert opened(stored) == (container, vcodec, acodec), name
        assert read_layout(stored).suffix == suffix  # the name tells the container
        assert (row["container"], row["video_codec"], row["audio_codec"]) == (
            suffix.lstrip("."), vcodec, acodec
        )  # fmt: skip
        assert row["bytes"] == stored.stat().st_size
        if route == "direct":
            assert row["detail"] == detail, name
            if detail is None:  # kept: the bytes as served, no remux
                assert digest(stored) == digest(served / name), name


def test_direct_files_are_named_by_their_container_and_remuxed_where_mp4_holds_them(
    tmp_path: Path, served: Path, server: LoopbackServer
) -> None:
    ds = dataset(tmp_path, {IDS[n]: server.url(Route.MEDIA, n) for n in SERVED})
    summary = run_download(ds, FAST)
    assert summary.by_status == {"ok": len(SERVED)}
    check_stored(ds, served, "direct")
    # an mkv named .mp4 is never stored
    for path in (ds / "media").rglob("*.mp4"):
        assert opened(path)[0] == MP4_FAMILY
    # a remuxed file holds the same packets: same duration within a frame
    layout = DatasetLayout(ds)
    before = read_layout(served / "mkv_h264_aac.mp4")
    after = read_layout(layout.media_path(IDS["mkv_h264_aac.mp4"], ".mp4"))
    assert (before.video, before.audio, before.height) == (after.video, after.audio, after.height)
    # a re-run is a no-op, and adopt finds nothing to do
    assert run_download(ds, FAST).attempted == 0


def test_ytdlp_path_stores_true_names(tmp_path: Path, served: Path, server: LoopbackServer) -> None:
    """yt-dlp's generic extractor keeps the URL's ``mp4`` extension: the name is fixed after."""
    ds = dataset(tmp_path, {IDS[n]: server.url(Route.PAGE, n) for n in SERVED})
    summary = run_download(ds, FAST)
    assert summary.by_status == {"ok": len(SERVED)}
    check_stored(ds, served, "ytdlp")
    rows = ledger(ds)
    assert all(str(r["format"]) != "direct" for r in rows.values())
    # yt-dlp's merge_output_format mp4 merges separate streams only; a single file is as served
    assert rows[IDS["real.mp4"]]["detail"] is None


def test_sections_are_cut_into_their_real_container(tmp_path: Path, server: LoopbackServer) -> None:
    clips = [
        {"url": server.url(Route.MEDIA, n), "start": "0.2", "end": "1.2"}
        for n in ("mkv_vp8_vorbis.mp4", "ogg_theora.mp4", "mkv_h264_aac.mp4")
    ]
    build_manifest(
        [write_list(tmp_path / "c.csv", clips)], tmp_path / "clips", MANIFEST_PRESETS["generic"]
    )
    summary = run_download(tmp_path / "clips", FAST)
    assert summary.by_status == {"ok": 3}
    suffixes = sorted(
        Path(str(r["media_path"])).suffix for r in ledger(tmp_path / "clips").values()
    )
    assert suffixes == [".mp4", ".ogg", ".webm"]
    for row in ledger(tmp_path / "clips").values():
        path = tmp_path / "clips" / str(row["media_path"])
        assert read_layout(path).suffix == path.suffix
        assert float(row["media_duration_s"]) < 1.45  # only the section was kept


def test_transcode_flag_makes_h264_aac_mp4_at_most_max_height(
    tmp_path: Path, served: Path, server: LoopbackServer
) -> None:
    names = ("mkv_vp8_vorbis.mp4", "ogg_theora.mp4", "real.mp4")
    ds = dataset(tmp_path, {IDS[n]: server.url(Route.MEDIA, n) for n in names})
    env = {"SVM_ALLOW_PRIVATE_HOSTS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "svm_toolkit", "download", str(ds), "--transcode",
         "--max-height", "48", "--timeout", "30"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = ledger(ds)
    for name in names:
        row = rows[IDS[name]]
        stored = ds / str(row["media_path"])
        assert stored.suffix == ".mp4" and opened(stored) == (MP4_FAMILY, "h264", "aac")
        assert row["height"] == 48 and row["width"] == 72  # 96x64 scaled to 48 px, even width
        assert (
            row["detail"]
            == f"transcoded to H.264 + AAC mp4 from {read_layout(served / name).format_name}"
        )
    # a file already H.264 + AAC MP4 at most --max-height is kept as served
    kept = conform_copy(tmp_path, served / "real.mp4", replace(FAST, transcode=True))
    assert kept == ("kept", digest(served / "real.mp4"))


def conform_copy(tmp_path: Path, source: Path, config: DownloadConfig) -> tuple[str, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    path = scratch / "media.bin"
    path.write_bytes(source.read_bytes())
    stored = conform(path, config)
    return stored.action, digest(stored.path)


def test_adopt_finds_any_suffix_and_refuses_a_false_name(
    tmp_path: Path, served: Path, server: LoopbackServer
) -> None:
    urls = {
        "webm": server.url(Route.MEDIA, "mkv_vp8_vorbis.mp4"),
        "liar": server.url(Route.MEDIA, "mkv_h264_vorbis.mp4"),
        "nomux": server.url(Route.MEDIA, "mkv_h264_aac.mp4"),
    }
    ds = dataset(tmp_path, urls)
    media = ds / "media"
    placed = {
        media / "we" / "webm.webm": served / "mkv_vp8_vorbis.mp4",  # a killed run's: adopted
        media / "li" / "liar.mp4": served / "mkv_h264_vorbis.mp4",  # Matroska named .mp4
        media / "no" / "nomux.mkv": served / "mkv_h264_aac.mp4",  # MP4 codecs, not remuxed
    }
    for path, source in placed.items():
        path.parent.mkdir(parents=True)
        path.write_bytes(source.read_bytes())
    before = len(server.requests)
    summary = run_download(ds, FAST)
    assert (summary.adopted, summary.attempted) == (1, 2)
    assert sorted(server.requests[before:]) == [
        "/media/mkv_h264_aac.mp4", "/media/mkv_h264_vorbis.mp4"
    ]  # fmt: skip
    rows = ledger(ds)
    assert rows["webm"]["format"] == "adopted" and rows["webm"]["container"] == "webm"
    assert rows["webm"]["media_path"] == "media/we/webm.webm"
    assert rows["liar"]["media_path"] == "media/li/liar.mkv"
    assert rows["nomux"]["media_path"] == "media/no/nomux.mp4"
    assert not (media / "li" / "liar.mp4").exists() and not (media / "no" / "nomux.mkv").exists()
    layout = DatasetLayout(ds)
    # the files of "a" are never those of "a.b"
    (media / "we" / "webm.x.mp4").write_bytes(b"")
    assert placed_media(layout, "webm") == [media / "we" / "webm.webm"]
    again = adopt([Job("webm", urls["webm"], "url")], layout, FAST, ever_ok=set())
    assert [r.media_path for r in again.results] == ["media/we/webm.webm"]


def test_a_ledger_written_before_the_container_column_still_reads(
    tmp_path: Path, served: Path
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.mp4").write_bytes((served / "real.mp4").read_bytes())
    with LoopbackServer(folder) as srv:
        urls = {"a": srv.url(Route.MEDIA, "a.mp4"), "b": srv.url(Route.MEDIA, "late.mp4")}
        ds = dataset(tmp_path, urls)
        assert run_download(ds, FAST).by_status == {"ok": 1, "unavailable": 1}
        (shard,) = committed_shards(ds / "ledger", "download")
        old = pq.read_table(shard).drop_columns(["container", "video_codec", "audio_codec"])
        pq.write_table(old, shard)  # as an older version wrote it
        (folder / "late.mp4").write_bytes((served / "ogg_theora.mp4").read_bytes())
        summary = run_download(ds, replace(FAST, retry=("unavailable",)))
    assert (summary.skipped, summary.attempted) == (1, 1)
    rows = ledger(ds)
    assert rows["a"]["container"] is None and rows["a"]["media_path"] == "media/a_/a.mp4"
    assert rows["b"]["container"] == "ogg" and rows["b"]["media_path"] == "media/b_/b.ogg"


def test_preprocess_reads_every_stored_container_from_the_ledger(
    tmp_path: Path, server: LoopbackServer
) -> None:
    ds = dataset(tmp_path, {IDS[n]: server.url(Route.MEDIA, n) for n in SERVED})
    run_download(ds, FAST)
    config = PreprocessConfig(filters=FilterConfig(min_motion=None), mel=(), workers=1)
    assert run_preprocess(ds, config).by_status == {"ok": len(SERVED)}
    downloads = ledger(ds)
    table = read_shards(ds / "ledger", "preprocess")
    assert table is not None
    for row in table.to_pylist():
        assert row["media_path"] == downloads[row["sample_id"]]["media_path"]
        assert (row["crop_w"], row["crop_h"]) == (96, 64)
