from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.manifest.readers import read_input, supported_suffixes
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
