"""URL lists built to exhaust memory: ``svm manifest urls`` stays bounded and exits cleanly.

Each bomb is a small gzip file that expands to far more than the memory bound: a line of 4 GiB
without a newline, millions of copies of one line, JSON nested 10,000 deep, a ``.json`` or
``.parquet.gz`` larger than the whole-file limit. The bombs are gzip files of many members, each
the same compressed block (a valid gzip stream: members are concatenated), so building one takes
milliseconds. For the bombs, ``svm manifest urls`` runs as a real process through a small
wrapper that reports how far its peak resident memory (VmHWM) rose above what it held after
importing the CLI and the code ``manifest urls`` runs (VmRSS); the nesting and sample-count
limits, which need no memory figure, run the same CLI in this process.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from svm_toolkit.cli import main

MiB = 1 << 20

#: Most the CLI's peak RSS may rise over its RSS after import while it reads a bomb whose lines
#: are streamed (the line limit is 1 MiB, the Parquet batch and the csv field are smaller).
STREAMED_BOUND = 64 * MiB

_WRAPPER = """
import sys

def rss_kb(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(key)

import svm_toolkit.cli as cli
# The CLI loads a command's code when it runs: load what `manifest urls` runs on first, so the
# figure is what reading the input costs, not the imports.
import pandas, pyarrow.parquet, svm_toolkit.cli.manifest, svm_toolkit.manifest.build

base = rss_kb("VmRSS")
code = 0
try:
    cli.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
sys.stderr.write(f"\\nrss_growth_kb={rss_kb('VmHWM') - base}\\n")
sys.exit(code)
"""


def bomb(path: Path, head: bytes, block: bytes, copies: int, tail: bytes = b"") -> Path:
    """Write ``head + block * copies + tail`` as a gzip file without ever holding it whole."""
    member = gzip.compress(block, compresslevel=9)
    with path.open("wb") as out:
        out.write(gzip.compress(head))
        for _ in range(copies):
            out.write(member)
        out.write(gzip.compress(tail))
    return path


def manifest_urls(*args: str | Path) -> tuple[int, str, int]:
    """Run ``svm manifest urls ARGS``; return exit code, output and peak RSS growth (bytes)."""
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, "manifest", "urls", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r"rss_growth_kb=(-?\d+)", done.stderr)
    assert found, done.stderr
    return done.returncode, done.stdout + done.stderr, int(found.group(1)) * 1024


MiB_A = b"a" * MiB


@pytest.mark.parametrize(
    ("name", "head", "message"),
    [
        ("long.txt.gz", b"", r"long\.txt\.gz:1: line longer than 1,048,576 bytes"),
        ("long.csv.gz", b"url\n", r"long\.csv\.gz:2: line longer than 1,048,576 bytes"),
        ("long.jsonl.gz", b'{"url": "', r"long\.jsonl\.gz:1: line longer than 1,048,576 bytes"),
    ],
    ids=["txt", "csv", "jsonl"],
)
def test_a_4_gib_line_without_newline_is_refused_in_bounded_memory(
    tmp_path: Path, name: str, head: bytes, message: str
) -> None:
    """The issue's bomb: a 4 MB gzip that expands to 4 GiB without a newline."""
    path = bomb(tmp_path / name, head, MiB_A, copies=4096)
    assert path.stat().st_size < 8 * MiB
    code, err, growth = manifest_urls(path, "-o", tmp_path / "ds")
    assert code == 2, err
    assert re.search(message, err), err
    assert "--max-line-bytes" in err
    assert growth < STREAMED_BOUND, f"peak RSS rose {growth / MiB:.0f} MiB"
    assert not (tmp_path / "ds" / "manifest.parquet").exists()


def test_a_quoted_csv_field_over_many_lines_is_refused(tmp_path: Path) -> None:
    """Short lines, but one quoted field that never closes: csv's field limit stops it."""
    path = bomb(tmp_path / "open.csv.gz", b'url\n"', b"a\n" * (MiB // 2), copies=1024)
    code, err, growth = manifest_urls(path, "-o", tmp_path / "ds")
    assert code == 2, err
    assert re.search(r"open\.csv\.gz:\d+: malformed row \(field larger than field limit", err)
    assert growth < STREAMED_BOUND, f"peak RSS rose {growth / MiB:.0f} MiB"


def test_millions_of_copies_of_one_line_merge_as_they_stream(tmp_path: Path) -> None:
    """The issue's 134 M lines, scaled to 2 M: one sample, memory flat."""
    line = b"https://www.youtube.com/watch?v=dQw4w9WgXcQ\n"
    path = bomb(tmp_path / "same.txt.gz", b"# one video\n", line * 100_000, copies=20)
    code, err, growth = manifest_urls(path, "-o", tmp_path / "ds")
    assert code == 0, err
    assert "2,000,000 rows -> 1 samples (1,999,999 duplicates merged)" in err, err
    assert growth < STREAMED_BOUND, f"peak RSS rose {growth / MiB:.0f} MiB"
    table = pq.read_table(tmp_path / "ds" / "manifest.parquet")
    assert table.column("sample_id").to_pylist() == ["dQw4w9WgXcQ"]


def in_process(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """Run ``svm manifest urls ARGS`` in this process (no memory figure); exit code, output."""
    with pytest.raises(SystemExit) as exit_info:
        main(["manifest", "urls", *map(str, args)])
    out = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out.out + out.err


def test_the_number_of_distinct_samples_is_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"http://127.0.0.1/v/{i}.mp4\n" for i in range(1001)))
    code, err = in_process(capsys, path, "-o", tmp_path / "ds", "--max-samples", "1000")
    assert code == 2, err
    assert "many.txt:1001: more than 1,000 distinct samples" in err
    assert "--max-samples" in err
    code, err = in_process(capsys, path, "-o", tmp_path / "ds", "--max-samples", "1001")
    assert code == 0, err


@pytest.mark.parametrize(
    ("name", "head", "block", "tail"),
    [
        ("nested.json", b"", b"[" * 10_000, b"]" * 10_000),
        ("nested.jsonl", b'{"url": "http://a/x", "x": ', b"[" * 10_000, b"]" * 10_000 + b"}\n"),
        ("deep.jsonl", b'{"url": "http://a/x", "x": ', b"[" * 100, b"]" * 100 + b"}\n"),
        ("deep.json", b'[{"url": "http://a/x", "x": ', b"[" * 100, b"]" * 100 + b"}]"),
    ],
    ids=["json-10000", "jsonl-10000", "jsonl-100", "json-100"],
)
def test_json_nested_deeper_than_the_limit_exits_2(
    tmp_path: Path,
    name: str,
    head: bytes,
    block: bytes,
    tail: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / name
    path.write_bytes(head + block + tail)
    code, err = in_process(capsys, path, "-o", tmp_path / "ds")
    assert code == 2, err
    assert f"{name}" in err and "JSON nested deeper than 64 levels" in err, err
    assert "Traceback" not in err and "RecursionError" not in err


def test_ordinary_nesting_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = {"url": "http://a/x.mp4", "music": {"id": 7, "tags": [["a", "b"], {"c": [1, 2]}]}}
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps(row) + "\n")
    code, err = in_process(capsys, path, "-o", tmp_path / "ds")
    assert code == 0, err


@pytest.mark.parametrize(
    ("name", "head", "limit_mb", "bound_mb"),
    [
        ("big.json.gz", b"[", 16, 64),
        ("big.parquet.gz", b"PAR1", 16, 64),
        ("default.json.gz", b"[", None, 64 + 64),
    ],
    ids=["json-16", "parquet.gz-16", "json-default"],
)
def test_files_parsed_whole_are_refused_over_the_limit(
    tmp_path: Path, name: str, head: bytes, limit_mb: int | None, bound_mb: int
) -> None:
    """``.json`` and ``.parquet.gz`` cannot stream: they are read up to the limit, no further."""
    path = bomb(tmp_path / name, head, b" " * MiB, copies=1024)  # 1 GiB decompressed
    flags = [] if limit_mb is None else ["--max-whole-file-mb", str(limit_mb)]
    code, err, growth = manifest_urls(path, "-o", tmp_path / "ds", *flags)
    assert code == 2, err
    assert f"{path}: more than {limit_mb or 64} MiB" in err
    assert "--max-whole-file-mb" in err
    assert growth < bound_mb * MiB, f"peak RSS rose {growth / MiB:.0f} MiB"
