from __future__ import annotations

import csv
from pathlib import Path

import pytest

from svm_toolkit.errors import InputError
from svm_toolkit.testing.yt8m import write_vocabulary
from svm_toolkit.yt8m.vocabulary import LABEL_PRESETS, load_vocabulary

LABELS_2018 = {
    0: "Game",
    3: "Concert",
    4: "Musician",
    14: "Music video",
    31: "Piano",
    54: "Orchestra",
}


@pytest.mark.parametrize("layout", ["2018", "2017"])
def test_both_layouts(tmp_path: Path, layout: str) -> None:
    vocab = load_vocabulary(write_vocabulary(tmp_path / "v.csv", LABELS_2018, layout=layout))
    assert vocab.names == LABELS_2018
    assert (
        vocab.lookup("music VIDEO") == 14
        and vocab.lookup("14") == 14
        and vocab.lookup("15") is None
    )
    assert vocab.resolve(["Concert", "31", "concert"]) == (3, 31)
    assert vocab.name(99) == "#99"


def test_2018_header(tmp_path: Path) -> None:
    path = write_vocabulary(tmp_path / "v.csv", LABELS_2018)
    header = path.read_text().splitlines()[0]
    assert (
        header == "Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,"
        "Vertical1,Vertical2,Vertical3,WikiDescription"
    )


def test_unknown_label_suggests_close_names(tmp_path: Path) -> None:
    vocab = load_vocabulary(write_vocabulary(tmp_path / "v.csv", LABELS_2018))
    with pytest.raises(InputError, match=r"no label 'Music vidoe'; did you mean 'Music video'"):
        vocab.resolve(["Music vidoe"])
    with pytest.raises(InputError, match=r"no label 'Zzz'$"):
        vocab.resolve(["Zzz"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,title\n1,x\n", r"not a YT8M vocabulary: expected columns Index,...,Name"),
        ("Index,Name\nfourteen,Music video\n", r"v.csv:2: Index 'fourteen' is not a label index"),
        ("Index,Name\n14,Music video\n14,Concert\n", r"v.csv:3: label index 14 appears twice"),
        ("Index,Name\n", r"the vocabulary has no labels"),
    ],
)
def test_malformed_vocabularies(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "v.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        load_vocabulary(tmp_path / "v.csv")
    with pytest.raises(InputError, match="no such vocabulary file"):
        load_vocabulary(tmp_path / "missing.csv")


def test_shipped_label_sets_match_the_presets() -> None:
    path = Path(__file__).parents[2] / "manifests" / "yt8m_music" / "labels.csv"
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    for preset, names in LABEL_PRESETS.items():
        assert [r["name"] for r in rows if r["preset"] == preset] == list(names)


@pytest.mark.parametrize("layout", ["2018", "2017"])
def test_empty_names_are_neither_labels_nor_repeats(
    tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The real 2018 file has 56 rows with no name: they cannot be selected by name."""
    labels = {0: "Game", 1: "", 2: "", 14: "Music video"}
    vocab = load_vocabulary(write_vocabulary(tmp_path / "v.csv", labels, layout=layout))
    assert vocab.indices("") == () and vocab.indices("1") == (1,)
    assert vocab.resolve(["Music video", "", " "]) == (14,) and not caplog.records
    assert bool(vocab.kg_ids) is (layout == "2018")
