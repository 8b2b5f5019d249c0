"""One URL cannot fill the disk: a per-file size cap, and a free-space guard that stops the run.

Real `svm download`, real yt-dlp, a loopback server with an endless body; the free-space guard
on a small tmpfs (when this user may mount one) and with a bound above what the disk has.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from svm_toolkit.download.limits import default_file_cap_mb
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from tests.faults.download_helpers import dataset, ledger, leftovers, svm_download


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    root = tmp_path_factory.mktemp("served")
    make_media(root / "clip.mp4", MediaSpec(seconds=1, size=(96, 64)))
    make_media(root / "big.mp4", MediaSpec(seconds=4, size=(320, 240)))
    with LoopbackServer(root) as srv:
        yield srv


def test_default_cap_follows_the_format() -> None:
    assert round(default_file_cap_mb(480)) == 2988  # (3 + 0.32) Mbit/s x 2 h
    assert round(default_file_cap_mb(360)) == 2988  # never below the 480p bound
    assert round(default_file_cap_mb(1080)) == round((3 * 2.25**2 + 0.32) * 7200 / 8)
    assert round(default_file_cap_mb(480, audio_only=True)) == 288


def test_endless_and_oversized_bodies_end_as_too_large_on_every_path(
    tmp_path: Path, server: LoopbackServer
) -> None:
    big = (server.root / "big.mp4").stat().st_size
    urls = {
        "ok": server.url(Route.MEDIA, "clip.mp4"),
        "endless": server.url(Route.ENDLESS, "x.mp4"),  # no Content-Length: bytes are counted
        "declared": server.url(Route.MEDIA, "big.mp4"),  # Content-Length above the cap
        "page_endless": server.url(Route.PAGE_TO, "/endless/x.mp4"),  # yt-dlp
    }
    ds = dataset(tmp_path, urls)
    cap_mb = max(0.05, (big - 1) / 1e6)
    assert (server.root / "clip.mp4").stat().st_size < cap_mb * 1e6 < big
    result = svm_download(ds, "--max-file-mb", f"{cap_mb}", "--timeout", "20")
    assert result.returncode == 0, result.stderr
    rows = ledger(ds)
    assert {k: r["status"] for k, r in rows.items()} == {
        "ok": "ok",
        "endless": "too_large",
        "declared": "too_large",
        "page_endless": "too_large",
    }
    for sample in ("endless", "declared", "page_endless"):
        assert rows[sample]["attempts"] == 1  # never retried
        assert "max-file-mb" in str(rows[sample]["detail"])
    assert [p.name for p in (ds / "media").rglob("*.mp4")] == ["ok.mp4"]
    assert leftovers(ds) == []
    again = svm_download(ds, "--max-file-mb", f"{cap_mb}")
    assert again.returncode == 0 and "0 videos (4 done before)" in again.stdout


def test_a_free_space_bound_above_the_disk_stops_the_run_cleanly(
    tmp_path: Path, server: LoopbackServer
) -> None:
    ds = dataset(tmp_path, {"a": server.url(Route.MEDIA, "clip.mp4")})
    result = svm_download(ds, "--min-free-gb", "1000000")
    assert result.returncode == 4
    assert str(ds / "media") in result.stderr and "--min-free-gb" in result.stderr
    assert "Traceback" not in result.stderr
    assert ledger(ds) == {} and leftovers(ds) == []


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    """A small tmpfs at ``path``; skips the test when this user may not mount one."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
        capture_output=True,
    )
    if mounted.returncode != 0 or shutil.which("umount") is None:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.mark.parametrize("endless", ["direct", "page"])
def test_the_guard_stops_a_run_on_a_small_disk_before_it_is_full(
    tmp_path: Path, server: LoopbackServer, endless: str
) -> None:
    with tmpfs(tmp_path / "disk", 96) as disk:
        route = "/endless/x.mp4"
        url = server.url(Route.ENDLESS, "x.mp4")
        if endless == "page":
            url = server.url(Route.PAGE_TO, route)
        urls = {"a": server.url(Route.MEDIA, "clip.mp4"), "b": server.url(Route.MEDIA, "clip.mp4")}
        ds = dataset(disk, {**urls, "z_endless": url})
        free = shutil.disk_usage(disk).free
        min_free_gb = (free - 40e6) / 1e9  # stop once ~40 MB more are used
        args = ("--min-free-gb", f"{min_free_gb:.4f}", "--concurrency", "1", "--timeout", "60")
        result = svm_download(ds, *args)
        assert result.returncode == 4, result.stderr
        assert "--min-free-gb" in result.stderr and str(ds / "media") in result.stderr
        assert {k: r["status"] for k, r in ledger(ds).items()} == {"a": "ok", "b": "ok"}
        assert leftovers(ds) == []  # the endless body's partial file is gone
        assert shutil.disk_usage(disk).free > min_free_gb * 1e9  # never below the bound at rest
        again = svm_download(ds, *args)  # the same bound: stops again, nothing written twice
        assert again.returncode == 4 and set(ledger(ds)) == {"a", "b"}
