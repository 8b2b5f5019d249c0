"""``svm splits make`` / ``validate`` on real generated videos with planted leaks."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from svm_toolkit import ffmpeg
from svm_toolkit.cli import cli
from svm_toolkit.demo.corpus import CorpusConfig, generate_corpus
from svm_toolkit.errors import InputError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter, write_table_atomic
from svm_toolkit.preprocess import PreprocessConfig, run_preprocess
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.schema import COL, MANIFEST_SCHEMA, ledger_schema, with_provenance
from svm_toolkit.splits import SplitConfig, ValidateConfig, make_splits, validate_splits

#: Six distinct clips, then the planted leaks, each with the split the leaky input gives it.
GIVEN = {
    "clip_a": "train",
    "clip_b": "train",
    "clip_c": "train",
    "clip_d": "train",
    "clip_e": "train",
    "clip_f": "val",
    "a_reencoded": "test",  # clip_a re-encoded: same soundtrack and near-duplicate picture
    "b_sound": "test",  # clip_b's soundtrack under a different picture
    "e_picture": "test",  # clip_e's picture with a different soundtrack
    "f_clip": "test",  # the first 3 s of clip_f: the same video id
}
LEAKS = {
    "same_song": [{"clip_a", "a_reencoded"}, {"clip_b", "b_sound"}, {"clip_f", "f_clip"}],
    # not {clip_a, a_reencoded}: the demo's stripes drift a period per beat and it flashes on
    # every beat, so each 0.5 s of its picture track averages to a flat picture (no evidence);
    # its soundtrack links it (tests/splits/test_copies.py covers re-encoded pictures)
    "near_duplicate_video": [
        {"clip_e", "e_picture"},
        {"clip_f", "f_clip"},
    ],
    "same_video": [{"clip_f", "f_clip"}],  # a clip of a video also shares its sound and picture
}


def run(*args: str) -> None:
    subprocess.run([ffmpeg.require(), "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The clips: six from the demo corpus (own song and picture each) and the four leaks."""
    folder = tmp_path_factory.mktemp("splits-media")
    config = CorpusConfig(clips=6, songs=6, seconds=6.0, letterbox_every=0, speech_every=0)
    clips = generate_corpus(folder, config, workers=2)
    paths = {f"clip_{'abcdef'[i]}": clip.path for i, clip in enumerate(clips)}
    paths["a_reencoded"] = folder / "a_reencoded.mp4"
    run("-i", str(paths["clip_a"]), "-vf", "scale=180:318", "-c:v", "libx264", "-crf", "34",
        "-force_key_frames", "source", "-c:a", "aac", "-b:a", "48k",
        str(paths["a_reencoded"]))  # fmt: skip
    paths["b_sound"] = folder / "b_sound.mp4"
    run("-f", "lavfi", "-i", "testsrc2=size=240x424:rate=15:duration=6", "-i",
        str(paths["clip_b"]), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "copy",
        "-shortest", str(paths["b_sound"]))  # fmt: skip
    paths["e_picture"] = folder / "e_picture.mp4"
    run("-i", str(paths["clip_e"]), "-i", str(paths["clip_c"]), "-map", "0:v", "-map", "1:a",
        "-af", "asetrate=22050*1.25,aresample=22050", "-c:v", "copy", "-c:a", "aac",
        "-shortest", str(paths["e_picture"]))  # fmt: skip
    paths["f_clip"] = paths["clip_f"]
    return paths


def make_dataset(root: Path, media: dict[str, Path], *, given: bool, ids: list[str]) -> Path:
    """A preprocessed dataset of ``ids``; with ``given``, the manifest carries :data:`GIVEN`."""
    layout = DatasetLayout(root)
    rows, ledger = [], []
    for sample_id in ids:
        video_id = "clip_f" if sample_id == "f_clip" else sample_id
        clip = (0.0, 3.0) if sample_id == "f_clip" else (None, None)
        rows.append(
            {
                COL.sample_id: sample_id, COL.video_id: video_id,
                COL.url: f"https://example.org/{video_id}.mp4", COL.source: "url",
                COL.status: "ok", COL.start_s: clip[0], COL.end_s: clip[1],
                COL.author: f"creator_{sample_id}", COL.duration_s: 6.0,
                COL.split: GIVEN[sample_id] if given else None,
            }
        )  # fmt: skip
        target = layout.media_path(sample_id, ".mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(media[sample_id].read_bytes())
        ledger.append(
            {
                COL.sample_id: sample_id, COL.stage: "download", COL.status: "ok",
                COL.attempts: 1, COL.started_at: datetime.now(UTC), COL.seconds: 0.1,
                COL.media_path: target.relative_to(root).as_posix(),
            }
        )  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=with_provenance(MANIFEST_SCHEMA, "manifest"))
    write_table_atomic(table, layout.manifest)
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(layout.ledger_dir, "download", schema) as writer:
        writer.write(ledger)
    filters = FilterConfig(min_motion=None, max_speech_ratio=None)
    run_preprocess(root, PreprocessConfig(filters=filters, mel=(), workers=2))
    return root


@pytest.fixture(scope="module")
def leaky(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("leaky"), media, given=True, ids=list(GIVEN))


