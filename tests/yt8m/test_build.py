from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.io.shards import read_shards
from svm_toolkit.manifest import read_manifest
from svm_toolkit.schema import read_provenance
from svm_toolkit.testing.yt8m import (
    Answer,
    SyntheticVideo,
    Yt8mLookupStub,
    synthetic_videos,
    write_vocabulary,
    write_yt8m,
)
from svm_toolkit.yt8m import Layout, ResolveConfig, Yt8mConfig, build_yt8m_manifest, dequantize
from svm_toolkit.yt8m.tfrecord import RecordError, frame

VOCAB = {0: "Game", 3: "Concert", 4: "Musician", 7: "Car", 14: "Music video", 31: "Piano"}
# video i: 0,3,6,9: Music video; 1,4,7: Music video + Concert; 2,5,8: Game (+ Car)
LABELS = {0: (14,), 1: (14, 3), 2: (0, 7)}


def labels(i: int) -> tuple[int, ...]:
    return (14,) if i % 3 == 0 else LABELS[i % 3]


@pytest.fixture
def yt8m(tmp_path: Path) -> tuple[Path, Path, list[SyntheticVideo]]:
    videos = synthetic_videos(12, labels=labels, seconds=3)
    folder = tmp_path / "frame"
    write_yt8m(folder / "train0000.tfrecord", videos[:8], layout=Layout.FRAME)
    write_yt8m(folder / "validate0000.tfrecord", videos[8:], layout=Layout.FRAME)
    return folder, write_vocabulary(tmp_path / "vocabulary.csv", VOCAB), videos


def music_ids(videos: list[SyntheticVideo], wanted: set[int], match: str = "any") -> list[str]:
    keep = (lambda ls: bool(ls & wanted)) if match == "any" else (lambda ls: wanted <= ls)
    return [v.yt8m_id for v in videos if keep(set(v.labels))]


def test_default_selects_music_videos_and_leaves_them_unresolved(tmp_path: Path, yt8m) -> None:  # type: ignore[no-untyped-def]
    folder, vocab, videos = yt8m
    summary = build_yt8m_manifest([folder], vocab, tmp_path / "ds")
    rows = read_manifest(tmp_path / "ds").to_pylist()
    assert [r["sample_id"] for r in rows] == music_ids(videos, {14})
    assert (summary.files, summary.records, summary.samples) == (2, 12, 8)
    assert summary.labels == ("Music video",) and summary.by_status == {"unresolved": 8}
    first = rows[1]
    assert (first["source"], first["status"], first["url"], first["video_id"]) == (
        "yt8m",
        "unresolved",
        None,
        None,
    )
    assert first["labels"] == [14, 3] and first["label_names"] == ["Music video", "Concert"]
    assert first["input_ref"] == "train0000.tfrecord:#1" and first["yt8m_partition"] == "train"
    assert rows[-1]["yt8m_partition"] == "validate"
    meta = read_provenance(pq.read_schema(tmp_path / "ds" / "manifest.parquet"))
    assert meta["kind"] == "yt8m" and meta["vocabulary"]["file"] == "vocabulary.csv"


@pytest.mark.parametrize(
    ("config", "wanted", "match"),
    [
        (Yt8mConfig(labels=("Concert",)), {3}, "any"),
        (Yt8mConfig(labels=("14", "concert"), match="all"), {14, 3}, "all"),
        (Yt8mConfig(preset="music"), {3, 4, 14, 31}, "any"),
        (Yt8mConfig(labels=("Game",)), {0}, "any"),
    ],
)
def test_label_selection(
    tmp_path: Path, yt8m, config: Yt8mConfig, wanted: set[int], match: str
) -> None:  # type: ignore[no-untyped-def]
    folder, vocab, videos = yt8m
    summary = build_yt8m_manifest([folder], vocab, tmp_path / "ds", config)
    assert read_manifest(tmp_path / "ds").column("sample_id").to_pylist() == music_ids(
        videos, wanted, match
    )
    if config.preset == "music" and not config.labels:
        assert "Guitar" in summary.missing_labels  # preset names this vocabulary lacks are reported


