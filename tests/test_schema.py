from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from svm_toolkit import __version__
from svm_toolkit.errors import SchemaMismatchError
from svm_toolkit.schema import (
    LEDGER_SCHEMA,
    MANIFEST_SCHEMA,
    METADATA_KEY,
    SCHEMA_VERSION,
    LedgerRecord,
    ManifestRecord,
    Status,
    check_columns,
    feature_schema,
    filtered,
    parse_status,
    read_provenance,
    record_fields,
    records_to_table,
    table_to_records,
    with_provenance,
)


@pytest.mark.parametrize(
    ("cls", "schema"), [(ManifestRecord, MANIFEST_SCHEMA), (LedgerRecord, LEDGER_SCHEMA)]
)
def test_record_fields_match_arrow_schema(cls: type, schema: pa.Schema) -> None:
    fields = record_fields(cls)
    assert list(fields) == schema.names
    assert fields == {f.name: f.nullable for f in schema}


def test_status_strings() -> None:
    assert filtered("min_likes") == "filtered:min_likes"
    assert parse_status("filtered:min_likes") == (Status.FILTERED, "min_likes")
    assert parse_status("ok") == (Status.OK, None)
    for bad in ("filtered", "ok:extra", "nope", "filtered:Bad Reason"):
        with pytest.raises(ValueError):
            parse_status(bad)
    with pytest.raises(ValueError):
        filtered("has space")


def _records() -> list[ManifestRecord]:
    return [
        ManifestRecord(
            "dQw4w9WgXcQ",
            "dQw4w9WgXcQ",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "youtube",
            "ok",
            likes=12_000,
            theme="vlog",
            extra={"caption": "hi", "views": 3},
        ),
        ManifestRecord(
            "u0123456789abcdef",
            None,
            "ftp://x",
            "url",
            "invalid_url",
            detail="only http(s)",
            start_s=1.5,
            end_s=4.0,
            extra={"caption": None, "views": 7},
        ),
    ]


def test_records_table_parquet_round_trip(tmp_path: Path) -> None:
    records = _records()
    schema = with_provenance(MANIFEST_SCHEMA, "manifest", {"preset": "svm10k"}, inputs=["a.csv"])
    table = records_to_table(records, schema)
    assert table.column_names == [*MANIFEST_SCHEMA.names, "caption", "views"]
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)

    back = pq.read_table(path)
    assert table_to_records(back, ManifestRecord) == records
    meta = read_provenance(pq.read_schema(path), where=str(path))
    assert meta == {
        "schema_version": SCHEMA_VERSION,
        "toolkit_version": __version__,
        "stage": "manifest",
        "config": {"preset": "svm10k"},
        "inputs": ["a.csv"],
    }
    check_columns(back.schema, MANIFEST_SCHEMA, where="m")


def test_ledger_round_trip(tmp_path: Path) -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    rows = [
        LedgerRecord("a", "download", "ok", None, 1, when, 0.25),
        LedgerRecord("b", "download", "rate_limited", "HTTP Error 429", 3, when, 1.0),
    ]
    table = records_to_table(rows, LEDGER_SCHEMA)
    pq.write_table(table, tmp_path / "l.parquet")
    assert table_to_records(pq.read_table(tmp_path / "l.parquet"), LedgerRecord) == rows


def test_mixed_extra_values_become_json_text() -> None:
    records = [
        ManifestRecord("a", "a", "http://x/a", "url", "ok", extra={"tags": ["x", "y"]}),
        ManifestRecord("b", "b", "http://x/b", "url", "ok", extra={"tags": 5}),
    ]
    table = records_to_table(records, MANIFEST_SCHEMA)
    assert table.column("tags").to_pylist() == ['["x", "y"]', "5"]


@pytest.mark.parametrize("sequence", [False, True])
def test_feature_shards_open_with_pyarrow_dataset_and_pandas(
    tmp_path: Path, sequence: bool
) -> None:
    dim = 8
    schema = with_provenance(feature_schema(dim, sequence=sequence), "extract", extractor="dummy")
    vectors = np.arange(3 * dim, dtype=np.float16).reshape(3, dim)
    if sequence:
        data = {
            "sample_id": ["a", "b", "c"],
            "embeddings": [[v.tolist(), v.tolist()] for v in vectors],
            "timestamps_s": [[0.0, 1.0]] * 3,
        }
    else:
        data = {"sample_id": ["a", "b", "c"], "embedding": [v.tolist() for v in vectors]}
    table = pa.table(data, schema=schema)
    pq.write_table(table, tmp_path / "part-00000.parquet")

    column = "embeddings" if sequence else "embedding"
    assert ds.dataset(tmp_path).to_table().schema.field(column).type == schema.field(column).type
    frame = pd.read_parquet(tmp_path / "part-00000.parquet")
    first = np.asarray(frame[column][0][0] if sequence else frame[column][0], dtype=np.float16)
    np.testing.assert_array_equal(first, vectors[0])
    assert read_provenance(pq.read_schema(tmp_path / "part-00000.parquet"))["extractor"] == "dummy"


def test_feature_schema_types() -> None:
    assert feature_schema(4).field("embedding").type == pa.list_(pa.float16(), 4)
    with pytest.raises(ValueError):
        feature_schema(0)


def test_read_provenance_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaMismatchError, match="not written by svm_toolkit"):
        read_provenance(pa.schema([("a", pa.int32())]), where="x.parquet")
    old = pa.schema([("a", pa.int32())]).with_metadata({METADATA_KEY: b'{"schema_version": 0}'})
    with pytest.raises(SchemaMismatchError, match="schema version 0"):
        read_provenance(old, where="x.parquet")
    for raw in (b"{not json", b"\xff\xfe", b"[1, 2]"):  # damaged or crafted metadata
        bad = pa.schema([("a", pa.int32())]).with_metadata({METADATA_KEY: raw})
        with pytest.raises(SchemaMismatchError, match=r"x\.parquet: its 'svm_toolkit' metadata"):
            read_provenance(bad, where="x.parquet")


def test_check_columns_names_problems() -> None:
    wrong = pa.schema([("sample_id", pa.int64())])
    with pytest.raises(SchemaMismatchError, match=r"missing url.*sample_id \(int64"):
        check_columns(wrong, MANIFEST_SCHEMA, where="m.parquet")
