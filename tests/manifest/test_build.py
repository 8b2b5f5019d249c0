from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.errors import InputError, SchemaMismatchError
from svm_toolkit.manifest import MANIFEST_PRESETS, ManifestConfig, build_manifest, read_manifest
from svm_toolkit.schema import MANIFEST_SCHEMA, METADATA_KEY, read_provenance
from tests.manifest.helpers import ROWS, write_list

GENERIC = MANIFEST_PRESETS["generic"]
SVM10K = MANIFEST_PRESETS["svm10k"]


def manifest_rows(dataset: Path) -> list[dict[str, object]]:
    return read_manifest(dataset).to_pylist()


def files_in(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize(
    "name", ["l.txt", "l.csv", "l.tsv", "l.jsonl", "l.json", "l.parquet", "l.csv.gz", "l.jsonl.gz"]
)
def test_every_format_gives_the_same_samples(tmp_path: Path, name: str) -> None:
    summary = build_manifest([write_list(tmp_path / name)], tmp_path / "ds", GENERIC)
    assert summary.samples == 4
    ids = [r["sample_id"] for r in manifest_rows(tmp_path / "ds")]
    assert ids == ["dQw4w9WgXcQ", "9bZkp7q19f0", "7301234567890123456", ids[3]]
    assert ids[3].startswith("u") and len(ids[3]) == 17
    assert summary.by_source == {"youtube": 2, "tiktok": 1, "url": 1}


def test_manifest_schema_and_provenance(tmp_path: Path) -> None:
    src = write_list(tmp_path / "l.csv")
    build_manifest([src], tmp_path / "ds", SVM10K)
    schema = pq.read_schema(tmp_path / "ds" / "manifest.parquet")
    assert schema.names[: len(MANIFEST_SCHEMA)] == MANIFEST_SCHEMA.names
    meta = read_provenance(schema)
    assert meta["stage"] == "manifest" and meta["config"]["preset"] == "svm10k"
    assert meta["inputs"][0]["file"] == "l.csv" and len(meta["inputs"][0]["sha256"]) == 64


def test_url_forms_of_one_video_merge_and_are_counted(tmp_path: Path) -> None:
    rows = [
        {"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=3", "theme": "vlog"},
        {"url": "https://youtu.be/dQw4w9WgXcQ", "likes": "20000"},
        {"url": "https://www.youtube.com/shorts/dQw4w9WgXcQ", "theme": "other"},
        {"url": "https://m.youtube.com/watch?v=9bZkp7q19f0"},
    ]
    summary = build_manifest([write_list(tmp_path / "l.jsonl", rows)], tmp_path / "ds", GENERIC)
    assert (summary.rows_read, summary.samples, summary.duplicates_merged) == (4, 2, 2)
    first = manifest_rows(tmp_path / "ds")[0]
    assert first["theme"] == "vlog"  # first value wins
    assert first["likes"] == 20000  # gaps are filled from later rows
    assert first["input_ref"] == "l.jsonl:1"


def test_duplicates_across_files_merge(tmp_path: Path) -> None:
    a = write_list(tmp_path / "a.txt", [{"url": "https://youtu.be/dQw4w9WgXcQ"}])
    b = write_list(tmp_path / "b.csv", [{"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}])
    summary = build_manifest([a, b], tmp_path / "ds", GENERIC)
    assert (summary.samples, summary.duplicates_merged) == (1, 1)


def test_start_end_make_clips(tmp_path: Path) -> None:
    rows = [
        {"url": "https://youtu.be/dQw4w9WgXcQ", "start": "0:05", "end": "15"},
        {"url": "https://youtu.be/dQw4w9WgXcQ", "start": "20", "end": "30.5"},
        {"url": "https://youtu.be/dQw4w9WgXcQ", "start": "5", "end": "15"},  # same clip again
    ]
    summary = build_manifest([write_list(tmp_path / "l.csv", rows)], tmp_path / "ds", GENERIC)
    got = manifest_rows(tmp_path / "ds")
    assert [r["sample_id"] for r in got] == [
        "dQw4w9WgXcQ_00005000_00015000",
        "dQw4w9WgXcQ_00020000_00030500",
    ]
    assert {r["video_id"] for r in got} == {"dQw4w9WgXcQ"}
    assert (got[1]["start_s"], got[1]["end_s"]) == (20.0, 30.5)
    assert summary.duplicates_merged == 1


def test_svm10k_preset_maps_scraper_columns_and_prefilters(tmp_path: Path) -> None:
    rows = [
        {
            "webpage_url": "https://www.tiktok.com/@a/video/7301234567890123451",
            "diggCount": "25.1K",
            "search_term": "travel photography",
            "nickname": "Ann",
            "duration": "0:45",
            "music": "777",
            "views": 9,
        },
        {
            "webpage_url": "https://www.tiktok.com/@b/video/7301234567890123452",
            "diggCount": "9999",
            "duration": "20",
        },
        {
            "webpage_url": "https://www.tiktok.com/@c/video/7301234567890123453",
            "diggCount": "50000",
            "duration": "200",
        },
        {
            "webpage_url": "https://www.tiktok.com/@d/video/7301234567890123454",
            "duration": "30",
        },  # likes unknown
    ]
    config = replace(SVM10K, max_duration_s=180.0)
    summary = build_manifest([write_list(tmp_path / "l.jsonl", rows)], tmp_path / "ds", config)
    got = {r["sample_id"][-1]: r for r in manifest_rows(tmp_path / "ds")}
    assert got["1"]["status"] == "ok"
    assert (got["1"]["likes"], got["1"]["theme"], got["1"]["author"]) == (
        25100,
        "travel photography",
        "Ann",
    )
    assert (got["1"]["duration_s"], got["1"]["music_id"], got["1"]["views"]) == (45.0, "777", 9)
    assert got["2"]["status"] == "filtered:min_likes" and got["2"]["detail"] == "9999 likes < 10000"
    assert got["3"]["status"] == "filtered:max_duration"
    assert got["4"]["status"] == "ok" and got["4"]["author"] == "d"  # the @user of the URL
    assert summary.by_status == {"ok": 2, "filtered:min_likes": 1, "filtered:max_duration": 1}


def test_generic_preset_keeps_scraper_columns_as_extra(tmp_path: Path) -> None:
    rows = [{"url": "https://youtu.be/dQw4w9WgXcQ", "diggCount": "5", "caption": "x"}]
    build_manifest([write_list(tmp_path / "l.csv", rows)], tmp_path / "ds", GENERIC)
    row = manifest_rows(tmp_path / "ds")[0]
    assert row["likes"] is None and row["diggCount"] == "5" and row["caption"] == "x"


def test_invalid_urls_become_rows(tmp_path: Path) -> None:
    rows = [
        {"url": u}
        for u in ("ftp://x/y.mp4", "not a url", "http://", "https://youtu.be/dQw4w9WgXcQ")
    ]
    rows.append({"url": "", "theme": "a row whose URL is missing"})
    summary = build_manifest([write_list(tmp_path / "l.csv", rows)], tmp_path / "ds", GENERIC)
    got = manifest_rows(tmp_path / "ds")
    assert summary.by_status == {"invalid_url": 4, "ok": 1}
    bad = [r for r in got if r["status"] == "invalid_url"]
    assert all(r["video_id"] is None and "l.csv:" in r["detail"] for r in bad)
    assert len({r["sample_id"] for r in bad}) == 4


def test_id_column(tmp_path: Path) -> None:
    rows = [
        {"clip": "a-1", "url": "https://youtu.be/dQw4w9WgXcQ"},
        {"clip": "b-2", "url": "https://youtu.be/dQw4w9WgXcQ"},
    ]
    build_manifest(
        [write_list(tmp_path / "l.csv", rows)], tmp_path / "ds", replace(GENERIC, id_column="clip")
    )
    got = manifest_rows(tmp_path / "ds")
    assert [(r["sample_id"], r["video_id"]) for r in got] == [
        ("a-1", "dQw4w9WgXcQ"),
        ("b-2", "dQw4w9WgXcQ"),
    ]


@pytest.mark.parametrize("bad_id", ["../x", "/etc/passwd", "a\x00b", "x" * 200, "", ".hidden"])
def test_unsafe_ids_are_refused_with_their_line(tmp_path: Path, bad_id: str) -> None:
    rows = [
        {"id": "ok1", "url": "https://youtu.be/dQw4w9WgXcQ"},
        {"id": bad_id, "url": "https://youtu.be/9bZkp7q19f0"},
    ]
    before = files_in(tmp_path)
    with pytest.raises(InputError, match=r"l.jsonl:2: id .* cannot be used"):
        build_manifest(
            [write_list(tmp_path / "l.jsonl", rows)],
            tmp_path / "ds",
            replace(GENERIC, id_column="id"),
        )
    assert files_in(tmp_path) - before == {tmp_path / "l.jsonl"}  # nothing written, nowhere


@pytest.mark.parametrize(
    ("rows", "config", "message"),
    [
        ([{"address": "http://a/x"}], GENERIC, r"no URL column found .*--url-column"),
        (
            [{"url": "http://a/x"}],
            replace(GENERIC, url_column="href"),
            r"no column 'href' \(--url-column\); its columns are: url",
        ),
        (
            [{"url": "http://a/x"}],
            replace(GENERIC, id_column="key"),
            r"no column 'key' \(--id-column\)",
        ),
        (
            [{"url": "http://a/x", "start": "soon"}],
            GENERIC,
            r"l.csv:2: column 'start': 'soon' is not a time",
        ),
        (
            [{"url": "http://a/x", "start": "9", "end": "3"}],
            GENERIC,
            r"l.csv:2: clip end \(3.0 s\) must be after",
        ),
        (
            [{"url": "http://a/x", "likes": "lots"}],
            GENERIC,
            r"l.csv:2: column 'likes': 'lots' is not a count",
        ),
        (
            [{"url": "http://a/x", "split": "holdout"}],
            GENERIC,
            r"l.csv:2: column 'split': 'holdout' is not a split",
        ),
    ],
)
def test_bad_columns_and_values(
    tmp_path: Path, rows: list[dict[str, str]], config: ManifestConfig, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        build_manifest([write_list(tmp_path / "l.csv", rows)], tmp_path / "ds", config)
    assert not (tmp_path / "ds").exists()


def test_no_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no URL lists given"):
        build_manifest([], tmp_path / "ds", GENERIC)


def test_rerun_is_a_no_op_and_changes_need_overwrite(tmp_path: Path) -> None:
    src = write_list(tmp_path / "l.csv")
    first = build_manifest([src], tmp_path / "ds", GENERIC)
    mtime = first.path.stat().st_mtime_ns
    again = build_manifest([src], tmp_path / "ds", GENERIC)
    assert again.unchanged and first.path.stat().st_mtime_ns == mtime

    write_list(src, ROWS[:2])
    with pytest.raises(
        InputError,
        match=r"already holds 2 samples these inputs do not "
        r"\('7301234567890123456', 'u[0-9a-f]{16}'\); "
        r"pass --overwrite",
    ):
        build_manifest([src], tmp_path / "ds", GENERIC)
    assert len(manifest_rows(tmp_path / "ds")) == 4  # the old manifest is intact
    assert build_manifest([src], tmp_path / "ds", GENERIC, overwrite=True).samples == 2
    assert len(manifest_rows(tmp_path / "ds")) == 2
    assert not list((tmp_path / "ds").glob("*.tmp"))


def test_new_and_updated_rows_need_no_overwrite(tmp_path: Path) -> None:
    first = write_list(tmp_path / "a.csv", ROWS[:2])
    build_manifest([first], tmp_path / "ds", GENERIC)
    more = write_list(tmp_path / "b.csv", ROWS[2:])
    assert build_manifest([first, more], tmp_path / "ds", GENERIC).samples == 4
    write_list(first, [{**ROWS[0], "theme": "edited"}, ROWS[1]])
    build_manifest([first, more], tmp_path / "ds", GENERIC)
    assert manifest_rows(tmp_path / "ds")[0]["theme"] == "edited"


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no manifest; build one with 'svm manifest urls"):
        read_manifest(tmp_path)
    import pyarrow as pa

    pq.write_table(pa.table({"sample_id": ["a"]}), tmp_path / "manifest.parquet")
    with pytest.raises(SchemaMismatchError, match="not written by svm_toolkit"):
        read_manifest(tmp_path)
    meta = {METADATA_KEY: json.dumps({"schema_version": 1}).encode()}
    pq.write_table(
        pa.table({"sample_id": ["a"]}).replace_schema_metadata(meta), tmp_path / "manifest.parquet"
    )
    with pytest.raises(SchemaMismatchError, match="missing url"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_unreadable_existing_manifest(tmp_path: Path, overwrite: bool) -> None:
    src = write_list(tmp_path / "urls.csv")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "manifest.parquet").write_bytes(b"PAR1 cut short")
    if not overwrite:
        with pytest.raises(
            InputError, match=r"exists but is not a readable manifest .*--overwrite"
        ):
            build_manifest([src], tmp_path / "ds", GENERIC)
        return
    build_manifest([src], tmp_path / "ds", GENERIC, overwrite=True)
    assert len(manifest_rows(tmp_path / "ds")) == 4


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        (pa.array([1, 2]), "int64"),
        (pa.array([b"http://a/x", b"http://a/y"]), "binary"),
        (pa.array([{"href": "http://a/x"}, {"href": "http://a/y"}]), "struct<href: string>"),
        (pa.array([["http://a/x"], []]), "list<element: string>"),
    ],
    ids=["int", "binary", "struct", "list"],
)
def test_a_parquet_url_column_that_is_not_text_is_refused(
    tmp_path: Path, column: pa.Array, kind: str
) -> None:
    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"url": column, "likes": [1, 2]}), path)
    with pytest.raises(InputError) as info:
        build_manifest([path], tmp_path / "ds", GENERIC)
    message = str(info.value)
    assert message.startswith(f"{path}: URL column 'url' has type {kind}, not text")
    assert "--url-column" in message and "pa.string()" in message
    assert not (tmp_path / "ds" / "manifest.parquet").exists()


