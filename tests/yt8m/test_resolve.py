from __future__ import annotations

from pathlib import Path

import pytest

from svm_toolkit.io.shards import read_shards
from svm_toolkit.testing.yt8m import FLAKY_YOUTUBE_ID, Answer, Yt8mLookupStub
from svm_toolkit.yt8m.config import ResolveConfig
from svm_toolkit.yt8m.resolve import lookup_url, resolve_ids, resolved

ANSWERS = {
    "AB12": "dQw4w9WgXcQ",
    "Gone": Answer.DELETED,
    "Slow": Answer.SLOW,
    "Err5": Answer.ERROR,
    "Junk": Answer.GARBAGE,
    "Flak": Answer.FLAKY,
}


@pytest.fixture
def stub():  # type: ignore[no-untyped-def]
    with Yt8mLookupStub(ANSWERS, slow_s=3.0) as server:
        yield server


def config(stub: Yt8mLookupStub) -> ResolveConfig:
    return ResolveConfig(
        lookup_base=stub.base_url, timeout_s=0.5, max_attempts=2, backoff_s=0.01, concurrency=4
    )


def test_lookup_url() -> None:
    assert lookup_url("http://data.yt8m.org/", "XE00") == "http://data.yt8m.org/2/j/i/XE/XE00.js"


def test_every_answer_becomes_a_status(tmp_path: Path, stub: Yt8mLookupStub) -> None:
    ids = [*ANSWERS, "Unkn"]
    got = resolve_ids(ids, tmp_path, config(stub))
    assert {pid: (r.status, r.youtube_id) for pid, r in got.items()} == {
        "AB12": ("ok", "dQw4w9WgXcQ"),
        "Gone": ("unavailable", None),
        "Unkn": ("unavailable", None),  # unknown ids answer 404 NoSuchKey
        "Slow": ("timeout", None),
        "Err5": ("network_error", None),
        "Junk": ("network_error", None),
        "Flak": ("ok", FLAKY_YOUTUBE_ID),  # retried after a 503
    }
    assert got["Err5"].attempts == 2 and got["Flak"].attempts == 2 and got["AB12"].attempts == 1
    assert "AccessDenied" in (got["Gone"].detail or "")
    assert "unexpected answer" in (got["Junk"].detail or "")
    ledger = read_shards(tmp_path / "ledger", "resolve")
    assert ledger is not None and sorted(ledger.column("sample_id").to_pylist()) == sorted(ids)


def test_final_answers_are_never_asked_twice(tmp_path: Path, stub: Yt8mLookupStub) -> None:
    ids = ["AB12", "Gone", "Err5"]
    resolve_ids(ids, tmp_path, config(stub))
    before = dict(stub.requests)
    again = resolve_ids(ids, tmp_path, config(stub))
    assert stub.requests["AB12"] == before["AB12"] == 1
    assert stub.requests["Gone"] == before["Gone"] == 1
    assert stub.requests["Err5"] == before["Err5"] + 2  # retryable: asked again (2 attempts)
    assert again["AB12"].youtube_id == "dQw4w9WgXcQ"
    assert resolved(tmp_path)["Err5"].status == "network_error"


def test_unreachable_lookup_is_a_network_error(tmp_path: Path) -> None:
    cfg = ResolveConfig(lookup_base="http://127.0.0.1:9", timeout_s=0.5, max_attempts=1)
    (result,) = resolve_ids(["AB12"], tmp_path, cfg).values()
    assert result.status == "network_error"
