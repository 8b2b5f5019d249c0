"""The dataset card (``DATASET/README.md``): Hugging Face configs and the datasheet.

The dataset is built by the real stage commands (in this process, through click), each of which
refreshes the card; Hugging Face ``datasets`` then loads every config offline.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from svm_toolkit.card import BEGIN, CARD_FILE, END, SPLIT, card_facts, refresh_card, write_card
from svm_toolkit.cli import cli
from svm_toolkit.config import replace, to_dict
from svm_toolkit.errors import InputError
from svm_toolkit.io.shards import ShardWriter, committed_shards, latest_statuses, read_shards
from svm_toolkit.manifest import MANIFEST_PRESETS
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS
from svm_toolkit.schema import COL, read_provenance
from tests.preprocess.test_stage import make_dataset

EXTRACTORS = ("efficientnet_lite0", "vmnet_music")


def svm(*args: str | Path) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def front_matter(root: Path) -> dict[str, Any]:
    text = (root / CARD_FILE).read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n", 2)[1])
    assert isinstance(meta, dict)
    return meta


def config_names(root: Path) -> list[str]:
    return [c["config_name"] for c in front_matter(root)["configs"]]


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    """A dataset built stage by stage, and the card's config names after each stage."""
    root = make_dataset(tmp_path_factory.mktemp("card") / "ds")  # media + the download ledger
    urls = root.parent / "urls.csv"
    ids = ["good", "boxed", "talk", "mute", "noise", "broken"]
    urls.write_text("id,url\n" + "".join(f"{i},https://example.com/{i}.mp4\n" for i in ids))
    seen: dict[str, list[str]] = {}
    svm("manifest", "urls", urls, "-o", root, "--id-column", "id")
    seen["manifest"] = config_names(root)
    settings = root.parent / "preprocess.yaml"
    settings.write_text("filters: {min_motion: 0.0}\nworkers: 1\n")  # lavfi pictures are still
    svm("preprocess", root, "--config", settings, "--mel", "imagebind")
    seen["preprocess"] = config_names(root)
    svm("extract", root, "--device", "cpu", "--workers", "1", "--batch-size", "5")
    seen["extract"] = config_names(root)
    svm("splits", "make", root, "--ratios", "0.5,0.25,0.25")
    seen["splits"] = config_names(root)
    return root, seen


@pytest.fixture
def root(stages: tuple[Path, dict[str, list[str]]]) -> Path:
    return stages[0]


@pytest.fixture
def hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``datasets``, offline, caching into ``tmp_path``."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")  # a dev dependency: never skipped in CI
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return datasets


def copy_without_media(root: Path, to: Path) -> Path:
    return Path(shutil.copytree(root, to, ignore=shutil.ignore_patterns("media")))


def ours(root: Path, name: str) -> tuple[int, set[str]]:
    """Rows and sample ids of one config as our own reader sees them."""
    if name in ("manifest", "splits"):
        table = pq.read_table(root / f"{name}.parquet", columns=[COL.sample_id])
    elif name.startswith("ledger_"):
        table = read_shards(root / "ledger", name.removeprefix("ledger_"), columns=[])
    elif name.startswith("mel_") or name == "fingerprints":
        table = read_shards(root / "preprocess" / name, "part", columns=[])
    else:
        table = read_shards(root / "features" / name, "part", columns=[])
    assert table is not None
    return table.num_rows, set(table.column(COL.sample_id).to_pylist())


def test_each_stage_refreshes_the_card(stages: tuple[Path, dict[str, list[str]]]) -> None:
    root, seen = stages
    assert seen["manifest"] == ["manifest", "ledger_download"]
    assert seen["preprocess"] == [
        "manifest",
        "ledger_download",
        "ledger_preprocess",
        "mel_imagebind",
        "fingerprints",
    ]
    features = [f"ledger_extract_{n}" for n in EXTRACTORS] + list(EXTRACTORS)
    assert seen["extract"] == [*seen["preprocess"][:3], *features, *seen["preprocess"][3:]]
    assert seen["splits"] == ["manifest", "splits", *seen["extract"][1:]]
    configs = front_matter(root)["configs"]
    assert configs[0] == {
        "config_name": "manifest",
        "default": True,
        "data_files": [{"split": SPLIT, "path": "manifest.parquet"}],
    }
    by_name = {c["config_name"]: c["data_files"] for c in configs}
    assert by_name["efficientnet_lite0"] == [
        {"split": SPLIT, "path": "features/efficientnet_lite0/part-*.parquet"}
    ]
    assert by_name["ledger_preprocess"] == [
        {"split": SPLIT, "path": "ledger/preprocess-[0-9]*.parquet"}
    ]
    assert all(f["path"].endswith(".parquet") for files in by_name.values() for f in files)