def test_unknown_label_suggests(tmp_path: Path, yt8m) -> None:  # type: ignore[no-untyped-def]
    folder, vocab, _ = yt8m
    with pytest.raises(InputError, match="no label 'Musik video'; did you mean 'Music video'"):
        build_yt8m_manifest([folder], vocab, tmp_path / "ds", Yt8mConfig(labels=("Musik video",)))
    assert not (tmp_path / "ds").exists()


def test_resolution_against_the_stub(tmp_path: Path, yt8m) -> None:  # type: ignore[no-untyped-def]
    folder, vocab, videos = yt8m
    ids = music_ids(videos, {14})
    answers: dict[str, str | Answer] = {pid: f"yt{i:09d}" for i, pid in enumerate(ids)}
    answers[ids[0]] = Answer.DELETED
    answers[ids[1]] = Answer.ERROR
    with Yt8mLookupStub(answers) as stub:
        cfg = Yt8mConfig(
            resolve=ResolveConfig(lookup_base=stub.base_url, max_attempts=1, timeout_s=2)
        )
        summary = build_yt8m_manifest([folder], vocab, tmp_path / "ds", cfg)
        assert summary.by_status == {"ok": 6, "unavailable": 1, "network_error": 1}
        rows = {r["sample_id"]: r for r in read_manifest(tmp_path / "ds").to_pylist()}
        assert rows[ids[2]]["url"] == "https://www.youtube.com/watch?v=yt000000002"
        assert rows[ids[2]]["video_id"] == "yt000000002"
        assert rows[ids[0]]["url"] is None and "AccessDenied" in rows[ids[0]]["detail"]

        # Re-run: the ok and deleted ids are not asked again; the failed one is.
        asked = dict(stub.requests)
        again = build_yt8m_manifest([folder], vocab, tmp_path / "ds", cfg, overwrite=True)
        assert stub.requests[ids[2]] == asked[ids[2]] == 1 and stub.requests[ids[1]] == 2
        assert again.by_status == summary.by_status

    # Without --resolve, earlier lookups still fill the manifest.
    later = build_yt8m_manifest([folder], vocab, tmp_path / "ds")
    assert later.unchanged and later.by_status["ok"] == 6


def test_frame_features_are_dequantised_sequences(tmp_path: Path, yt8m) -> None:  # type: ignore[no-untyped-def]
    folder, vocab, videos = yt8m
    summary = build_yt8m_manifest([folder], vocab, tmp_path / "ds", Yt8mConfig(features=True))
    assert summary.features == {"yt8m_rgb": 8, "yt8m_audio": 8}
    by_id = {v.yt8m_id: v for v in videos}
    for name, attribute, dim in (("yt8m_rgb", "rgb", 1024), ("yt8m_audio", "audio", 128)):
        table = read_shards(tmp_path / "ds" / "features" / name, "part")
        assert table is not None and table.num_rows == 8
        vector = table.schema.field("embeddings").type.value_type
        assert (vector.list_size, vector.value_type) == (dim, pa.float16())
        row = table.to_pylist()[0]
        expected = dequantize(getattr(by_id[row["sample_id"]], attribute)).astype(np.float16)
        np.testing.assert_array_equal(np.asarray(row["embeddings"], dtype=np.float16), expected)
        assert row["timestamps_s"] == [0.0, 1.0, 2.0]
        meta = read_provenance(table.schema)
        assert (
            meta["extractor"] == name
            and meta["input_spec"]["dequantize"] == "x * 4/255 + (4/512 - 2)"
        )

    # A second run writes no feature row twice.
    build_yt8m_manifest([folder], vocab, tmp_path / "ds", Yt8mConfig(features=True))
    table = read_shards(tmp_path / "ds" / "features" / "yt8m_rgb", "part", latest=False)
    assert table is not None and table.num_rows == 8


