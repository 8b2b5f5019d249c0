from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.errors import ConfigError, InputError
from svm_toolkit.manifest.readers import (
    PARQUET_BATCH_ROWS,
    ReadLimits,
    open_input,
    read_input,
    supported_suffixes,
)
from tests.manifest.helpers import ROWS, write_list

FORMATS = [".txt", ".csv", ".tsv", ".jsonl", ".json", ".parquet"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("gz", [False, True])
def test_every_format_reads_the_same_urls(tmp_path: Path, fmt: str, gz: bool) -> None:
    path = write_list(tmp_path / f"urls{fmt}{'.gz' if gz else ''}")
    table = read_input(path)
    assert [r.values["url"] for r in table.rows] == [r["url"] for r in ROWS]
    if fmt != ".txt":
        assert set(table.columns) == {"url", "likes", "theme"}
    assert table.rows[0].ref.startswith(path.name + ":")


def test_txt_line_numbers_skip_comments_and_blanks(tmp_path: Path) -> None:
    table = read_input(write_list(tmp_path / "urls.txt"))
    assert [r.ref for r in table.rows] == ["urls.txt:3", "urls.txt:4", "urls.txt:5", "urls.txt:6"]


def test_supported_suffixes() -> None:
    assert set(FORMATS) <= set(supported_suffixes())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.csv",
            "url,likes\nhttp://a/x,1\nhttp://a/y,2,3\n",
            r"bad.csv:3: 3 fields, the header has 2",
        ),
        ("bad.csv", 'url,likes\n"http://a/x,1\n', r"bad.csv:\d+: (malformed row|1 fields)"),
        ("dup.csv", "url,url\nhttp://a/x,http://a/y\n", r"dup.csv:1: the header row needs unique"),
        ("bad.tsv", "url\tlikes\nhttp://a/x\n", r"bad.tsv:2: 1 fields, the header has 2"),
        ("bad.jsonl", '{"url": "http://a/x"}\n{"url": \n', r"bad.jsonl:2: invalid JSON"),
        (
            "bad.jsonl",
            '{"url": "http://a/x"}\n["http://a/y"]\n',
            r"bad.jsonl:2: expected a JSON object",
        ),
        ("bad.json", '{"url": "http://a/x"}', r"expected a JSON array"),
        ("empty.csv", "", r"no rows"),
        ("header-only.csv", "url,likes\n", r"no rows"),
        ("comments.txt", "# nothing here\n\n", r"no rows"),
        ("urls.xlsx", "x", r"unknown format '.xlsx'"),
        ("noext", "x", r"unknown format '\(no suffix\)'"),
    ],
)
def test_malformed_input_names_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_input(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_input(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="not a file"):
        read_input(tmp_path)
    (tmp_path / "latin1.txt").write_bytes("http://a/caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_input(tmp_path / "latin1.txt")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="not a valid gzip"):
        read_input(tmp_path / "bad.csv.gz")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(b"url\nhttp://a/x\n")[:-8])
    with pytest.raises(InputError, match="not a valid gzip"):
        read_input(tmp_path / "cut.csv.gz")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 nope")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_input(tmp_path / "bad.parquet")


def test_rows_stream_again_from_the_start(tmp_path: Path) -> None:
    opened = open_input(write_list(tmp_path / "urls.jsonl.gz"))
    assert opened.columns == ("url", "likes", "theme")
    first, second = list(opened.rows()), list(opened.rows())
    assert first == second and len(first) == len(ROWS)


def test_parquet_is_read_in_batches_with_row_numbers(tmp_path: Path) -> None:
    n = PARQUET_BATCH_ROWS * 2 + 5
    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"url": [f"http://a/{i}" for i in range(n)]}), path)
    rows = list(open_input(path).rows())
    assert len(rows) == n
    assert rows[-1].ref == f"many.parquet:row {n}" and rows[-1].values["url"] == f"http://a/{n - 1}"
    assert open_input(path).types["url"] == pa.string()


def test_a_gzip_cut_short_mid_stream_names_the_file(tmp_path: Path) -> None:
    data = "".join(f"http://a/{i}\n" for i in range(200_000)).encode()
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(gzip.compress(data)[:100_000])
    opened = open_input(path)  # the header (none for txt) reads fine
    with pytest.raises(InputError, match=r"cut\.txt\.gz: not a valid gzip file"):
        list(opened.rows())


def test_a_line_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"url\nhttp://a/x\nhttp://a/caf\xe9\n")
    with pytest.raises(InputError, match=r"mixed\.csv:3: not UTF-8 text"):
        read_input(path)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_line_bytes must be >= 1"):
        ReadLimits(max_line_bytes=0)
