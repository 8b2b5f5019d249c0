"""``splits make`` writes what it linked and names its largest groups; ``splits validate`` names
samples by id and URL or title, finds usable samples left out, and hints with the real path.

The datasets are real Parquet manifests with no media: the same-value link kinds (video id,
music id) tie them, so every pair and group is known in advance. Fingerprint links on real media
are in ``test_splits.py``.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from svm_toolkit.cli import cli
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import write_table_atomic
from svm_toolkit.schema import COL, MANIFEST_SCHEMA, SPLIT_LINKS_SCHEMA, with_provenance
from svm_toolkit.splits import SplitConfig, ValidateConfig, make_splits, validate_splits
from svm_toolkit.splits.checks import short_url
from svm_toolkit.splits.links import Links, links_belong_to_splits, links_table

RATIOS = SplitConfig(ratios=(0.5, 0.25, 0.25))
LONG_URL = "https://www.example.org/videos/" + "x" * 80 + "/s14.mp4"
TITLE = "Sunset Drive (Official Music Video) - remastered in 4K for the anniversary"


def sample(i: int, **fields: object) -> dict[str, object]:
    """Manifest row ``s{i:02d}``: its own video, URL and song unless ``fields`` say otherwise."""
    sample_id = f"s{i:02d}"
    row: dict[str, object] = {
        COL.sample_id: sample_id,
        COL.video_id: f"v{i:02d}",
        COL.url: f"https://example.org/{sample_id}.mp4",
        COL.source: "url",
        COL.status: "ok",
        COL.music_id: f"m{i:02d}",
        COL.duration_s: 10.0 + i,
        "title": None,
    }
    return {**row, **fields}


def rows() -> list[dict[str, object]]:
    """16 samples. Known links:

    - music id ``m12``: s03, s05, s07, s09, s13 (a group of 5; star around s03, the first);
    - video id ``v02``: s02 and s04 (two clips of one video);
    - s10 and s12 are tied through s11, which is left out (unavailable): s10 and s11 share the
      video ``v10``, s11 and s12 the song ``m07``.
    """
    out = [sample(i) for i in range(1, 17)]
    for i in (3, 5, 7, 9, 13):
        out[i - 1][COL.music_id] = "m12"
    out[3][COL.video_id] = "v02"
    out[10].update({COL.video_id: "v10", COL.music_id: "m07", COL.status: "unavailable"})
    out[11][COL.music_id] = "m07"
    out[2]["title"] = TITLE
    out[13][COL.url] = LONG_URL
    return out


def write_manifest(root: Path, manifest: list[dict[str, object]]) -> Path:
    """``root/manifest.parquet`` with the manifest schema and an extra ``title`` column."""
    schema = with_provenance(pa.schema([*MANIFEST_SCHEMA, pa.field("title", pa.string())]), "x")
    table = pa.Table.from_pylist(manifest, schema=schema)
    write_table_atomic(table, DatasetLayout(root).manifest)
    return root


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "my data", rows())  # a space: the hints quote the path


def test_links_file_holds_every_pair_with_its_kind_and_score(dataset: Path) -> None:
    summary = make_splits(dataset, RATIOS)
    path = DatasetLayout(dataset).split_links
    assert summary.links_path == path
    table = pq.read_table(path)
    assert table.schema.remove_metadata().equals(SPLIT_LINKS_SCHEMA)
    assert json.loads(table.schema.metadata[b"svm_toolkit"])["stage"] == "splits"
    links = pd.read_parquet(path)  # what a user does
    got = {
        (r.sample_id_a, r.sample_id_b, r.kind, r.value, r.in_splits, r.group)
        for r in links.itertuples()
    }
    assert got == {
        ("s03", "s05", "music_id", "m12", True, "s03"),
        ("s03", "s07", "music_id", "m12", True, "s03"),
        ("s03", "s09", "music_id", "m12", True, "s03"),
        ("s03", "s13", "music_id", "m12", True, "s03"),
        ("s02", "s04", "video_id", "v02", True, "s02"),
        ("s10", "s11", "video_id", "v10", False, "s10"),
        ("s11", "s12", "music_id", "m07", False, "s10"),
    }
    assert (links["score"] == 1.0).all() and links["offset_s"].isna().all()
    assert set(links["what"]) == {"the same music id", "the same video id"}
    assert list(links["sample_id_a"]) == sorted(links["sample_id_a"])
    splits = pq.read_table(DatasetLayout(dataset).splits).to_pandas().set_index("sample_id")
    assert "s11" not in splits.index
    assert splits.loc["s10", "split"] == splits.loc["s12", "split"]  # tied through s11


def test_links_file_is_rewritten_only_when_the_links_change(dataset: Path) -> None:
    make_splits(dataset, RATIOS)
    path = DatasetLayout(dataset).split_links
    before = path.read_bytes()
    assert make_splits(dataset, RATIOS).unchanged
    assert path.read_bytes() == before
    manifest = rows()
    manifest[0][COL.music_id] = "m12"  # s01 joins the song's group: links and splits change
    write_manifest(dataset, manifest)
    make_splits(dataset, RATIOS, overwrite=True)
    links = pd.read_parquet(path)
    first = links[links["sample_id_a"] == "s01"]
    assert sorted(first["sample_id_b"]) == ["s03", "s05", "s07", "s09", "s13"]


def test_summary_names_the_largest_groups(dataset: Path) -> None:
    summary = make_splits(dataset, RATIOS)
    line = summary.describe()
    assert "\n" not in line
    assert (
        "largest groups: 5 (music_id 'm12': s03, s05, …), 2 (video_id 'v02': s02, s04), "
        "2 (video_id 'v10': s10, s12; also music_id)" in line
    ), line
    first = summary.largest_groups[0]
    assert first.samples == ("s03", "s05", "s07", "s09", "s13")
    assert first.kinds == {"music_id": 4} and first.group == "s03"
    assert first.split in {"train", "val", "test"}


def test_validate_finds_left_out_samples_and_names_them(dataset: Path) -> None:
    make_splits(dataset, RATIOS)
    manifest = rows()
    manifest.append(sample(17))  # downloaded after the splits were made
    manifest.append(sample(18, title=TITLE))
    manifest.append(sample(20, title="\x1b[31mred\nline\x1b[0m"))  # escapes never reach a terminal
    manifest.append(sample(19, status="unavailable"))  # not usable: not reported
    write_manifest(dataset, manifest)
    report = validate_splits(dataset)
    assert not report.errors
    (left,) = [f for f in report.warnings if f.check == "left_out"]
    assert left.samples == ("s17", "s18", "s20")
    assert left.named == (
        "s17 (example.org/s17.mp4)",
        f's18 ("{TITLE[:47]}…")',
        's20 ("[31mred line [0m")',
    )
    root = shlex.quote(str(dataset))
    assert left.message == (
        "3 usable samples (ok up to the manifest stage) are in no split, so training and "
        f"evaluation never see them; re-make the splits with `svm splits make {root} "
        "--overwrite` (samples already dealt may move)"
    )
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
    text = report.render()
    assert "samples: s17 (example.org/s17.mp4), s18 (" in text


def test_every_finding_names_samples_by_url_or_title(dataset: Path) -> None:
    make_splits(dataset, RATIOS)
    path = DatasetLayout(dataset).splits
    table = pq.read_table(path)
    moved = {"s05": "test", "s03": "train", "s14": "val"}  # s03 and s05 share m12: a leak
    ids = table.column(COL.sample_id).to_pylist()
    split = [moved.get(s, x) for s, x in zip(ids, table.column(COL.split).to_pylist(), strict=True)]
    table = table.set_column(1, table.schema.field(COL.split), pa.array(split, pa.string()))
    write_table_atomic(table, path)
    report = validate_splits(dataset, ValidateConfig(features=("vggish",)))
    assert {f.check for f in report.errors} == {"same_song", "missing_features"}
    for finding in report.findings:
        assert len(finding.named) == len(finding.samples)
        for sample_id, name in zip(finding.samples, finding.named, strict=True):
            assert name.startswith(f"{sample_id} (") and ("example.org" in name or '"' in name)
    (song,) = [f for f in report.errors if f.check == "same_song"]
    assert f's03 (train; "{TITLE[:47]}…")' in song.message
    assert "s05 (test; example.org/s05.mp4)" in song.message
    (missing,) = [f for f in report.errors if f.check == "missing_features"]
    assert f"run `svm extract {shlex.quote(str(dataset))} -e vggish`" in missing.message
    assert "DATASET" not in missing.message
    long = missing.named[missing.samples.index("s14")]
    assert long == f"s14 (val; {short_url(LONG_URL)})" and len(short_url(LONG_URL)) == 60
    assert short_url(LONG_URL).startswith("example.org/videos/x") and long.endswith("/s14.mp4)")
    written = json.loads(json.dumps(report.to_json()))
    assert all(len(f["named"]) == len(f["samples"]) for f in written["findings"])


def test_cli_make_and_validate_json(dataset: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["splits", "make", str(dataset), "--ratios", "0.5,0.25,0.25"])
    assert made.exit_code == 0, made.output
    (line,) = [x for x in made.output.splitlines() if x.startswith("splits: ")]
    assert "largest groups: 5 (music_id 'm12': s03, s05, …)" in line
    again = runner.invoke(
        cli, ["splits", "make", str(dataset), "--ratios", "0.5,0.25,0.25", "--json"]
    )
    assert again.exit_code == 0, again.output
    obj = json.loads(again.output)
    assert obj["links_path"] == str(DatasetLayout(dataset).split_links)
    assert [g["size"] for g in obj["largest_groups"]] == [5, 2, 2]
    assert obj["largest_groups"][0]["samples"] == ["s03", "s05", "s07", "s09", "s13"]
    assert obj["largest_groups"][0]["label"] == "music_id 'm12'"
    manifest = rows()
    manifest.append(sample(17))
    write_manifest(dataset, manifest)
    checked = runner.invoke(cli, ["splits", "validate", str(dataset), "--json", "--strict"])
    assert checked.exit_code == 1, checked.output
    report = json.loads(checked.output)
    (left,) = [f for f in report["findings"] if f["check"] == "left_out"]
    assert left["samples"] == 1 and left["examples"] == ["s17 (example.org/s17.mp4)"]
    assert left["message"].startswith("1 usable sample (ok up to the manifest stage) is in no")
    plain = runner.invoke(cli, ["splits", "validate", str(dataset), "--features", "vggish"])
    assert plain.exit_code == 2
    assert f"svm extract {shlex.quote(str(dataset))} -e vggish" in plain.output
    assert "samples: s01 (" in plain.output
    saved = json.loads((dataset / "splits_report" / "report.json").read_text())
    assert any("s17 (example.org/s17.mp4)" in f["named"] for f in saved["findings"])
    assert np.isfinite(obj["seconds"])


def test_links_table_orders_pairs_by_id_and_turns_their_offset() -> None:
    """A fingerprint link keeps its score; swapped into id order, its offset changes sign."""
    ids = ["zz", "aa", "mm"]
    samples = pd.DataFrame(
        {COL.music_id: ["x", None, "x"]}, index=pd.Index(ids, name=COL.sample_id)
    )
    audio = Links(
        "audio", np.array([0, 1]), np.array([1, 2]), "the same soundtrack",
        np.array([0.93, 0.9]), np.array([2.5, np.nan]),
    )  # fmt: skip
    music = Links("music_id", np.array([0]), np.array([2]), "the same music id")
    included = np.array([True, True, False])
    group = np.array(["aa", "aa", ""], dtype=object)
    rows = links_table(samples, [audio, music], included, group).to_pylist()
    assert rows == [
        {COL.sample_id_a: "aa", COL.sample_id_b: "mm", COL.kind: "audio",
         COL.what: "the same soundtrack", COL.value: None, COL.score: 0.9, COL.offset_s: None,
         COL.in_splits: False, COL.group: "aa"},
        {COL.sample_id_a: "aa", COL.sample_id_b: "zz", COL.kind: "audio",
         COL.what: "the same soundtrack", COL.value: None, COL.score: 0.93, COL.offset_s: -2.5,
         COL.in_splits: True, COL.group: "aa"},
        {COL.sample_id_a: "mm", COL.sample_id_b: "zz", COL.kind: "music_id",
         COL.what: "the same music id", COL.value: "x", COL.score: 1.0, COL.offset_s: None,
         COL.in_splits: False, COL.group: "aa"},
    ]  # fmt: skip
    empty = links_table(samples, [], included, group)
    assert empty.num_rows == 0 and empty.schema.equals(SPLIT_LINKS_SCHEMA)


def test_large_group_warning_says_what_ties_it(tmp_path: Path) -> None:
    manifest = rows() + [sample(i, **{COL.music_id: "m12"}) for i in range(21, 29)]
    dataset = write_manifest(tmp_path / "ds", manifest)
    make_splits(dataset, RATIOS)
    (large,) = [f for f in validate_splits(dataset).warnings if f.check == "large_groups"]
    assert large.message.startswith("13 samples (56.5%) are tied by music_id 'm12'; one group")
    assert large.samples[:2] == ("s03", "s05") and len(large.named) == 13


def test_a_run_killed_between_its_two_writes_leaves_links_readers_can_tell(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """splits.parquet is written first; the links file names it, so a stale one is known."""
    from svm_toolkit.report.collect import collect
    from svm_toolkit.splits import make

    layout = DatasetLayout(dataset)
    make_splits(dataset, RATIOS)
    assert links_belong_to_splits(dataset)
    written = json.loads(pq.read_schema(layout.split_links).metadata[b"svm_toolkit"])
    assert written["splits_sha256"] == hashlib.sha256(layout.splits.read_bytes()).hexdigest()
    manifest = rows()
    manifest[0][COL.music_id] = "m12"  # s01 joins the song's group: links and splits change
    write_manifest(dataset, manifest)
    real = make.write_table_atomic

    def killed_before_the_links(table: pa.Table, path: Path) -> None:
        if path == layout.split_links:
            raise KeyboardInterrupt
        real(table, path)

    monkeypatch.setattr(make, "write_table_atomic", killed_before_the_links)
    with pytest.raises(KeyboardInterrupt):
        make_splits(dataset, RATIOS, overwrite=True)
    monkeypatch.undo()
    assert not links_belong_to_splits(dataset)  # the old links, beside the new splits
    facts = collect(dataset)  # the report shows splits.parquet's groups and says why
    assert (facts.groups_source, facts.links_stale) == ("splits.parquet", True)
    assert make_splits(dataset, RATIOS).unchanged  # the re-run keeps the splits ...
    assert links_belong_to_splits(dataset)  # ... and mends the links
    links = pd.read_parquet(layout.split_links)
    assert "s01" in set(links["sample_id_a"])
    facts = collect(dataset)
    assert (facts.groups_source, facts.links_stale) == ("splits_links.parquet", False)


def test_a_links_file_without_the_splits_digest_does_not_belong(dataset: Path) -> None:
    """A links file from before the digest, or not written by svm_toolkit, is not trusted."""
    layout = DatasetLayout(dataset)
    make_splits(dataset, RATIOS)
    table = pq.read_table(layout.split_links)
    older = json.loads(table.schema.metadata[b"svm_toolkit"])
    del older["splits_sha256"]
    pq.write_table(table.replace_schema_metadata({b"svm_toolkit": json.dumps(older)}),
                   layout.split_links)  # fmt: skip
    assert not links_belong_to_splits(dataset)
    pq.write_table(table.replace_schema_metadata(None), layout.split_links)
    assert not links_belong_to_splits(dataset)
    make_splits(dataset, RATIOS)  # the next run writes it again
    assert links_belong_to_splits(dataset)
