"""Label selection: repeated names, presets per vocabulary version, names with commas (issue 24).

Vocabularies are written in both real layouts: 2017 (``label_id,label_name``) and 2018 (the
9-column ``Index,TrainVideoCount,KnowledgeGraphId,Name,...`` header).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from svm_toolkit.cli import cli
from svm_toolkit.errors import InputError
from svm_toolkit.manifest import read_manifest
from svm_toolkit.testing.tf_train import tf_train_messages
from svm_toolkit.testing.yt8m import VOCABULARY_2018_COLUMNS, write_vocabulary
from svm_toolkit.yt8m import Yt8mConfig
from svm_toolkit.yt8m.build import select_labels
from svm_toolkit.yt8m.tfrecord import write_records
from svm_toolkit.yt8m.vocabulary import PRESET_LABELS, detect_version, load_vocabulary

LAYOUTS = ["2017", "2018"]
#: A 2017-style excerpt: "Drums" twice (as in the real file, 39 and 44), no "Drum kit"/"Drum".
VOCAB_2017 = {3: "Concert", 7: "Musician", 9: "Music video", 39: "Drums", 44: "Drums", 76: "Ball"}
#: A 2018-style excerpt with a comma in a name (as in the real 2018 file, index 271).
VOCAB_2018 = {
    3: "Concert",
    14: "Music video",
    28: "Drum kit",
    33: "Drum",
    97: "Violin",
    271: "Nike, Inc.",
}
REPEAT_NOTE = "'Drums' is 2 labels in this vocabulary (39, 44): both selected"


def vocabulary(tmp_path: Path, labels: dict[int, str], layout: str) -> Path:
    return write_vocabulary(tmp_path / f"vocabulary-{layout}.csv", labels, layout=layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_repeated_name_selects_every_index_and_says_so(
    tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    vocab = load_vocabulary(vocabulary(tmp_path, VOCAB_2017, layout))
    with caplog.at_level(logging.WARNING):
        assert vocab.resolve(["drums", "Concert"]) == (39, 44, 3)
    assert [r.getMessage() for r in caplog.records] == [REPEAT_NOTE]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert vocab.resolve(["44"]) == (44,)  # an index is only itself
    assert not caplog.records
    assert vocab.indices("Drums") == (39, 44) and vocab.lookup("Drums") == 39


@pytest.mark.parametrize("layout", LAYOUTS)
def test_three_repeats_say_all(
    tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    vocab = load_vocabulary(vocabulary(tmp_path, {1: "Ball", 5: "Ball", 8: "Ball"}, layout))
    with caplog.at_level(logging.WARNING):
        assert vocab.resolve(["Ball"]) == (1, 5, 8)
    assert caplog.records[0].getMessage() == (
        "'Ball' is 3 labels in this vocabulary (1, 5, 8): all 3 selected"
    )


def test_the_music_preset_in_a_2017_vocabulary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vocab = load_vocabulary(vocabulary(tmp_path, VOCAB_2017, "2017"))
    assert vocab.version == "2017"
    with caplog.at_level(logging.INFO):
        wanted, missing = select_labels(vocab, Yt8mConfig(preset="music"))
    assert wanted == (9, 3, 7, 39, 44)  # "Drum kit" and "Drum" are both "Drums" in 2017
    assert "Drum kit" not in missing and "Drum" not in missing
    assert missing[:3] == ("Guitar", "String instrument", "Musical ensemble")
    assert "Violin" in missing and len(missing) == len(PRESET_LABELS["music"]) - 5
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count(REPEAT_NOTE) == 1
    assert "vocabulary-2017.csv: 'Drum kit' is 'Drums' in this vocabulary" in messages


def test_the_music_preset_in_a_2018_vocabulary(tmp_path: Path) -> None:
    vocab = load_vocabulary(vocabulary(tmp_path, VOCAB_2018, "2018"))
    assert vocab.version == "2018"
    wanted, missing = select_labels(vocab, Yt8mConfig(preset="music"))
    assert wanted == (14, 3, 28, 33, 97)
    assert "Drums" not in missing and "Concert" not in missing and "Marching band" in missing


def test_the_2018_file_is_matched_by_knowledge_graph_id(tmp_path: Path) -> None:
    """A renamed label is still found by its KG id; a name alone with another id is not needed."""
    path = tmp_path / "vocabulary.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(VOCABULARY_2018_COLUMNS)
        writer.writerow([14, 10, "/m/0mdxd", "Music videos (renamed)", "", "Arts", "", "", ""])
        writer.writerow([97, 10, "/m/07y_7", "Violin family", "", "Arts", "", "", ""])
        writer.writerow([164, 10, "/m/09x9g", "Marching band", "", "Arts", "", "", ""])
        writer.writerow([324, 10, "/m/0263qsk", "Festival of music", "", "Arts", "", "", ""])
    vocab = load_vocabulary(path)
    assert vocab.kg_ids[97] == "/m/07y_7"
    wanted, missing = select_labels(vocab, Yt8mConfig(preset="music"))
    assert wanted == (14, 97, 164, 324)
    assert "Violin" not in missing and "Concert" in missing
    assert select_labels(vocab, Yt8mConfig()) == ((14,), ())


def test_a_preset_with_no_label_in_the_vocabulary_is_an_error(tmp_path: Path) -> None:
    vocab = load_vocabulary(vocabulary(tmp_path, {0: "Game", 1: "Car"}, "2017"))
    with pytest.raises(InputError, match=r"none of the 'music_video' labels .*: Music video$"):
        select_labels(vocab, Yt8mConfig())


@pytest.mark.parametrize(
    ("columns", "rows", "version"),
    [
        (["label_id", "label_name"], 6, "2017"),
        (list(VOCABULARY_2018_COLUMNS), 6, "2018"),
        (["Index", "Name"], 4716, "2017"),
        (["label_id", "label_name"], 3862, "2018"),
        (["index", "name"], 6, None),
    ],
)
def test_version_detection(columns: list[str], rows: int, version: str | None) -> None:
    assert detect_version(columns, rows) == version


def test_full_size_vocabularies_are_told_by_their_row_count(tmp_path: Path) -> None:
    names = {i: f"Label {i}" for i in range(4716)} | {39: "Drums", 44: "Drums"}
    path = tmp_path / "v.csv"
    path.write_text("index,name\n" + "".join(f"{i},{n}\n" for i, n in names.items()))
    vocab = load_vocabulary(path)
    assert vocab.version == "2017"
    wanted, _ = vocab.resolve_preset("music")
    assert wanted == (39, 44)


def test_an_unknown_version_tries_both_names(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("index,name\n9,Music video\n39,Drums\n")
    vocab = load_vocabulary(path)
    assert vocab.version is None
    wanted, missing = vocab.resolve_preset("music")
    assert wanted == (9, 39) and "Drum kit" not in missing and "Concert" in missing


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_name_with_a_comma_is_taken_whole(tmp_path: Path, layout: str) -> None:
    vocab = load_vocabulary(vocabulary(tmp_path, VOCAB_2018, layout))
    assert vocab.names[271] == "Nike, Inc."
    assert vocab.split("Nike, Inc.") == ("Nike, Inc.",)
    assert vocab.resolve(["Nike, Inc.", "Concert,14"]) == (271, 3, 14)
    # a comma list that can be read one way only, with the comma name inside it
    assert vocab.split("Concert,Nike, Inc.,violin") == ("Concert", "Nike, Inc.", "violin")
    assert vocab.resolve(["Concert, ", ",Violin"]) == (3, 97)  # empty parts are ignored


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_ambiguous_or_unknown_comma_list_is_an_error(tmp_path: Path, layout: str) -> None:
    labels = VOCAB_2018 | {500: "Nike", 501: "Inc."}
    vocab = load_vocabulary(vocabulary(tmp_path, labels, layout))
    assert vocab.split("Nike, Inc.") == ("Nike, Inc.",)  # a whole name wins
    with pytest.raises(
        InputError,
        match=r"labels value 'Nike, Inc.,Concert' can be read as 'Nike' \+ 'Inc.' \+ 'Concert' "
        r"or 'Nike, Inc.' \+ 'Concert'; give each label separately \(repeat --labels",
    ):
        vocab.resolve(["Nike, Inc.,Concert"])
    with pytest.raises(InputError, match=r"no label 'Zzz'$"):
        vocab.resolve(["Concert,Zzz"])
    with pytest.raises(InputError, match=r"no label 'Nike'; did you mean 'Nike, Inc.'"):
        load_vocabulary(vocabulary(tmp_path, VOCAB_2018, layout)).resolve(["Nike,Concert,Nkie"])


def test_a_labels_string_in_a_config_file_is_one_value() -> None:
    assert Yt8mConfig(labels="Nike, Inc.").labels == ("Nike, Inc.",)  # type: ignore[arg-type]
    assert Yt8mConfig(labels=(14, "Drums")).labels == ("14", "Drums")  # type: ignore[arg-type]


def test_shipped_labels_csv_matches_the_presets() -> None:
    path = Path(__file__).parents[2] / "manifests" / "yt8m_music" / "labels.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    expected = [
        (preset, label.name, label.kg_id, label.name_2017 or label.name)
        for preset, labels in PRESET_LABELS.items()
        for label in labels
    ]
    got = [(r["preset"], r["name"], r["knowledge_graph_id"], r["name_2017"]) for r in rows]
    assert got == expected
    kg = {r["name"]: r["knowledge_graph_id"] for r in rows}
    assert (kg["Violin"], kg["Marching band"], kg["Music festival"]) == (
        "/m/07y_7",
        "/m/09x9g",
        "/m/0263qsk",
    )
    drums = [r["index_2017"] for r in rows if r["name_2017"] == "Drums"]
    assert drums == ["39 44", "39 44"]


def _example(tf: dict[str, Any], pid: str, labels: list[int]) -> bytes:
    ref = tf["Example"]()
    ref.features.feature["id"].bytes_list.value.append(pid.encode())
    ref.features.feature["labels"].int64_list.value.extend(labels)
    ref.features.feature["mean_rgb"].float_list.value.extend(np.zeros(1024, np.float32))
    ref.features.feature["mean_audio"].float_list.value.extend(np.zeros(128, np.float32))
    data: bytes = ref.SerializeToString()
    return data


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cli_labels_repeat_and_keep_commas(tmp_path: Path, layout: str) -> None:
    tf = tf_train_messages("proto3")
    labels = VOCAB_2018 | {39: "Drums", 44: "Drums"}
    videos = {"AAAA": [271], "BBBB": [3], "CCCC": [14], "DDDD": [44], "EEEE": [28, 97]}
    records = tmp_path / "video" / "train0000.tfrecord"
    write_records(records, [_example(tf, pid, ls) for pid, ls in videos.items()])
    vocab = vocabulary(tmp_path, labels, layout)
    args = [
        "manifest",
        "yt8m",
        str(records),
        "--vocabulary",
        str(vocab),
        "-o",
        str(tmp_path / "ds"),
        "--labels",
        "Nike, Inc.",
        "--labels",
        "Concert,drums",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ids = [r["sample_id"] for r in read_manifest(tmp_path / "ds").to_pylist()]
    assert sorted(ids) == ["AAAA", "BBBB", "DDDD"]
    bad = [*args[:7], "--labels", "Nike", "-o", str(tmp_path / "x")]
    with pytest.raises(InputError, match=r"no label 'Nike'; did you mean 'Nike, Inc.'"):
        CliRunner().invoke(cli, bad, catch_exceptions=False)  # `svm` exits 2 on InputError
