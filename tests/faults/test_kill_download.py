"""A kill costs only what was in flight: ``kill -9`` a 1,000-file ``svm download`` three times.

Each killed run placed finished files in ``media/`` whose ledger rows were still buffered (they
are committed every 10 s); the next run adopts those files without a request. The test counts
the server's requests per URL and checks that after each kill the only URLs asked for again are
the ones that had started and not finished when the kill came (at most ``--concurrency``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from svm_toolkit.io.shards import read_shards
from svm_toolkit.testing import LoopbackServer, MediaSpec, Route, make_media
from tests.faults.download_helpers import dataset, leftovers, svm_command

SAMPLES = 1_000
CONCURRENCY = 8
KILLS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    root = tmp_path_factory.mktemp("served")
    make_media(root / "clip.mp4", MediaSpec(seconds=1, size=(64, 48)))
    for i in range(SAMPLES):  # one small clip under 1,000 names
        os.link(root / "clip.mp4", root / f"v{i:04d}.mp4")
    with LoopbackServer(root) as srv:
        yield srv


def _present(ds: Path) -> set[str]:
    """Sample ids whose media file is in place."""
    return {p.stem for p in (ds / "media").glob("s*/*.mp4")}


def test_kill_9_costs_only_the_downloads_in_flight(tmp_path: Path, server: LoopbackServer) -> None:
    urls = {f"s{i:04d}": server.url(Route.MEDIA, f"v{i:04d}.mp4") for i in range(SAMPLES)}
    name_of = {sample: f"/media/v{sample[1:]}.mp4" for sample in urls}
    ds = dataset(tmp_path, urls)
    size = (server.root / "clip.mp4").stat().st_size
    command = svm_command(ds, "--concurrency", str(CONCURRENCY), "--per-host", str(CONCURRENCY))
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    requested: set[str] = set()  # every URL asked for so far
    redownloaded = 0
    in_flight: set[str] = set()  # asked for before the last kill, not in media/ after it
    for _ in range(KILLS):
        start = len(server.requests)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = rng.randint(40, 200)  # kill after this many new requests, plus a random delay
        deadline = time.monotonic() + 30
        while len(server.requests) - start < target and proc.poll() is None:
            assert time.monotonic() < deadline, f"the run made no progress (seed {seed})"
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill (seed {seed})"
        this_run = Counter(server.requests[start:])
        assert max(this_run.values()) == 1, "a URL was asked for twice in one run"
        again = set(this_run) & requested
        assert again <= in_flight, f"{len(again - in_flight)} finished files asked again ({seed})"
        redownloaded += len(again)
        requested |= set(this_run)
        present = _present(ds)
        in_flight = requested - {name_of[s] for s in present}
        assert len(in_flight) <= CONCURRENCY, (seed, sorted(in_flight))
    start = len(server.requests)
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    last_run = Counter(server.requests[start:])
    again = set(last_run) & requested
    assert again <= in_flight, f"{len(again - in_flight)} finished files asked again ({seed})"
    redownloaded += len(again)
    # the bytes downloaded again after all kills: at most what was in flight at each one
    assert redownloaded * size <= KILLS * CONCURRENCY * size
    assert sum(Counter(server.requests).values()) == SAMPLES + redownloaded  # nothing else
    history = read_shards(ds / "ledger", "download", latest=False)
    assert history is not None
    ids = history.column("sample_id").to_pylist()
    assert len(ids) == SAMPLES and set(ids) == set(urls)  # every sample exactly once
    assert set(history.column("status").to_pylist()) == {"ok"}
    details = Counter(history.column("detail").to_pylist())
    assert details["adopted: found in media/ after an interrupted run"] > 0  # the kills' files
    assert _present(ds) == set(urls)
    assert leftovers(ds) == []