def test_load_dataset_loads_every_config_with_our_rows(root: Path, hf: Any) -> None:
    names = config_names(root)
    assert {"manifest", "splits", "mel_imagebind", "fingerprints", *EXTRACTORS} <= set(names)
    for name in names:
        loaded = hf.load_dataset(str(root), name, split=SPLIT)
        rows, ids = ours(root, name)
        assert loaded.num_rows == rows > 0, name
        assert set(loaded[COL.sample_id]) == ids, name
        shard = sorted(
            root.glob(front_matter(root)["configs"][names.index(name)]["data_files"][0]["path"])
        )[0]
        assert loaded.column_names == pq.read_schema(shard).names, name
    vectors = hf.load_dataset(str(root), "efficientnet_lite0", split=SPLIT)
    assert str(vectors.features[COL.embedding]) == "List(Value('float16'), length=1280)"


def test_load_dataset_without_a_name_is_the_manifest_not_the_media(root: Path, hf: Any) -> None:
    loaded = hf.load_dataset(str(root))
    assert list(loaded) == [SPLIT]
    assert loaded[SPLIT].num_rows == pq.read_metadata(root / "manifest.parquet").num_rows == 6
    assert COL.url in loaded[SPLIT].column_names  # the manifest, not video files
    assert list((root / "media").rglob("*.mp4"))  # which are there, in no config


def test_the_cards_split_join_selects_the_training_rows(root: Path, hf: Any) -> None:
    text = (root / CARD_FILE).read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    scope: dict[str, Any] = {}
    exec(code.group(1).replace('"DATASET"', repr(str(root))), scope)
    splits = pq.read_table(root / "splits.parquet").to_pylist()
    train = {r[COL.sample_id] for r in splits if r[COL.split] == "train"}
    assert train and set(scope["train"][COL.sample_id]) == train & ours(root, EXTRACTORS[0])[1]


