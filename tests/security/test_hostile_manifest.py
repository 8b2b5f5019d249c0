"""A hostile or damaged ``manifest.parquet`` is refused on read, before any file operation.

Each manifest here has the right schema and provenance (it looks like ours), but one row holds
an id that would escape the dataset root, an unknown status, a bad URL, or the file is cut
short. Every stage that reads it must exit 2 naming the file, the row and the fix, and a
sentinel folder outside the dataset root must stay exactly as it was.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.cli import main
from svm_toolkit.errors import InputError
from svm_toolkit.manifest import read_manifest
from svm_toolkit.schema import COL, MANIFEST_SCHEMA, with_provenance

GOOD = "dQw4w9WgXcQ"
URL = "http://127.0.0.1:9/media/clip.mp4"  # discard port: nothing is ever fetched


def _row(sample_id: str | None, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        COL.sample_id: sample_id,
        COL.video_id: sample_id,
        COL.url: URL,
        COL.source: "url",
        COL.status: "ok",
    }
    row.update(values)
    return row


def write_manifest(dataset: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as a manifest that passes the schema and provenance checks."""
    dataset.mkdir(parents=True, exist_ok=True)
    schema = with_provenance(MANIFEST_SCHEMA, "manifest", {})
    fields = [f.with_nullable(True) for f in schema]  # a hostile writer ignores nullability
    table = pa.Table.from_pylist(rows, schema=pa.schema(fields, metadata=schema.metadata))
    path = dataset / "manifest.parquet"
    pq.write_table(table, path)
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content digest (folders as ``dir``)."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_svm(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in this process as ``svm`` does; return its exit code and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder beside the dataset that a path like ``media/.scratch/../../../victim`` reaches."""
    folder = tmp_path / "victim"
    (folder / "inner").mkdir(parents=True)
    (folder / "precious.txt").write_text("do not touch\n")
    (folder / "inner" / "data.bin").write_bytes(os.urandom(64))
    return folder


HOSTILE_IDS = [
    "../../../victim",
    "../../victim/precious.txt",
    "/tmp/victim",
    "media/../../victim",
    "..",
    ".hidden",
    "a\x00b",
    "a/b",
    "x" * 129,
    "",
]


