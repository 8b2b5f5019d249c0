"""Slow servers cannot hang `svm download`: every sample ends by its deadline, rows are committed.

Real `svm download` (a child process), real yt-dlp, a loopback server that trickles one byte a
second (body, or even the headers), directly or behind an HTML page.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from svm_toolkit.yt8m.config import ResolveConfig
from svm_toolkit.yt8m.resolve import resolve_ids
from tests.faults.download_helpers import (
    dataset,
    ledger,
    leftovers,
    svm_command,
    svm_download,
)

TIMEOUT_S = 3.0
#: A sample may end this much after --timeout: the poll and kill of the yt-dlp child, the
#: verification of a file, a loaded machine. An invariant bound, not a benchmark.
SLACK_S = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    root = tmp_path_factory.mktemp("served")
    make_media(root / "clip.mp4", MediaSpec(seconds=1, size=(96, 64)))
    with LoopbackServer(root, trickle_s=1.0) as srv:
        yield srv


def test_trickling_servers_end_at_the_deadline_and_finished_rows_are_committed_meanwhile(
    tmp_path: Path, server: LoopbackServer
) -> None:
    urls = {
        "ok1": server.url(Route.MEDIA, "clip.mp4"),
        "ok2": server.url(Route.MEDIA, "clip.mp4"),
        "body": server.url(Route.TRICKLE, "clip.mp4"),
        "headers": server.url(Route.TRICKLE_HEADERS, "clip.mp4"),
        "page_body": server.url(Route.PAGE_TO, "/trickle/clip.mp4"),
        "page_headers": server.url(Route.PAGE_TO, "/trickleheaders/clip.mp4"),
    }
    ds = dataset(tmp_path, urls)
    (tmp_path / "cfg.yaml").write_text("commit_every_s: 0.5\n")
    # The socket timeout stays at its default (20 s): only the deadline can end these samples.
    config = str(tmp_path / "cfg.yaml")
    command = svm_command(ds, "--timeout", f"{TIMEOUT_S:g}", "--attempts", "1", "--config", config)
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    committed_while_running = False
    while proc.poll() is None and time.monotonic() - started < 60:
        rows = ledger(ds) if (ds / "ledger").exists() else {}
        if {"ok1", "ok2"} <= set(rows) and "body" not in rows and proc.poll() is None:
            committed_while_running = True  # the timer committed them; trickles still hang
        time.sleep(0.1)
    _, err = proc.communicate(timeout=60)
    wall = time.monotonic() - started
    assert proc.returncode == 0, err
    assert committed_while_running
    rows = ledger(ds)
    assert {k: r["status"] for k, r in rows.items()} == {
        "ok1": "ok",
        "ok2": "ok",
        "body": "timeout",
        "headers": "timeout",
        "page_body": "timeout",
        "page_headers": "timeout",
    }
    for sample, row in rows.items():
        assert float(row["seconds"]) <= TIMEOUT_S + SLACK_S, (sample, row["seconds"])  # type: ignore[arg-type]
    assert "timed out after 3 s" in str(rows["headers"]["detail"])
    assert wall < 30  # the whole run: start-up, two waves of at most 3 s, commits
    assert leftovers(ds) == []
    again = svm_download(ds, "--timeout", f"{TIMEOUT_S:g}")
    assert again.returncode == 0 and "0 videos (6 done before)" in again.stdout


def test_the_timeout_holds_for_the_whole_sample_whatever_attempts_are_left(
    tmp_path: Path, server: LoopbackServer
) -> None:
    ds = dataset(tmp_path, {"body": server.url(Route.TRICKLE, "clip.mp4")})
    (tmp_path / "cfg.yaml").write_text("backoff_s: 0.2\n")
    config = str(tmp_path / "cfg.yaml")
    result = svm_download(ds, "--timeout", "2", "--attempts", "3", "--config", config)
    assert result.returncode == 0, result.stderr
    (row,) = ledger(ds).values()
    # the first attempt used the sample's whole deadline: no time was left for another
    assert row["status"] == "timeout" and row["attempts"] == 1
    assert float(row["seconds"]) <= 2 + SLACK_S  # type: ignore[arg-type]


def test_a_yt8m_lookup_that_trickles_ends_at_its_timeout(
    tmp_path: Path, server: LoopbackServer
) -> None:
    config = ResolveConfig(
        lookup_base=f"{server.base_url}/{Route.TRICKLE_HEADERS.value}",
        timeout_s=1.5,
        max_attempts=1,
    )
    started = time.monotonic()
    (result,) = resolve_ids(["XE00"], tmp_path, config).values()
    assert result.status == "timeout" and "1.5 s" in str(result.detail)
    assert time.monotonic() - started < 1.5 + SLACK_S


def _children(parent: int, marker: str) -> list[int]:
    """Live processes whose parent is ``parent`` and whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == parent and fields[0] != "Z" and marker in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_run_leaves_no_ytdlp_process(tmp_path: Path, server: LoopbackServer) -> None:
    ds = dataset(tmp_path, {"page": server.url(Route.PAGE_TO, "/trickle/clip.mp4")})
    proc = subprocess.Popen(
        svm_command(ds, "--timeout", "60"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not (children := _children(proc.pid, "ytdlp_child")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert children, "the yt-dlp child never started"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)
