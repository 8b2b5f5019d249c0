"""Service down: when no request can connect, the run stops after a bounded number of attempts.

A real closed port on loopback (a socket bound, then closed: nothing listens there) stands for a
service that is down. `svm download` and the YT8M resolver stop after ``--max-connect-failures``
attempts in a row could not connect, with one message, instead of spending every sample's
retries; finished rows are committed and the samples not reached stay to do.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
from pathlib import Path

import pytest

from svm_toolkit.cli import main
from svm_toolkit.download import BreakerOpen, DownloadConfig, run_download
from svm_toolkit.download.fetch import Deadline, fetch_ytdlp
from svm_toolkit.download.pacing import ServiceDown, is_connect_failure
from svm_toolkit.engines import EngineConfig
from svm_toolkit.engines.ray_data import import_ray
from svm_toolkit.errors import SampleError
from svm_toolkit.testing import LoopbackServer, Route
from svm_toolkit.testing.yt8m import (
    Yt8mLookupStub,
    synthetic_videos,
    write_vocabulary,
    write_yt8m,
)
from svm_toolkit.yt8m import Layout
from svm_toolkit.yt8m.config import ResolveConfig
from svm_toolkit.yt8m.resolve import resolve_ids, resolved
from tests.faults.download_helpers import dataset, ledger, leftovers, svm_download


def closed_port() -> int:
    """A loopback port nothing listens on: bound by the OS, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fast_retries(tmp_path: Path) -> str:
    """A download config file with short pauses between tries (no test waits on backoff)."""
    path = tmp_path / "cfg.yaml"
    path.write_text("backoff_s: 0.01\nbackoff_max_s: 0.02\n")
    return str(path)


