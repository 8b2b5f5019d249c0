"""A full disk between a stage's data and ledger commits: a re-run never writes a sample twice.

Item 8 of issue 17: ``svm extract`` hitting a full disk committed a feature shard without its
ledger rows, and the re-run wrote those samples again. Here the disk fills at chosen points of a
run (every shard write from the N-th on fails with ``ENOSPC`` once its bytes are written, as on
a full disk), then a plain re-run must leave what an uninterrupted run leaves: one feature
(fingerprint, Mel) row per sample and one ledger row per sample and stage. Where root may mount
a tmpfs here, one test fills a real, small file system instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from svm_toolkit.cli import main
from svm_toolkit.extract.runner import RECOVERED, ledger_prefix, run_extract
from svm_toolkit.io import shards
from svm_toolkit.io.shards import read_shards
from svm_toolkit.preprocess import run_preprocess
from svm_toolkit.schema import COL
from svm_toolkit.testing import MediaSpec, make_media
from tests.extract.test_runner import CONFIG as EXTRACT
from tests.extract.test_runner import NAMES
from tests.preprocess.test_stage import CONFIG as PREPROCESS
from tests.preprocess.test_stage import make_dataset

EVERY_VIDEO = dataclasses.replace(EXTRACT, commit_every_s=0.0)  # one commit per video
EVERY_SAMPLE = dataclasses.replace(PREPROCESS, commit_every_s=0.0)
PREPROCESS_DATA = ("preprocess/fingerprints", f"preprocess/mel_{PREPROCESS.mel[0]}")
EXTRACT_CLI = ["extract", "--device", "cpu", "--workers", "1", "--batch-size", "5"]


@contextlib.contextmanager
def disk_fills(at: int) -> Iterator[list[str]]:
    """From the ``at``-th atomic shard write on (1-based), every write fails with ENOSPC.

    A shard is two atomic writes, its Parquet file then (before that file's rename) the stats
    file that commits it: an odd ``at`` fails a shard's data, an even one its stats, so the data
    is never renamed into place. Yields the files written or tried (``folder/name``, the shard's
    folder for a stats file in its ``.stats/``), in order.
    """
    real = shards._atomic_path
    tried: list[str] = []

    @contextlib.contextmanager
    def filling(path: Path) -> Iterator[Path]:
        folder = path.parent.parent if path.parent.name == ".stats" else path.parent
        tried.append(f"{folder.name}/{path.name}")
        full = len(tried) >= at
        with real(path) as tmp:
            yield tmp
            if full:  # the bytes went out, the disk said no before the rename
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shards, "_atomic_path", filling)
        yield tried


def rows(directory: Path, prefix: str) -> Counter[str]:
    """Rows per sample id over every committed shard (every row, not only the newest)."""
    table = read_shards(directory, prefix, columns=[], latest=False)
    return Counter() if table is None else Counter(table.column(COL.sample_id).to_pylist())


def newest(directory: Path, prefix: str, column: str = COL.status) -> dict[str, object]:
    table = read_shards(directory, prefix, columns=[column])
    if table is None:
        return {}
    return dict(zip(table[COL.sample_id].to_pylist(), table[column].to_pylist(), strict=True))


def ok(statuses: dict[str, object]) -> set[str]:
    return {k for k, s in statuses.items() if s == "ok"}


# -- svm extract ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_dataset(tmp_path_factory.mktemp("disk_full") / "ds")
    run_preprocess(root, PREPROCESS)
    return root


@pytest.fixture(scope="module")
def extracted(preprocessed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run with the CLI's settings: what every interrupted run must end as."""
    root = shutil.copytree(preprocessed, tmp_path_factory.mktemp("reference") / "ds")
    run_extract(root, EXTRACT)
    return root


def assert_extract_agrees(root: Path, reference: Path) -> None:
    for name in NAMES:
        features = rows(root / "features" / name, "part")
        ledger = rows(root / "ledger", ledger_prefix(name))
        assert set(features.values()) == {1}, f"{name}: a sample has two feature rows"
        assert set(ledger.values()) == {1}, f"{name}: a sample has two ledger rows"
        statuses = newest(root / "ledger", ledger_prefix(name))
        assert statuses == newest(reference / "ledger", ledger_prefix(name))
        assert set(features) == ok(statuses)
    assert run_extract(root, EXTRACT).attempted == 0


@pytest.mark.parametrize(
    ("at", "orphans", "skipped"),
    [
        pytest.param(3, {NAMES[0]: 1}, 0, id="between-the-two-extractors-features"),
        pytest.param(6, {NAMES[0]: 1, NAMES[1]: 1}, 1, id="features-committed-ledger-not"),
        pytest.param(8, {NAMES[1]: 1}, 1, id="between-the-two-ledgers"),
        pytest.param(13, {NAMES[0]: 1, NAMES[1]: 1}, 2, id="second-video-ledger"),
    ],
)
def test_a_disk_full_extract_resumes_without_a_second_row(
    preprocessed: Path,
    extracted: Path,
    tmp_path: Path,
    at: int,
    orphans: dict[str, int],
    skipped: int,
) -> None:
    root = shutil.copytree(preprocessed, tmp_path / "ds")
    # Per video: each extractor's feature shard, then each extractor's ledger shard (8 writes).
    with disk_fills(at) as tried, pytest.raises(OSError, match="No space left"):
        run_extract(root, EVERY_VIDEO)
    failed = "ledger" if (at - 1) % 8 >= 4 else NAMES[(at - 1) % 8 // 2]
    assert tried[at - 1].startswith(f"{failed}/"), tried
    for name in NAMES:  # what the full disk left: feature rows without ledger rows
        held = rows(root / "features" / name, "part")
        recorded = rows(root / "ledger", ledger_prefix(name))
        assert len(set(held) - set(recorded)) == orphans.get(name, 0)
    resumed = run_extract(root, EXTRACT)
    assert resumed.skipped == skipped  # finished videos and recorded orphans are not redone
    assert_extract_agrees(root, extracted)
    details = newest(root / "ledger", ledger_prefix(NAMES[0]), COL.detail)
    assert sum(d == RECOVERED for d in details.values()) == orphans.get(NAMES[0], 0)


def test_a_retry_stopped_by_a_full_disk_keeps_one_feature_row(
    preprocessed: Path, extracted: Path, tmp_path: Path
) -> None:
    root = shutil.copytree(preprocessed, tmp_path / "ds")
    sample = sorted(ok(newest(root / "ledger", "preprocess")))[0]
    video = next((root / "media").rglob(f"{sample}.mp4"))
    good = video.read_bytes()
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    run_extract(root, EXTRACT)
    failed = {n: newest(root / "ledger", ledger_prefix(n))[sample] for n in NAMES}
    assert "ok" not in failed.values()
    video.write_bytes(good)
    retry = dataclasses.replace(EVERY_VIDEO, retry=tuple({str(s) for s in failed.values()}))
    with disk_fills(5), pytest.raises(OSError, match="No space left"):
        run_extract(root, retry)  # both feature rows committed, neither ledger row
    assert run_extract(root, EXTRACT).attempted == 0  # no --retry: the orphans are recorded
    for name in NAMES:
        assert rows(root / "features" / name, "part")[sample] == 1
        assert rows(root / "ledger", ledger_prefix(name))[sample] == 1  # compacted: the ok
        assert newest(root / "ledger", ledger_prefix(name)) == newest(
            extracted / "ledger", ledger_prefix(name)
        )


# -- a real full disk: a small tmpfs ---------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs mounted for the test (root only; skipped where mounting is refused)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "svm-test", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def pages(path: Path) -> int:
    """Bytes a file takes on a tmpfs: whole pages."""
    page = os.sysconf("SC_PAGE_SIZE")
    return -(-path.stat().st_size // page) * page


def fill(disk: Path, leave: int) -> Path:
    """Allocate a file so that only ``leave`` bytes stay free on ``disk``."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, stats.f_bavail * stats.f_frsize - leave)
    return filler


def test_extract_on_a_real_full_disk_resumes_without_a_second_row(
    preprocessed: Path,
    extracted: Path,
    small_disk: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = shutil.copytree(preprocessed, small_disk / "ds")
    folders = [extracted / "features" / name for name in NAMES]
    features = [p for f in folders for p in (*f.glob("part-*"), *f.glob(".stats/part-*"))]
    # Room for the feature shards and their stats (as the reference run wrote them) and one
    # page more: the ledger shards, written last, do not fit.
    filler = fill(small_disk, sum(map(pages, features)) + os.sysconf("SC_PAGE_SIZE"))
    with pytest.raises(SystemExit) as stopped:
        main([*EXTRACT_CLI, str(root)])
    assert stopped.value.code == 1
    assert "No space left on device" in capsys.readouterr().err
    for name in NAMES:  # the case: features committed, their ledger rows not
        assert rows(root / "features" / name, "part")
        assert not rows(root / "ledger", ledger_prefix(name))
    filler.unlink()
    with pytest.raises(SystemExit) as resumed:
        main([*EXTRACT_CLI, str(root)])
    assert resumed.value.code == 0
    assert_extract_agrees(root, extracted)


# -- svm preprocess -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("downloaded") / "ds")


@pytest.fixture(scope="module")
def preprocessed_once(downloaded: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = shutil.copytree(downloaded, tmp_path_factory.mktemp("preprocessed") / "ds")
    run_preprocess(root, PREPROCESS)
    return root


def assert_preprocess_agrees(root: Path, reference: Path) -> None:
    statuses = newest(root / "ledger", "preprocess")
    assert set(rows(root / "ledger", "preprocess").values()) == {1}
    assert statuses == newest(reference / "ledger", "preprocess")
    for folder in PREPROCESS_DATA:
        held = rows(root / folder, "part")
        assert set(held.values()) == {1}, f"{folder}: a sample has two rows"
        assert set(held) == ok(statuses)
    assert run_preprocess(root, PREPROCESS).attempted == 0


@pytest.mark.parametrize(
    ("at", "orphan"),
    [
        pytest.param(3, True, id="fingerprints-committed-mel-not"),
        pytest.param(5, True, id="data-committed-ledger-not"),
        pytest.param(12, True, id="second-sample-ledger-stats"),
        pytest.param(13, False, id="a-filtered-sample-ledger"),
    ],
)
def test_a_disk_full_preprocess_resumes_without_a_second_row(
    downloaded: Path, preprocessed_once: Path, tmp_path: Path, at: int, orphan: bool
) -> None:
    root = shutil.copytree(downloaded, tmp_path / "ds")
    # Per ok sample: fingerprints, Mel units, then the ledger (6 writes); 2 per filtered one.
    with disk_fills(at), pytest.raises(OSError, match="No space left"):
        run_preprocess(root, EVERY_SAMPLE)
    held = rows(root / PREPROCESS_DATA[0], "part")
    assert bool(set(held) - set(rows(root / "ledger", "preprocess"))) == orphan
    run_preprocess(root, PREPROCESS)
    assert_preprocess_agrees(root, preprocessed_once)


def test_a_preprocess_retry_stopped_by_a_full_disk_keeps_one_data_row(
    downloaded: Path, preprocessed_once: Path, tmp_path: Path
) -> None:
    root = shutil.copytree(downloaded, tmp_path / "ds")
    broken = root / "media" / "br" / "broken.mp4"
    run_preprocess(root, PREPROCESS)
    assert newest(root / "ledger", "preprocess")["broken"] == "decode_error"
    make_media(broken, MediaSpec(seconds=4, size=(160, 240)))
    retry = dataclasses.replace(EVERY_SAMPLE, retry=("decode_error",))
    with disk_fills(5), pytest.raises(OSError, match="No space left"):
        run_preprocess(root, retry)  # fingerprints and Mel committed, the ledger row not
    # No --retry: the ledger's decode_error stands (the data rows are not an orphan's: the
    # sample has a ledger row), and the same --retry again adds only the ledger row.
    assert run_preprocess(root, PREPROCESS).attempted == 0
    assert newest(root / "ledger", "preprocess")["broken"] == "decode_error"
    resumed = run_preprocess(root, dataclasses.replace(PREPROCESS, retry=("decode_error",)))
    assert (resumed.attempted, resumed.by_status) == (1, {"ok": 1})
    assert newest(root / "ledger", "preprocess")["broken"] == "ok"
    assert rows(root / "ledger", "preprocess")["broken"] == 1  # compacted: the ok row only
    for folder in PREPROCESS_DATA:
        held = rows(root / folder, "part")
        assert held["broken"] == 1 and set(held.values()) == {1}
    assert run_preprocess(root, PREPROCESS).attempted == 0


def test_an_orphan_redone_to_a_failure_is_not_redone_again(
    downloaded: Path, preprocessed_once: Path, tmp_path: Path
) -> None:
    """An orphan whose redo fails (here too_long, after lowering the bound) is done: re-runs are
    no-ops; a --retry with the old bound redoes it without a second data row."""
    root = shutil.copytree(downloaded, tmp_path / "ds")
    with disk_fills(5), pytest.raises(OSError, match="No space left"):
        run_preprocess(root, EVERY_SAMPLE)  # the first sample's data committed, its ledger not
    (orphan,) = set(rows(root / PREPROCESS_DATA[0], "part")) - set(
        rows(root / "ledger", "preprocess")
    )
    shorter = dataclasses.replace(PREPROCESS, max_media_s=2.0)  # the videos last 4 s
    redone = run_preprocess(root, shorter)
    assert redone.attempted == len(newest(root / "ledger", "preprocess"))
    assert newest(root / "ledger", "preprocess")[orphan] == "too_long"
    again = run_preprocess(root, shorter)
    assert (again.attempted, again.skipped) == (0, redone.attempted)
    retried = run_preprocess(root, dataclasses.replace(PREPROCESS, retry=("too_long",)))
    assert retried.attempted > 0
    assert newest(root / "ledger", "preprocess") == newest(
        preprocessed_once / "ledger", "preprocess"
    )
    for folder in PREPROCESS_DATA:
        held = rows(root / folder, "part")
        assert set(held.values()) == {1}, f"{folder}: a sample has two rows"
    assert run_preprocess(root, PREPROCESS).attempted == 0
