"""Write the same URL list in every supported format."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROWS: list[dict[str, Any]] = [
    {"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "likes": "15000", "theme": "vlog"},
    {"url": "https://youtu.be/9bZkp7q19f0", "likes": "2.5M", "theme": "dance"},
    {
        "url": "https://www.tiktok.com/@cam/video/7301234567890123456",
        "likes": "1,200",
        "theme": "travel",
    },
    {"url": "http://127.0.0.1:8000/media/clip.mp4", "likes": "", "theme": "food"},
]


def write_list(path: Path, rows: list[dict[str, Any]] = ROWS) -> Path:
    """Write ``rows`` to ``path`` in the format its suffix names (``.gz`` compresses)."""
    suffixes = path.suffixes
    gz = suffixes[-1] == ".gz"
    fmt = suffixes[-2] if gz else suffixes[-1]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    if fmt == ".parquet":
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows), sink)
        data = sink.getvalue().to_pybytes()
        path.write_bytes(gzip.compress(data) if gz else data)
        return path
    if fmt == ".txt":
        text = "# my list\n\n" + "\n".join(r["url"] for r in rows) + "\n"
    elif fmt in (".csv", ".tsv"):
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, delimiter="," if fmt == ".csv" else "\t")
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    elif fmt == ".jsonl":
        text = "".join(json.dumps(r) + "\n" for r in rows)
    elif fmt == ".json":
        text = json.dumps(rows)
    else:
        raise ValueError(fmt)
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path