def test_download_stops_after_the_bound_keeps_what_finished_and_leaves_the_rest_to_do(
    tmp_path: Path, server: LoopbackServer, fast_retries: str
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    urls = {
        "a0": server.url(Route.MEDIA, "clip.mp4"),
        "a1": server.url(Route.MEDIA, "clip.mp4"),
        **{f"d{i:02d}": f"{dead}/v{i}.mp4" for i in range(30)},
    }
    ds = dataset(tmp_path, urls)
    one_at_a_time = ("--concurrency", "1", "--attempts", "3", "--config", fast_retries)

    stopped = svm_download(ds, *one_at_a_time, "--max-connect-failures", "6")

    assert stopped.returncode == 1, stopped.stderr
    (message,) = stopped.stderr.strip().splitlines()  # one clear line, no traceback
    assert message.startswith("error: 6 download attempts in a row could not connect (last: ")
    assert "Connection refused" in message
    assert "run the same command with --retry network_error to resume" in message
    rows = ledger(ds)
    # d00 and d01 spent their 3 attempts (6 in a row); d02 never started; the rest stay to do.
    assert {k: (r["status"], r["attempts"]) for k, r in rows.items()} == {
        "a0": ("ok", 1),
        "a1": ("ok", 1),
        "d00": ("network_error", 3),
        "d01": ("network_error", 3),
    }
    assert (ds / str(rows["a0"]["media_path"])).is_file()
    assert leftovers(ds) == []

    # Without the bound every sample is tried (the ones not reached were still to do), and the
    # finished ones are not downloaded again.
    rest = svm_download(ds, *one_at_a_time, "--max-connect-failures", "0", "--attempts", "1")
    assert rest.returncode == 0, rest.stderr
    rows = ledger(ds)
    assert len(rows) == len(urls)
    assert {k for k, r in rows.items() if r["status"] == "ok"} == {"a0", "a1"}
    assert rows["a0"]["attempts"] == 1


def test_the_default_bound_holds_under_concurrent_downloads(
    tmp_path: Path, fast_retries: str
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    ds = dataset(tmp_path, {f"d{i:03d}": f"{dead}/v{i}.mp4" for i in range(100)})
    config = DownloadConfig()

    stopped = svm_download(ds, "--concurrency", "8", "--config", fast_retries)

    assert stopped.returncode == 1
    assert f"{config.max_connect_failures} download attempts in a row" in stopped.stderr
    rows = ledger(ds)
    assert rows and all(r["status"] == "network_error" for r in rows.values())
    # The attempts that counted, plus at most one in flight per other download slot.
    attempts = sum(int(r["attempts"]) for r in rows.values())  # type: ignore[call-overload]
    assert attempts <= config.max_connect_failures + 8 - 1
    assert len(rows) < 100


def test_the_bound_is_shared_by_every_ray_download_actor(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    ds = dataset(tmp_path, {f"d{i:02d}": f"{dead}/v{i}.mp4" for i in range(40)})
    config = DownloadConfig(concurrency=2, max_attempts=1, backoff_s=0.01, max_connect_failures=4)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private instance: no tokens
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with pytest.raises(BreakerOpen, match=r"^4 download attempts in a row could not connect"):
            run_download(ds, config, engine=EngineConfig("ray", cpus_per_actor=0.5))
    finally:
        ray.shutdown()
    assert 0 < len(ledger(ds)) < 40  # the rest is still to do


def test_ytdlp_connect_failures_are_counted(tmp_path: Path) -> None:
    """A page URL goes to yt-dlp, which words a refused connection its own way (urllib3's)."""
    config = DownloadConfig(allow_private_hosts=True, socket_timeout_s=5)
    with pytest.raises(SampleError) as raised:
        fetch_ytdlp(
            f"http://127.0.0.1:{closed_port()}/watch?v=x", tmp_path, config, Deadline.after(30)
        )
    assert raised.value.status == "network_error"
    assert is_connect_failure(raised.value.status, raised.value.detail), raised.value.detail


def test_resolver_stops_keeps_answers_and_asks_the_rest_on_the_next_run(tmp_path: Path) -> None:
    answered = ["AB12", "CD34", "EF56"]
    stub = Yt8mLookupStub({pid: f"{pid}youtube0"[:11] for pid in answered})
    with stub:  # the service answers, then goes down: nothing listens on its port any more
        base = stub.base_url
        config = ResolveConfig(
            lookup_base=base, concurrency=1, max_attempts=2, backoff_s=0, max_connect_failures=5
        )
        assert {r.status for r in resolve_ids(answered, tmp_path, config).values()} == {"ok"}
    rest = [f"X{i:03d}" for i in range(30)]

    with pytest.raises(ServiceDown, match=r"^5 lookups in a row could not connect \(last: "):
        resolve_ids([*answered, *rest], tmp_path, config)

    rows = resolved(tmp_path)
    assert {pid: rows[pid].status for pid in answered} == dict.fromkeys(answered, "ok")
    # X000 and X001 spent their 2 tries each; X002 tried once (the fifth), then the run stopped.
    assert {pid: (r.status, r.attempts) for pid, r in rows.items() if pid not in answered} == {
        "X000": ("network_error", 2),
        "X001": ("network_error", 2),
    }
    with Yt8mLookupStub({pid: f"{pid}youtube0"[:11] for pid in rest}) as back:
        again = resolve_ids([*answered, *rest], tmp_path, ResolveConfig(lookup_base=back.base_url))
        assert sum(back.requests.values()) == len(rest)  # the answers kept are not asked again
    assert {r.status for r in again.values()} == {"ok"}


def test_manifest_yt8m_resolve_stops_with_one_message(tmp_path: Path) -> None:
    videos = synthetic_videos(30, labels=lambda i: (14,), seconds=1)
    write_yt8m(tmp_path / "video" / "train0000.tfrecord", videos, layout=Layout.VIDEO)
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", {14: "Music video"})
    args = ["manifest", "yt8m", str(tmp_path / "video"), "--vocabulary", str(vocab)]
    args += ["--resolve", "--lookup-base", f"http://127.0.0.1:{closed_port()}"]
    args += ["--concurrency", "1", "--max-connect-failures", "3", "-o", str(tmp_path / "ds")]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 1
    (message,) = err.getvalue().strip().splitlines()
    assert message.startswith("error: 3 lookups in a row could not connect (last: ")
    assert "run the same command again" in message
    assert not (tmp_path / "ds" / "manifest.parquet").exists()
