"""Folders the toolkit writes, opened as they are by pandas, pyarrow, polars, DuckDB and HF.

The shard layout (:mod:`svm_toolkit.io.layout`) keeps everything but committed shards under
hidden names, so a plain folder read (or a ``*.parquet`` glob) sees exactly the committed rows:
these tests read real ``svm preprocess`` / ``svm extract`` outputs with each reader and compare
row counts, ids and vectors with our own :func:`~svm_toolkit.io.shards.read_shards`.

For other tests (a ``--retry`` run, a killed run, compaction): the module fixture
:func:`written` is a small real dataset (read it, never change it); :func:`dataset` is a fresh
copy of it to change; :func:`assert_readers_agree` runs every reader on one folder (or one
ledger stage) and checks it against ours.

Which readers keep float16 vectors: pyarrow, pandas (NumPy float16 arrays), polars
(``Float16``) and Hugging Face ``datasets`` (``Value('float16')``). DuckDB has no half type: it
reads float16 Parquet columns as ``FLOAT`` (float32, every value exactly widened).

polars reads a folder given as a glob (``folder/*.parquet``): given the folder itself, it reads
every non-empty file below it, hidden ones and ``.stats/`` included, and stops ("directory
contained paths with different file extensions"), as its message says.
"""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from svm_toolkit.cli import cli
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.runner import ledger_prefix, run_extract
from svm_toolkit.io.shards import committed_shards, read_shards, stats_path
from svm_toolkit.preprocess import run_preprocess
from svm_toolkit.schema import COL
from tests.io.test_compact import kill_when_paused
from tests.preprocess.test_stage import CONFIG as PREPROCESS
from tests.preprocess.test_stage import make_dataset

pd = pytest.importorskip("pandas")  # the readers are dev dependencies: never skipped in CI
pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")
datasets = pytest.importorskip("datasets")
pads = pytest.importorskip("pyarrow.dataset")