@pytest.fixture(scope="module")
def unsplit(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("unsplit"), media, given=False, ids=list(GIVEN))


def leak_sets(dataset: Path) -> dict[str, list[set[str]]]:
    report = validate_splits(dataset)
    found: dict[str, list[set[str]]] = {}
    for finding in report.errors:
        found.setdefault(finding.check, []).append(set(finding.samples))
    return {k: sorted(v, key=sorted) for k, v in found.items()}


def test_validate_finds_exactly_the_planted_leaks(leaky: Path) -> None:
    assert leak_sets(leaky) == {k: sorted(v, key=sorted) for k, v in LEAKS.items()}


def test_make_keeps_every_leak_inside_one_split(unsplit: Path) -> None:
    summary = make_splits(unsplit, SplitConfig(ratios=(0.6, 0.2, 0.2)))
    assert sum(summary.by_split.values()) == len(GIVEN)
    assert summary.links["audio"] >= 2 and summary.links["picture"] >= 2
    assert summary.links["video_id"] == 1
    table = pq.read_table(DatasetLayout(unsplit).splits).to_pylist()
    split = {r[COL.sample_id]: r[COL.split] for r in table}
    group = {r[COL.sample_id]: r[COL.group] for r in table}
    for pairs in LEAKS.values():
        for pair in pairs:
            assert len({split[s] for s in pair}) == 1
            assert len({group[s] for s in pair}) == 1
    assert not validate_splits(unsplit).errors
    links = pq.read_table(DatasetLayout(unsplit).split_links).to_pylist()
    pairs = {(r[COL.sample_id_a], r[COL.sample_id_b], r[COL.kind]) for r in links}
    for kind, planted in (
        ("audio", LEAKS["same_song"]),
        ("picture", LEAKS["near_duplicate_video"]),
    ):
        found = {frozenset((a, b)) for a, b, k in pairs if k == kind}
        assert {frozenset(p) for p in planted} <= found, (kind, found)
    assert ("clip_f", "f_clip", "video_id") in pairs
    for row in links:
        assert row[COL.sample_id_a] < row[COL.sample_id_b] and row[COL.in_splits]
        assert 0.0 < row[COL.score] <= 1.0
        assert row[COL.score] == 1.0 or row[COL.kind] in ("audio", "picture")
        assert row[COL.group] == group[row[COL.sample_id_a]] == group[row[COL.sample_id_b]]


def test_make_is_deterministic_and_guards_existing_splits(unsplit: Path) -> None:
    config = SplitConfig(ratios=(0.6, 0.2, 0.2), seed=3)
    make_splits(unsplit, config, overwrite=True)
    before = DatasetLayout(unsplit).splits.read_bytes()
    assert make_splits(unsplit, config).unchanged
    other = SplitConfig(ratios=(0.2, 0.2, 0.6), seed=3)
    with pytest.raises(InputError, match="--overwrite"):
        make_splits(unsplit, other)
    assert DatasetLayout(unsplit).splits.read_bytes() == before


def test_clean_splits_pass_and_the_cli_exit_codes(
    leaky: Path, media: dict[str, Path], tmp_path: Path
) -> None:
    clean = make_dataset(tmp_path / "clean", media, given=True, ids=[f"clip_{c}" for c in "abcdef"])
    runner = CliRunner()
    result = runner.invoke(cli, ["splits", "validate", str(clean)])
    assert result.exit_code == 0, result.output
    assert "0 errors, 2 warnings" in result.output
    strict = runner.invoke(cli, ["splits", "validate", str(clean), "--strict"])
    assert strict.exit_code == 1  # 5 train / 1 val / 0 test is far from 0.8/0.1/0.1
    assert "split_sizes" in strict.output
    bad = runner.invoke(cli, ["splits", "validate", str(leaky), "--out", str(tmp_path / "r")])
    assert bad.exit_code == 2
    assert "same_song" in bad.output
    assert "a_reencoded (test; example.org/a_reencoded.mp4)" in bad.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["errors"] == 6
    assert (tmp_path / "r" / "report.png").stat().st_size > 10_000


def test_missing_media_features_and_bad_rows_are_errors(unsplit: Path, tmp_path: Path) -> None:
    make_splits(unsplit, SplitConfig(ratios=(0.6, 0.2, 0.2)), overwrite=True)
    path = DatasetLayout(unsplit).splits
    table = pq.read_table(path)
    extra = pa.table(
        {COL.sample_id: ["ghost", "clip_a"], COL.split: ["test", "holdout"],
         COL.group: ["ghost", "clip_a"]},
        schema=table.schema,
    )  # fmt: skip
    write_table_atomic(pa.concat_tables([table, extra]), path)
    report = validate_splits(unsplit, ValidateConfig(features=("efficientnet_lite0",)))
    messages = [f.message for f in report.errors if f.check == "schema"]
    assert any("'ghost' is not in the manifest" in m for m in messages)
    assert any("'clip_a' (example.org/clip_a.mp4) is listed twice" in m for m in messages)
    missing = [f for f in report.errors if f.check == "missing_features"]
    assert len(missing) == 1 and len(missing[0].samples) == len(GIVEN)
    make_splits(unsplit, SplitConfig(ratios=(0.6, 0.2, 0.2)), overwrite=True)