@pytest.mark.parametrize(
    ("column", "statuses"),
    [
        (pa.array(["http://a/x.mp4", "http://a/y.mp4"], pa.large_string()), {"ok": 2}),
        (pa.array(["http://a/x.mp4", "http://a/y.mp4"]).dictionary_encode(), {"ok": 2}),
        (pa.array([None, None], pa.null()), {"invalid_url": 1}),  # two empty URLs: one sample
    ],
    ids=["large_string", "dictionary", "null"],
)
def test_text_url_columns_of_other_encodings_are_read(
    tmp_path: Path, column: pa.Array, statuses: dict[str, int]
) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"url": column}), path)
    assert build_manifest([path], tmp_path / "ds", GENERIC).by_status == statuses


@pytest.mark.parametrize("value", [12345, 1.5, True, {"href": "http://a/x"}, ["http://a/x"]])
def test_a_json_url_that_is_not_a_string_names_its_row(tmp_path: Path, value: object) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"url": "http://a/x.mp4"}, {"url": value}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"^rows\.jsonl:2: column 'url' holds \w+ .*, not a URL"):
        build_manifest([path], tmp_path / "ds", GENERIC)


def test_lines_over_the_limit_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text("http://a/x.mp4\nhttp://a/" + "y" * 100 + "\n")
    config = replace(GENERIC, max_line_bytes=64)
    with pytest.raises(InputError, match=r"urls\.txt:2: line longer than 64 bytes"):
        build_manifest([path], tmp_path / "ds", config)
    path.write_text("http://a/x.mp4\nhttp://a/" + "y" * 54 + "\n")  # exactly 64 bytes + newline
    assert build_manifest([path], tmp_path / "ds", config).samples == 2


def test_inputs_are_described_in_the_provenance(tmp_path: Path) -> None:
    import hashlib

    src = write_list(tmp_path / "urls.csv.gz")
    build_manifest([src], tmp_path / "ds", GENERIC)
    meta = read_provenance(pq.read_schema(tmp_path / "ds" / "manifest.parquet"))
    assert meta["inputs"] == [
        {"file": "urls.csv.gz", "rows": 4, "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
    ]