EXTRACTORS = ("efficientnet_lite0", "vmnet_music")
READERS = ("pandas", "pyarrow.dataset", "polars", "polars.scan", "duckdb", "datasets")
KEEPS_FLOAT16 = frozenset(READERS) - {"duckdb"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real dataset: download ledger, ``svm preprocess`` and ``svm extract`` outputs.

    Six videos (one corrupt), preprocessed with ImageBind Mel units, features of the two
    offline extractors (``efficientnet_lite0`` and ``vmnet_music``). Shared by the module:
    tests that change it take :func:`dataset`.
    """
    root = make_dataset(tmp_path_factory.mktemp("outside") / "ds")
    run_preprocess(root, PREPROCESS)
    run_extract(root, ExtractConfig(extractors=EXTRACTORS, device="cpu", workers=1, batch_size=5))
    return root


@pytest.fixture
def dataset(written: Path, tmp_path: Path) -> Path:
    """A copy of :func:`written` that a test may change."""
    return Path(shutil.copytree(written, tmp_path / "ds", symlinks=True))


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hugging Face ``datasets`` never reaches the network here."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def read_outside(reader: str, folder: Path, pattern: str, cache: Path) -> pa.Table:
    """Read a shard folder the way a user of ``reader`` would, as an Arrow table.

    Args:
        reader: one of :data:`READERS`.
        folder: the shard folder.
        pattern: ``"*.parquet"`` reads the folder itself where the reader takes folders
            (pandas, pyarrow.dataset, datasets' ``data_dir``); another glob (one ledger stage,
            ``preprocess-*.parquet``) is passed as a glob or as the files it matches.
        cache: a fresh folder for Hugging Face's cache.
    """
    whole = pattern == "*.parquet"
    glob = str(folder / pattern)
    files = [str(p) for p in sorted(folder.glob(pattern))]
    if reader == "pandas":
        frame = pd.read_parquet(folder if whole else files)
        return pa.Table.from_pandas(frame, preserve_index=False)
    if reader == "pyarrow.dataset":
        return pads.dataset(folder if whole else files).to_table()
    if reader == "polars":
        return pl.read_parquet(glob).to_arrow()
    if reader == "polars.scan":
        return pl.scan_parquet(glob).collect().to_arrow()
    if reader == "duckdb":
        return duckdb.sql(f"SELECT * FROM read_parquet('{glob}')").to_arrow_table()
    if reader == "datasets":
        where = {"data_dir": str(folder)} if whole else {"data_files": glob}
        loaded = datasets.load_dataset("parquet", **where, split="train", cache_dir=str(cache))
        return loaded.with_format("arrow")[:]
    raise ValueError(reader)


def leaf_type(kind: pa.DataType) -> pa.DataType:
    """The element type under any lists."""
    while (
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    ):
        kind = kind.value_type
    return kind


def by_id(table: pa.Table, column: str) -> dict[str, np.ndarray]:
    """Each row's value of a (nested) numeric column as float64, keyed by sample id."""
    ids = table.column(COL.sample_id).to_pylist()
    values = table.column(column).to_pylist()
    return {i: np.asarray(v, np.float64) for i, v in zip(ids, values, strict=True)}


def assert_readers_agree(
    folder: Path,
    prefix: str,
    cache: Path,
    *,
    vectors: tuple[str, ...] = (),
    readers: tuple[str, ...] = READERS,
) -> None:
    """Every outside reader sees exactly our committed rows of ``folder``/``prefix``.

    Exact row count, one row per sample, the ids we read, and for each of ``vectors`` the same
    values (and float16 kept by the readers that keep it). The folder must hold one row per
    sample (our newest-row rule is not theirs): a folder after ``--retry`` must be compacted.

    Args:
        folder: a shard folder written by the toolkit.
        prefix: its shard prefix (``part``; a ledger stage such as ``preprocess``).
        cache: a folder for Hugging Face's caches.
        vectors: columns whose values are compared.
        readers: the readers to run.
    """
    ours = read_shards(folder, prefix)
    everything = read_shards(folder, prefix, latest=False)
    assert ours is not None and everything is not None
    assert everything.num_rows == ours.num_rows, "our own reader sees duplicates"
    pattern = "*.parquet" if prefix == "part" else f"{prefix}-*.parquet"
    for reader in readers:
        seen = read_outside(reader, folder, pattern, cache / reader.replace(".", "_"))
        ids = seen.column(COL.sample_id).to_pylist()
        assert seen.num_rows == ours.num_rows, (reader, folder)
        assert len(set(ids)) == len(ids), (reader, "a sample appears twice")
        assert sorted(ids) == sorted(ours.column(COL.sample_id).to_pylist()), reader
        for column in vectors:
            kind = leaf_type(seen.schema.field(column).type)
            want = pa.float16() if reader in KEEPS_FLOAT16 else pa.float32()
            if leaf_type(ours.schema.field(column).type) == pa.float16():
                assert kind == want, (reader, column, kind)
            got, expected = by_id(seen, column), by_id(ours, column)
            for sample_id, value in expected.items():
                np.testing.assert_array_equal(got[sample_id], value, err_msg=reader)


# -- folders as the toolkit leaves them --------------------------------------------------------


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_feature_folders_read_the_same_everywhere(
    written: Path, tmp_path: Path, extractor: str
) -> None:
    folder = written / "features" / extractor
    assert (folder / ".stats").is_dir()  # the stats are there, hidden
    vectors = (COL.embedding, COL.embeddings, COL.timestamps_s)
    assert_readers_agree(folder, "part", tmp_path, vectors=vectors)


def test_preprocess_folders_read_the_same_everywhere(written: Path, tmp_path: Path) -> None:
    assert_readers_agree(written / "preprocess" / "fingerprints", "part", tmp_path / "prints")
    mel = written / "preprocess" / "mel_imagebind"
    assert_readers_agree(mel, "part", tmp_path / "mel", vectors=(COL.mel,))


@pytest.mark.parametrize(
    "stage", ["download", "preprocess", *(ledger_prefix(e) for e in EXTRACTORS)]
)
def test_each_ledger_stage_reads_the_same_everywhere(
    written: Path, tmp_path: Path, stage: str
) -> None:
    # The stages of one ledger folder have different columns: readers take one stage's glob.
    assert_readers_agree(written / "ledger", stage, tmp_path)


# -- what a killed writer leaves ---------------------------------------------------------------


def leave_killed_writer_leftovers(folder: Path, prefix: str = "part") -> None:
    """Add what a writer killed mid-commit leaves: a hidden temp shard, stats without a shard.

    The next shard index gets a complete hidden temp (killed after its stats, before the
    rename) and its stats; the one after a half-written temp and a half-written stats temp.
    """
    shards = committed_shards(folder, prefix)
    last = shards[-1]
    index = int(last.stem.rsplit("-", 1)[1]) + 1
    first, second = (f"{prefix}-{i:05d}" for i in (index, index + 1))
    shutil.copyfile(last, folder / f".{first}.parquet.tmp")
    shutil.copyfile(stats_path(last), folder / ".stats" / f"{first}.json")
    data = last.read_bytes()
    (folder / f".{second}.parquet.tmp").write_bytes(data[: len(data) // 2])
    (folder / ".stats" / f".{second}.json.tmp").write_text('{"rows": ')


def test_a_killed_writers_leftovers_are_invisible(dataset: Path, tmp_path: Path) -> None:
    folders = [dataset / "features" / e for e in EXTRACTORS]
    for folder in folders:
        leave_killed_writer_leftovers(folder)
    leave_killed_writer_leftovers(dataset / "ledger", ledger_prefix(EXTRACTORS[0]))
    for folder in folders:
        assert_readers_agree(folder, "part", tmp_path / folder.name, vectors=(COL.embedding,))
    assert_readers_agree(dataset / "ledger", ledger_prefix(EXTRACTORS[0]), tmp_path / "ledger")
    # A stage reopened (a re-run) removes them, leaving committed shards and their stats.
    run_extract(dataset, ExtractConfig(extractors=EXTRACTORS, device="cpu", workers=1))
    stage = ledger_prefix(EXTRACTORS[0])
    for folder, prefix in [*((f, "part") for f in folders), (dataset / "ledger", stage)]:
        assert not list(folder.rglob(f".{prefix}-*")), folder
        stats = sorted(p.stem for p in (folder / ".stats").glob(f"{prefix}-*"))
        assert stats == [p.stem for p in committed_shards(folder, prefix)]


# -- after a retry: compaction (svm_toolkit.io.compact) ----------------------------------------


def compacted_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("compacted ")]


def test_an_extractor_redone_is_one_row_per_sample_everywhere(
    dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # How ok videos are redone (REDO_OK): delete the features and run again. Every ok video
    # gets a second ledger row; the run compacts the ledger at its end.
    name = EXTRACTORS[0]
    stage = ledger_prefix(name)
    before = read_shards(dataset / "ledger", stage)
    assert before is not None
    shutil.rmtree(dataset / "features" / name)
    caplog.set_level("INFO", logger="svm_toolkit.io.compact")
    config = ExtractConfig(extractors=(name,), device="cpu", workers=1, batch_size=5)
    redone = run_extract(dataset, config)
    n = before.num_rows
    assert compacted_lines(caplog) == [
        f"compacted ledger/{stage}: {n + redone.attempted} -> {n} rows"
    ]
    assert_readers_agree(dataset / "ledger", stage, tmp_path / "ledger")
    vectors = (COL.embedding, COL.embeddings, COL.timestamps_s)
    assert_readers_agree(
        dataset / "features" / name, "part", tmp_path / "features", vectors=vectors
    )


def test_a_preprocess_retry_is_one_row_per_sample_everywhere(
    dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    statuses = read_shards(dataset / "ledger", "preprocess", columns=[COL.status])
    assert statuses is not None
    failed = sorted({s for s in statuses.column(COL.status).to_pylist() if s != "ok"})
    assert failed  # the corrupt video at least
    caplog.set_level("INFO", logger="svm_toolkit.io.compact")
    retried = run_preprocess(dataset, dataclasses.replace(PREPROCESS, retry=tuple(failed)))
    n = statuses.num_rows
    assert retried.attempted and compacted_lines(caplog) == [
        f"compacted ledger/preprocess: {n + retried.attempted} -> {n} rows"
    ]
    assert_readers_agree(dataset / "ledger", "preprocess", tmp_path / "ledger")
    assert_readers_agree(dataset / "preprocess" / "fingerprints", "part", tmp_path / "prints")


RETRY_THEN_COMPACT = textwrap.dedent(
    """
    import dataclasses, logging, sys
    from pathlib import Path
    from svm_toolkit.preprocess import run_preprocess
    from tests.preprocess.test_stage import CONFIG
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    run_preprocess(Path(sys.argv[1]), dataclasses.replace(CONFIG, retry=tuple(sys.argv[2:])))
    """
)


@pytest.mark.parametrize("step", ["written", "planned"])
def test_a_run_killed_while_compacting_then_svm_compact(
    dataset: Path, tmp_path: Path, step: str
) -> None:
    statuses = read_shards(dataset / "ledger", "preprocess", columns=[COL.status])
    assert statuses is not None
    failed = sorted({s for s in statuses.column(COL.status).to_pylist() if s != "ok"})
    # A real preprocess --retry run, SIGKILLed in its closing compaction (test hook: it pauses).
    kill_when_paused(
        [RETRY_THEN_COMPACT, str(dataset), *failed], step, cwd=Path(__file__).parents[2]
    )
    # Killed mid-swap: a sample's row may be there twice (pandas counts it), never missing.
    seen = pd.read_parquet([str(p) for p in sorted((dataset / "ledger").glob("preprocess-*"))])
    ours = read_shards(dataset / "ledger", "preprocess")
    assert ours is not None and ours.num_rows == statuses.num_rows
    assert set(seen[COL.sample_id]) == set(ours.column(COL.sample_id).to_pylist())
    assert len(seen) > ours.num_rows
    done = CliRunner().invoke(cli, ["compact", str(dataset)])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("compacted ledger/preprocess: ")
    assert not list((dataset / "ledger" / ".stats").glob("*.compact.json"))
    assert_readers_agree(dataset / "ledger", "preprocess", tmp_path / "ledger")