def test_the_datasheet_counts_equal_the_ledgers(root: Path) -> None:
    text = (root / CARD_FILE).read_text()
    section = text.split("## Counts by status", 1)[1].split("##", 1)[0]
    table = {
        cells[0].strip("`"): (int(cells[1].replace(",", "")), cells[2])
        for line in section.splitlines()
        if line.startswith("| `")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    stages = ["download", "preprocess", *(f"extract_{n}" for n in EXTRACTORS)]
    assert list(table) == stages
    for stage in stages:
        statuses = latest_statuses(root / "ledger", stage)
        counts = ", ".join(f"{k} {v}" for k, v in Counter(statuses.values()).most_common())
        assert table[stage] == (len(statuses), counts)
    assert "| `preprocess` | 6 | " in text and "filtered:" in table["preprocess"][1]
    splits = Counter(pq.read_table(root / "splits.parquet")[COL.split].to_pylist())
    for split, n in splits.items():
        assert f"| {split} | {n} |" in text
    shard = committed_shards(root / "features" / "efficientnet_lite0", "part")[0]
    sha = read_provenance(pq.read_schema(shard))["weights_sha256"]
    assert f"`{sha}`" in text  # the extractor's weights, with their checksum
    assert "| `svm preprocess` | `filters.max_speech_ratio` | 0.5 |" in text
    assert "svm extract DATASET -e efficientnet_lite0,vmnet_music" in text


def test_the_rebuild_configs_are_the_recorded_ones(root: Path) -> None:
    text = (root / CARD_FILE).read_text()
    blocks = dict(re.findall(r"`(\w+)\.yaml`:\n\n```yaml\n(.*?)```", text, re.S))
    assert set(blocks) == {"manifest", "preprocess"}
    assert "--config manifest.yaml" in text and "--config preprocess.yaml" in text
    ledger = committed_shards(root / "ledger", "preprocess")[0]
    for name, base, path in (
        ("manifest", MANIFEST_PRESETS["generic"], root / "manifest.parquet"),
        ("preprocess", PREPROCESS_PRESETS["generic"], ledger),
    ):
        rebuilt = to_dict(replace(base, yaml.safe_load(blocks[name])))
        assert rebuilt == read_provenance(pq.read_schema(path))["config"], name


def test_user_text_and_yaml_survive_a_refresh(root: Path, tmp_path: Path) -> None:
    copy = copy_without_media(root, tmp_path / "ds")
    card = copy / CARD_FILE
    text = card.read_text()
    front, body = text.split("---\n", 2)[1:]
    mine = (
        "license: cc-by-4.0  # my comment\n"
        "pretty_name: My videos\n"
        + front
        + "- config_name: my_view\n  data_files: features/vmnet_music/*.parquet\n"
        + "tags:\n- music\n"
    )
    start, end = body.index(BEGIN), body.index(END) + len(END)
    edited = (
        "\n# My videos\n\nWritten by me.\n\n"
        + body[start : start + len(BEGIN)]
        + "\nstale words\n"
        + body[end - len(END) :]
        + "\n\n## Licence\n\nAsk me.\n"
    )
    card.write_text(f"---\n{mine}---\n{edited}")
    summary = write_card(copy)
    assert summary.changed and summary.kept == ("my_view",) and summary.default == "manifest"
    after = card.read_text()
    assert "license: cc-by-4.0  # my comment\npretty_name: My videos\n" in after
    assert "tags:\n- music\n" in after
    assert "Written by me." in after and after.endswith("## Licence\n\nAsk me.\n")
    assert "stale words" not in after and "## Counts by status" in after
    meta = front_matter(copy)
    assert meta["license"] == "cc-by-4.0" and meta["tags"] == ["music"]
    assert config_names(copy) == ["my_view", *config_names(root)]
    assert after.count(BEGIN) == after.count(END) == 1
    again = write_card(copy)
    assert not again.changed and card.read_text() == after


def test_a_readme_without_front_matter_gets_it_and_keeps_its_text(
    root: Path, tmp_path: Path
) -> None:
    copy = copy_without_media(root, tmp_path / "ds")
    (copy / CARD_FILE).write_text("# Mine\n\nhello\n")
    write_card(copy)
    text = (copy / CARD_FILE).read_text()
    assert text.startswith("---\nconfigs:\n- config_name: manifest\n")
    assert "---\n\n# Mine\n\nhello\n\n" + BEGIN in text and text.endswith(END + "\n")
    assert config_names(copy) == config_names(root)


def test_svm_card_writes_and_reports_one_line(root: Path, tmp_path: Path) -> None:
    copy = copy_without_media(root, tmp_path / "ds")
    (copy / CARD_FILE).unlink()
    out = svm("card", copy)
    n = len(config_names(root))
    assert out == f"card: {copy / CARD_FILE} written: {n} configs (default manifest)\n"
    assert (copy / CARD_FILE).read_text() == (root / CARD_FILE).read_text().replace(
        f"# {root.name}", f"# {copy.name}"
    )
    assert "unchanged" in svm("card", copy)


def test_rows_a_retry_left_twice_are_counted_apart(root: Path, tmp_path: Path) -> None:
    copy = copy_without_media(root, tmp_path / "ds")
    table = read_shards(copy / "ledger", "download")
    assert table is not None
    with ShardWriter(copy / "ledger", "download", table.schema) as writer:
        writer.write(table.slice(0, 2))  # two samples downloaded again
    part = next(p for p in card_facts(copy).parts if p.name == "ledger_download")
    assert (part.rows, part.samples, part.files) == (8, 6, 2)
    write_card(copy)
    assert "| 8 | 6 (2 older rows: run `svm compact DATASET`) |" in (copy / CARD_FILE).read_text()
    svm("compact", copy)  # which refreshes the card
    text = (copy / CARD_FILE).read_text()
    row = next(x for x in text.splitlines() if x.startswith("| `ledger_download`"))
    assert row.split(" | ")[3:5] == ["6", "6"]  # rows, samples


def test_a_broken_card_is_a_clear_error_and_never_fails_a_stage(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = copy_without_media(root, tmp_path / "ds")
    card = copy / CARD_FILE
    card.write_text("---\nlicense: [unclosed\n---\n\nmine\n")
    with pytest.raises(InputError, match=r"README\.md: its YAML front matter .* does not parse"):
        write_card(copy)
    with caplog.at_level(logging.WARNING, logger="svm_toolkit.card"):
        assert refresh_card(copy) is None
    assert "not refreshed" in caplog.text and "svm card" in caplog.text
    assert card.read_text() == "---\nlicense: [unclosed\n---\n\nmine\n"  # untouched
    card.write_text(f"mine\n{BEGIN}\nhalf a card\n")
    with pytest.raises(InputError, match="has no '<!-- svm:end -->' after it"):
        write_card(copy)