@pytest.mark.parametrize("bad_id", HOSTILE_IDS, ids=repr)
def test_download_refuses_a_hostile_id_before_touching_anything(
    tmp_path: Path, victim: Path, bad_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "ds"
    path = write_manifest(dataset, [_row(GOOD), _row("ok_2"), _row(bad_id)])
    before = snapshot(victim)
    code, err = run_svm(["download", str(dataset), "--timeout", "2"], capsys)
    assert code == 2, err
    assert f"{path}: row 2: sample id" in err
    assert "svm manifest urls" in err and "--overwrite" in err
    assert repr(bad_id[:80]) in err
    assert snapshot(victim) == before
    assert not (dataset / "media").exists()
    assert not list(dataset.glob("ledger/*.parquet"))


def test_real_svm_download_process_refuses_the_escape(tmp_path: Path, victim: Path) -> None:
    """The exact attack of issue 17 item 1, as a user runs it (a real ``svm`` process)."""
    dataset = tmp_path / "ds"
    path = write_manifest(dataset, [_row(GOOD), _row("../../../victim")])
    before = snapshot(victim)
    env = {**os.environ, "SVM_ALLOW_PRIVATE_HOSTS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "svm_toolkit", "download", str(dataset), "--timeout", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"{path}: row 1: sample id '../../../victim' cannot be used" in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(victim) == before
    assert not (dataset / "media").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["manifest", "info"],
        ["preprocess"],
        ["extract"],
        ["splits", "make"],
    ],
    ids=lambda c: c[0] if len(c) == 1 else "-".join(c[:2]),
)
def test_other_stages_exit_2_and_leave_the_victim_alone(
    tmp_path: Path, victim: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``manifest info`` and ``splits make`` read the manifest and refuse its row; preprocess
    and extract start from the ledgers of the stage before (none here) and refuse to start."""
    dataset = tmp_path / "ds"
    write_manifest(dataset, [_row(GOOD), _row("../../../victim")])
    before = snapshot(victim)
    code, err = run_svm([*command, str(dataset)], capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert snapshot(victim) == before


def test_manifest_info_names_file_and_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(tmp_path / "ds", [_row(GOOD), _row("../x")])
    code, err = run_svm(["manifest", "info", str(tmp_path / "ds")], capsys)
    assert code == 2
    assert f"{path}: row 1: sample id '../x' cannot be used" in err


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([_row(GOOD), _row(None)], r"row 1: sample id None cannot be used: it is missing"),
        ([_row(GOOD), _row(GOOD)], r"rows 0, 1: sample id 'dQw4w9WgXcQ' appears 2 times"),
        (
            [_row(GOOD), _row("b", status="ok; rm -rf /")],
            r"row 1: status 'ok; rm -rf /' cannot be used: not a status",
        ),
        ([_row(GOOD, status="filtered")], r"row 0: status 'filtered' cannot be used"),
        ([_row(GOOD, source="../../etc")], r"row 0: source '../../etc' cannot be used"),
        (
            [_row(GOOD, url="file:///etc/passwd")],
            r"row 0: url 'file:///etc/passwd' cannot be used: a row with status 'ok' needs",
        ),
        ([_row(GOOD, url="http://a/b c")], r"row 0: url 'http://a/b c'"),
        ([_row(GOOD, url="https://a/" + "x" * 5000)], r"row 0: url 'https://a/xxx.*'\.\.\."),
        ([_row(GOOD, start_s=float("nan"))], r"row 0: start_s nan cannot be used"),
        ([_row(GOOD, end_s=-1.0)], r"row 0: end_s -1.0 cannot be used"),
        ([_row(GOOD, start_s=5.0, end_s=2.0)], r"row 0: end_s 2.0 cannot be used: the clip must"),
        (
            [_row(GOOD), _row("a/b"), _row("c/d")],
            r"row 1: sample id 'a/b' cannot be used: only letters.*\(2 bad rows in all\)",
        ),
    ],
)
def test_each_column_that_matters_is_checked(
    tmp_path: Path, rows: list[dict[str, Any]], message: str
) -> None:
    path = write_manifest(tmp_path, rows)
    with pytest.raises(InputError, match=message) as info:
        read_manifest(tmp_path)
    assert str(info.value).startswith(f"{path}: row")
    assert "svm manifest urls" in str(info.value)


def test_rows_that_are_not_fetched_may_keep_their_raw_url(tmp_path: Path) -> None:
    """``invalid_url`` rows keep the text the user gave; only ``ok`` rows are fetched."""
    write_manifest(
        tmp_path,
        [
            _row(GOOD),
            _row("u0123456789abcdef", status="invalid_url", url="ftp://x/café y"),
            _row("pseudo", status="unresolved", url=None, source="yt8m"),
            _row("clip_00001000_00002000", status="filtered:min_likes", start_s=1.0, end_s=2.0),
        ],
    )
    assert read_manifest(tmp_path).num_rows == 4


def test_a_large_manifest_is_checked_quickly(tmp_path: Path) -> None:
    """The checks are vectorised: 200,000 rows, one bad id near the end."""
    n = 200_000
    ids = [f"u{i:016x}" for i in range(n)]
    ids[-7] = "../escape"
    table = pa.table(
        {
            COL.sample_id: ids,
            COL.video_id: ids,
            COL.url: [URL] * n,
            COL.source: ["url"] * n,
            COL.status: ["ok"] * n,
        }
    )
    rows = table.to_pylist()
    write_manifest(tmp_path, rows)
    with pytest.raises(InputError, match=rf"row {n - 7}: sample id '../escape'"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_a_truncated_manifest_exits_2_naming_the_file_and_fix(
    tmp_path: Path, keep: float, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(tmp_path / "ds", [_row(f"id_{i}") for i in range(50)])
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    for command in (["manifest", "info"], ["download"]):
        code, err = run_svm([*command, str(tmp_path / "ds")], capsys)
        assert code == 2, err
        assert f"{path}: not a readable Parquet file" in err
        assert "restore it from a copy, or rebuild it with 'svm manifest urls" in err
        assert "Traceback" not in err


def test_damaged_bytes_inside_a_manifest_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(tmp_path / "ds", [_row(f"id_{i}") for i in range(50)])
    data = bytearray(path.read_bytes())
    data[4:40] = b"\xff" * 36  # the first column chunk
    path.write_bytes(bytes(data))
    code, err = run_svm(["manifest", "info", str(tmp_path / "ds")], capsys)
    assert code == 2, err
    assert f"{path}: not a readable Parquet file" in err


@pytest.mark.parametrize(
    "raw", [b"{not json", b"\xff\xfe", b"[1, 2]"], ids=["json", "not-utf8", "a-list"]
)
def test_damaged_provenance_exits_2(
    tmp_path: Path, raw: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ds" / "manifest.parquet"
    path.parent.mkdir()
    schema = MANIFEST_SCHEMA.with_metadata({b"svm_toolkit": raw})
    pq.write_table(pa.Table.from_pylist([_row(GOOD)], schema=schema), path)
    for command in (["manifest", "info"], ["download"]):
        code, err = run_svm([*command, str(tmp_path / "ds")], capsys)
        assert code == 2, err
        assert f"{path}: its svm_toolkit metadata is damaged" in err
        assert f"rebuild it with 'svm manifest urls LIST... -o {path.parent} --overwrite'" in err
        assert "Traceback" not in err


def test_manifest_info_on_a_truncated_splits_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "ds"
    write_manifest(dataset, [_row(GOOD), _row("b")])
    splits = dataset / "splits.parquet"
    pq.write_table(pa.table({COL.sample_id: [GOOD, "b"], COL.split: ["train", "test"]}), splits)
    assert run_svm(["manifest", "info", str(dataset)], capsys)[0] == 0
    splits.write_bytes(splits.read_bytes()[:-20])
    code, err = run_svm(["manifest", "info", str(dataset)], capsys)
    assert code == 2, err
    assert f"{splits}: not a readable Parquet file" in err
    assert f"svm splits make {dataset}" in err