def test_video_level_features_are_pooled_and_2017_ids_work(tmp_path: Path) -> None:
    videos = synthetic_videos(4, labels=lambda i: (9,), seconds=2)
    path = write_yt8m(tmp_path / "train00.tfrecord", videos, layout=Layout.VIDEO, id_key="video_id")
    vocab = write_vocabulary(
        tmp_path / "label_names.csv", {9: "Music video", 1: "Game"}, layout="2017"
    )
    build_yt8m_manifest([path], vocab, tmp_path / "ds", Yt8mConfig(features=True))
    table = read_shards(tmp_path / "ds" / "features" / "yt8m_audio", "part")
    assert table is not None and table.schema.field("embedding").type.list_size == 128
    got = np.asarray(table.to_pylist()[0]["embedding"], dtype=np.float16)
    np.testing.assert_array_equal(got, dequantize(videos[0].audio).mean(axis=0).astype(np.float16))

    # Mixing layouts in one dataset's features is refused.
    frames = write_yt8m(tmp_path / "frame00.tfrecord", videos, layout=Layout.FRAME)
    with pytest.raises(InputError, match="another layout"):
        build_yt8m_manifest(
            [frames], vocab, tmp_path / "ds", Yt8mConfig(features=True), overwrite=True
        )


def test_eleven_character_ids_need_no_lookup(tmp_path: Path) -> None:
    video = replace(synthetic_videos(1, labels=lambda i: (14,))[0], yt8m_id="dQw4w9WgXcQ")
    path = write_yt8m(tmp_path / "v.tfrecord", [video], layout=Layout.VIDEO, id_key="video_id")
    build_yt8m_manifest([path], write_vocabulary(tmp_path / "v.csv", VOCAB), tmp_path / "ds")
    (row,) = read_manifest(tmp_path / "ds").to_pylist()
    assert (row["status"], row["url"]) == ("ok", "https://www.youtube.com/watch?v=dQw4w9WgXcQ")


def test_globs_folders_and_bad_paths(tmp_path: Path, yt8m) -> None:  # type: ignore[no-untyped-def]
    folder, vocab, _ = yt8m
    by_glob = build_yt8m_manifest([str(folder / "train*.tfrecord")], vocab, tmp_path / "a")
    assert (by_glob.files, by_glob.records) == (1, 8)
    for bad, message in (
        (folder / "nope.tfrecord", "no such file"),
        (str(folder / "x*.tfrecord"), "matches no file"),
        (tmp_path / "ds0", "no such file"),
    ):
        with pytest.raises(InputError, match=message):
            build_yt8m_manifest([bad], vocab, tmp_path / "b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        InputError, match=r"no TFRecord files .*searched for \*.tfrecord, \*.tfrecords"
    ):
        build_yt8m_manifest([tmp_path / "empty"], vocab, tmp_path / "b")


def test_corrupt_record_names_file_and_record(tmp_path: Path, yt8m) -> None:  # type: ignore[no-untyped-def]
    folder, vocab, videos = yt8m
    bad = folder / "train0000.tfrecord"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) - 100])  # a truncated download: the last record is cut
    with pytest.raises(
        RecordError,
        match=r"train0000.tfrecord: record 7 \(byte offset \d+\): file ends inside the record"
        r".*; re-download the file, or pass --skip-bad-records to keep the 7 record\(s\) before",
    ) as err:
        build_yt8m_manifest([folder], vocab, tmp_path / "ds")
    assert str(err.value).startswith(f"{bad.absolute()}: record 7 (byte offset ")
    assert not (tmp_path / "ds" / "manifest.parquet").exists()

    summary = build_yt8m_manifest(
        [folder], vocab, tmp_path / "ds", Yt8mConfig(skip_bad_records=True)
    )
    assert (summary.bad_files, summary.skipped_records, summary.records) == (1, 1, 11)
    assert summary.samples == len(music_ids(videos[:7] + videos[8:], {14}))


def test_garbage_record_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "g.tfrecord"
    path.write_bytes(frame(b"\x0a\x05ab"))
    with pytest.raises(
        RecordError,
        match=rf"^{re.escape(str(path.absolute()))}: record 0 \(byte offset 0\): not a tf.train",
    ):
        build_yt8m_manifest([path], write_vocabulary(tmp_path / "v.csv", VOCAB), tmp_path / "ds")
