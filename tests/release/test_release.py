"""Release -> rebuild -> compare on a small generated corpus served on loopback (real yt-dlp,
real ffmpeg preprocessing, real features), the release format's checks, and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from svm_toolkit.cli import cli
from svm_toolkit.demo.corpus import CorpusConfig, generate_corpus, render_replacement
from svm_toolkit.demo.pipeline import write_url_list
from svm_toolkit.download import DownloadConfig, run_download
from svm_toolkit.errors import InputError
from svm_toolkit.extract.config import ExtractConfig
from svm_toolkit.extract.runner import run_extract
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.manifest import MANIFEST_PRESETS, build_manifest, read_manifest
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS, PreprocessConfig
from svm_toolkit.preprocess.runner import run_preprocess
from svm_toolkit.release import format as fmt
from svm_toolkit.release.compare import (
    CompareConfig,
    Comparison,
    _fingerprints,
    _picture_not_comparable,
    audio_similarity,
    compare_release,
    picture_share,
)
from svm_toolkit.release.rebuild import RebuildConfig, _settings, rebuild_release
from svm_toolkit.release.write import (
    DOWNLOAD_FIELDS,
    PREPROCESS_FIELDS,
    _portable,
    write_release,
)
from svm_toolkit.splits import SplitConfig, make_splits
from svm_toolkit.testing.server import LoopbackServer

EXTRACTOR = "vmnet_music"  # no weights, no torch model: the cheapest real extractor
CORPUS = CorpusConfig(clips=8, songs=8, seconds=3.0, speech_every=0, letterbox_every=4)


@dataclass(frozen=True)
class Built:
    root: Path
    dataset: Path
    release: Path
    server: LoopbackServer
    ids: list[str]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """A dataset of 8 clips through every stage to splits, and its release."""
    import dataclasses

    root = tmp_path_factory.mktemp("release")
    clips = generate_corpus(root / "corpus", CORPUS)
    dataset = root / "dataset"
    with LoopbackServer(root / "corpus") as server:
        urls = write_url_list(root / "urls.csv", clips, server, seconds=CORPUS.seconds)
        config = dataclasses.replace(MANIFEST_PRESETS["svm10k"], id_column="id")
        build_manifest([urls], dataset, config)
        run_download(dataset, DownloadConfig(backoff_s=0.2, allow_private_hosts=True))
        preprocess = dataclasses.replace(PREPROCESS_PRESETS["svm10k"], workers=2)
        run_preprocess(dataset, preprocess)
        run_extract(dataset, ExtractConfig(extractors=(EXTRACTOR,), device="cpu", workers=1))
        make_splits(dataset, SplitConfig(ratios=(0.5, 0.25, 0.25)))
        write_release(dataset, root / "release")
        table = pq.read_table(root / "release" / fmt.SAMPLES, columns=["sample_id"])
        yield Built(root, dataset, root / "release", server, table.column(0).to_pylist())


def _later(built: Built, gone: set[str], replaced: str | None) -> Path:
    """The corpus as the web serves it later: ``gone`` answer 404, ``replaced`` another clip."""
    web = built.root / f"later-{len(gone)}-{replaced}"
    web.mkdir(exist_ok=True)
    for clip in (built.root / "corpus").glob("*.mp4"):
        if clip.stem in gone or (web / clip.name).exists():
            continue
        source = clip
        if clip.stem == replaced:
            source = render_replacement(built.root / "replacement.mp4", CORPUS).path
        shutil.copy(source, web / clip.name)
    return web


def svm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svm_toolkit", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "SVM_ALLOW_PRIVATE_HOSTS": "1"},
        timeout=300,
    )


def invoke(*args: str | Path) -> Result:
    """``svm ARGS`` in this process (faster than a subprocess: no imports to repeat)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_release_holds_what_a_rebuild_needs_and_no_media(built: Built) -> None:
    names = sorted(p.relative_to(built.release).as_posix() for p in built.release.rglob("*"))
    assert names == [
        "README.md",
        "SHA256SUMS",
        "features",
        f"features/{EXTRACTOR}.parquet",
        f"features/{EXTRACTOR}.projection.parquet",
        "fingerprints.parquet",
        "release.json",
        "samples.parquet",
    ]
    meta = json.loads((built.release / "release.json").read_text())
    assert meta["format"] == "svm-release" and meta["version"] == 1
    assert meta["counts"]["samples"] == len(built.ids) == 7  # demo007 has too few likes
    assert set(meta["files"]) == set(names) - {"features", "release.json", "SHA256SUMS"}
    assert meta["extractors"][EXTRACTOR]["dim"] == 1140
    assert meta["extractors"][EXTRACTOR]["provenance"]["extractor"] == EXTRACTOR
    assert (
        "cookies" not in json.dumps(meta["stages"])
        and "workers" not in meta["stages"]["preprocess"]
    )
    samples = pq.read_table(built.release / fmt.SAMPLES)
    assert samples.schema.names == fmt.SAMPLES_SCHEMA.names
    rows = samples.to_pylist()
    manifest = {r["sample_id"]: r for r in read_manifest(built.dataset).to_pylist()}
    for row in rows:
        assert row["url"] == manifest[row["sample_id"]]["url"]
        assert row["split"] in ("train", "val", "test") and row["group"]
        assert abs(row["media_duration_s"] - 3.0) < 0.2 and row["crop_h"] > 0
    letterboxed = next(r for r in rows if r["sample_id"] == "demo003")
    assert letterboxed["crop_h"] < letterboxed["height"]  # the crop box is released
    checks = pq.read_table(built.release / fmt.check_path(EXTRACTOR))
    assert checks.schema.field("check").type.list_size == fmt.CHECK_DIMS
    # the checksum file is the standard one: sha256sum -c reads it
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=built.release, capture_output=True)
    assert done.returncode == 0, done.stdout
    assert "svm rebuild RELEASE" in (built.release / "README.md").read_text()


def test_release_refuses_a_folder_that_is_not_empty(built: Built, tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty; pass --overwrite"):
        write_release(built.dataset, tmp_path)
    with pytest.raises(InputError, match=r"no release\.json, so it is not a release"):
        write_release(built.dataset, tmp_path, overwrite=True)
    assert (tmp_path / "old.txt").read_text() == "mine"
    (tmp_path / fmt.RELEASE_JSON).write_text("{}")  # an old release: --overwrite replaces it
    summary = write_release(built.dataset, tmp_path, overwrite=True)
    assert summary.samples == 7 and not (tmp_path / "old.txt").exists()
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))  # no temp folder left
    done = invoke("release", built.dataset, "-o", tmp_path / "again", "--json")
    shown = json.loads(done.stdout)
    assert shown["stage"] == "release" and shown["samples"] == 7
    assert shown["extractors"] == {EXTRACTOR: 7} and shown["fingerprints"] == 7
    assert set(shown["files"]) == set(summary.files)


def test_a_changed_file_is_named(built: Built, tmp_path: Path) -> None:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    fmt.read_release(copy)  # intact
    path = copy / fmt.check_path(EXTRACTOR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"{EXTRACTOR}\.parquet: sha256 .* does not match"):
        fmt.read_release(copy)
    done = svm("rebuild", copy, "-o", tmp_path / "rebuilt")
    assert done.returncode == 2 and f"{EXTRACTOR}.parquet: sha256" in done.stderr
    assert not (tmp_path / "rebuilt" / "manifest.parquet").exists()
    (copy / fmt.FINGERPRINTS).unlink()
    with pytest.raises(InputError, match=r"fingerprints\.parquet: missing from the release"):
        fmt.read_release(copy)


def test_a_newer_format_version_is_refused(built: Built, tmp_path: Path) -> None:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    meta = json.loads((copy / "release.json").read_text())
    (copy / "release.json").write_text(json.dumps({**meta, "version": 2}))
    with pytest.raises(InputError, match=r"svm-release version 2, this svm_toolkit .* reads"):
        fmt.read_release(copy)
    (copy / "release.json").write_text(json.dumps({**meta, "format": "other"}))
    with pytest.raises(InputError, match="not an svm-release file"):
        fmt.read_release(copy)


def test_rebuild_and_compare_report_exactly_what_changed(built: Built, tmp_path: Path) -> None:
    gone, replaced = {built.ids[1], built.ids[6]}, built.ids[4]
    built.server.root = _later(built, gone, replaced).resolve()
    rebuilt = tmp_path / "rebuilt"
    config = RebuildConfig(download=DownloadConfig(backoff_s=0.2, allow_private_hosts=True))
    summary = rebuild_release(built.release, rebuilt, config)
    assert [s.step for s in summary.steps] == list(
        ("manifest", "download", "preprocess", "extract", "splits")
    )
    assert summary.extractors == (EXTRACTOR,)
    manifest = read_manifest(rebuilt).to_pylist()
    released = pq.read_table(built.release / fmt.SAMPLES).to_pylist()
    assert [(r["sample_id"], r["url"], r["split"]) for r in manifest] == [
        (r["sample_id"], r["url"], r["split"]) for r in released
    ]  # the release's ids, URLs and splits
    splits = pq.read_table(rebuilt / "splits.parquet").to_pylist()
    split_of = {r["sample_id"]: (r["split"], r["group"]) for r in released}
    assert {r["sample_id"]: (r["split"], r["group"]) for r in splits} == {
        k: v for k, v in split_of.items() if k not in gone
    }  # the surviving samples keep their split and group

    comparison = compare_release(built.release, rebuilt)
    assert comparison.samples == 7 and comparison.survived == 5
    assert {m["sample_id"]: m["status"] for m in comparison.missing} == dict.fromkeys(
        gone, "unavailable"
    )
    assert [c["sample_id"] for c in comparison.changed] == [replaced]
    assert comparison.changed[0]["what"].startswith("picture and audio differ")
    facts = comparison.features[EXTRACTOR]
    assert facts["compared"] == 5 and facts["matching"] == 4 and facts["disagree"] == []
    assert facts["below_on_changed"] == [replaced]
    by_split = comparison.by_split
    assert sum(n["released"] for n in by_split.values()) == 7
    assert sum(n["survived"] for n in by_split.values()) == 5
    assert comparison.exit_code() == 2  # changed media is an error
    data = comparison.to_json()
    for key in ("release", "dataset", "samples", "survived", "availability", "by_split"):
        assert key in data
    assert data["availability"] == 5 / 7 and data["missing_by_status"] == {"unavailable": 2}
    assert set(data["changed"][0]) >= {"sample_id", "url", "title", "what", "detail"}
    assert set(data["features"][EXTRACTOR]) >= {
        "compared",
        "median_cosine",
        "matching",
        "threshold",
    }
    assert set(data["splits_check"]) == {"errors", "warnings"}

    # the CLI: a re-run of rebuild continues (nothing left to do), compare writes its report
    again = invoke("rebuild", built.release, "-o", rebuilt, "--json")
    assert again.exit_code == 0, again.output
    steps = {s["step"]: s["summary"] for s in json.loads(again.stdout)["steps"]}
    assert steps["download"].startswith("0 videos (7 done before): nothing to do")
    assert steps["extract"].startswith("0 videos (5 done before)")
    out = tmp_path / "compare"
    done = svm("compare", built.release, rebuilt, "--json", "-o", out)
    assert done.returncode == 2, done.stderr
    shown = json.loads(done.stdout)
    assert shown["stage"] == "compare" and shown["survived"] == 5 and shown["exit_code"] == 2
    assert json.loads((out / "report.json").read_text())["changed"][0]["sample_id"] == replaced
    assert (out / "report.png").stat().st_size > 1000
    text = invoke("compare", built.release, rebuilt)
    assert text.exit_code == 2
    assert "5 of 7 samples survived (71.4 %): 2 unavailable missing; 1 changed;" in text.stdout
    assert f"changed {replaced}: picture and audio differ" in text.stdout


def test_rebuild_stops_after_the_step_asked(built: Built, tmp_path: Path) -> None:
    built.server.root = (built.root / "corpus").resolve()
    rebuilt = tmp_path / "rebuilt"
    done = invoke("rebuild", built.release, "-o", rebuilt, "--until", "manifest", "--json")
    assert done.exit_code == 0, done.output
    assert [s["step"] for s in json.loads(done.stdout)["steps"]] == ["manifest"]
    assert not (rebuilt / "ledger").exists()
    with pytest.raises(InputError, match=r"samples that are not in this release .* empty folder"):
        rebuild_release(built.release, built.dataset)  # the original dataset has demo007 too
    comparison = compare_release(built.release, rebuilt)
    assert comparison.survived == 0 and comparison.missing_by_status == {"pending": 7}
    assert comparison.exit_code() == 2  # no splits of the surviving samples yet: an error
    assert "no splits of the surviving samples" in comparison.splits_check["errors"][0]


def _comparison(**changes: object) -> Comparison:
    base = dict(
        release="r",
        dataset="d",
        samples=2,
        survived=2,
        by_split={"train": {"released": 2, "survived": 2}},
        by_group={},
        missing=[],
        changed=[],
        features={},
        splits_check={"errors": [], "warnings": []},
    )
    return Comparison(**{**base, **changes})  # type: ignore[arg-type]


def test_exit_codes_follow_splits_validate() -> None:
    assert _comparison().exit_code() == 0
    gone = [
        {"sample_id": "a", "url": "u", "split": "train", "status": "unavailable", "detail": None}
    ]
    missing = _comparison(survived=1, missing=gone)
    assert missing.exit_code() == 0 and missing.exit_code(strict=True) == 1
    assert _comparison(survived=1, missing=gone, strict=True).exit_code() == 1
    warned = _comparison(splits_check={"errors": [], "warnings": ["split_sizes: ..."]})
    assert warned.exit_code() == 0 and warned.exit_code(strict=True) == 1
    assert _comparison(splits_check={"errors": ["same_song: ..."], "warnings": []}).exit_code() == 2
    changed = [{"sample_id": "a", "url": "u", "title": "a", "what": "audio differ", "detail": ""}]
    assert _comparison(changed=changed).exit_code() == 2
    disagree = {"x": {"compared": 2, "matching": 1, "threshold": 0.9, "disagree": ["b"]}}
    assert _comparison(features=disagree).exit_code() == 2


def test_fingerprint_similarities() -> None:
    rng = np.random.default_rng(0)
    prints = rng.integers(0, 2**32, 80, dtype=np.uint32)
    assert audio_similarity(prints, prints, 16, 24) == 1.0
    assert audio_similarity(prints, prints[5:], 16, 24) == 1.0  # starts later: an offset
    other = rng.integers(0, 2**32, 80, dtype=np.uint32)
    assert 0.4 < audio_similarity(prints, other, 16, 24) < 0.6  # unrelated: half the bits
    hashes = rng.integers(0, 2**63, 8, dtype=np.uint64)
    flipped = hashes ^ np.uint64(0b111)  # 3 bits moved by a re-encode
    assert picture_share(hashes, flipped, 8) == 1.0
    assert picture_share(hashes, flipped[2:], 8) == 1.0  # starts two frames later
    assert picture_share(hashes, hashes[::-1], 8) < 0.5  # the frames, in another order
    assert picture_share(hashes, rng.integers(0, 2**63, 8, dtype=np.uint64), 8) == 0.0
    assert picture_share(hashes, np.zeros(0, np.uint64), 8) == 0.0
    assert CompareConfig().feature_threshold == 0.9


def _edit_meta(release: Path, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Edit ``release.json`` with ``edit``, then re-make every line of ``SHA256SUMS``."""
    path = release / fmt.RELEASE_JSON
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    sums = release / fmt.CHECKSUMS
    names = [line.partition("  ")[2] for line in sums.read_text().splitlines()]
    sums.write_text("".join(f"{fmt.sha256_file(release / n)}  {n}\n" for n in names))
    return meta


def test_a_release_cannot_set_machine_or_network_settings(
    built: Built, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    hostile = {
        "ytdlp_options": {"postprocessors": [{"key": "Exec", "exec_cmd": "touch /tmp/pwned"}]},
        "proxy": "http://attacker.example:8080",
        "allow_private_hosts": True,
        "cookies_from_browser": "firefox",
        "max_height": 360,
    }

    def edit(meta: dict[str, Any]) -> None:
        meta["stages"]["download"] = hostile
        meta["stages"]["preprocess"] |= {"workers": 64, "write_cropped": True, "frames": 6}

    _edit_meta(copy, edit)
    release = fmt.read_release(copy)  # checksums verified
    with caplog.at_level("WARNING", logger="svm_toolkit.release.rebuild"):
        download = _settings(
            DownloadConfig(), release.stages["download"], "download", DOWNLOAD_FIELDS
        )
        preprocess = _settings(
            PreprocessConfig(workers=2),
            release.stages["preprocess"],
            "preprocess",
            PREPROCESS_FIELDS,
        )
    assert download == DownloadConfig(max_height=360)  # nothing else taken
    assert not download.ytdlp_options and download.proxy is None
    assert not download.allow_private_hosts and download.cookies_from_browser is None
    assert preprocess.frames == 6 and preprocess.workers == 2 and not preprocess.write_cropped
    assert "ytdlp_options" in caplog.text and "proxy" in caplog.text
    assert "allow_private_hosts" in caplog.text and "write_cropped" in caplog.text


@pytest.mark.parametrize(
    ("stage", "settings", "key"),
    [
        ("preprocess", {"frames": 10**9}, "frames"),
        ("preprocess", {"max_media_s": None}, "max_media_s"),
        ("preprocess", {"fingerprint_s": 1e12}, "fingerprint_s"),
        ("preprocess", {"librosa": {"n_fft": 2**31}}, "librosa.n_fft"),
    ],
)
def test_a_release_cannot_ask_for_unbounded_work(
    built: Built, tmp_path: Path, stage: str, settings: dict[str, Any], key: str
) -> None:
    """A release is untrusted: settings that would exhaust the rebuilding machine are refused."""
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    _edit_meta(copy, lambda meta: meta["stages"][stage].update(settings))
    release = fmt.read_release(copy)
    with pytest.raises(InputError, match=rf"stages\.{stage}\.{key} = .*at most"):
        _settings(PreprocessConfig(), release.stages[stage], stage, PREPROCESS_FIELDS)
    ok = _settings(PreprocessConfig(), {"frames": 8}, stage, PREPROCESS_FIELDS)
    assert ok.frames == 8


def test_release_never_replaces_the_dataset_or_a_folder_around_it(built: Built) -> None:
    before = sorted(p.relative_to(built.root) for p in built.root.rglob("*"))
    for out in (built.dataset, built.root, built.dataset / "release", built.dataset / "."):
        with pytest.raises(InputError, match="a folder above it or inside it"):
            write_release(built.dataset, out, overwrite=True)
    assert sorted(p.relative_to(built.root) for p in built.root.rglob("*")) == before


def test_machine_paths_never_enter_the_release() -> None:
    config = {"fps": 1.0, "vggish_pca": "/home/me/vggish_pca.npz", "device": "cuda"}
    assert _portable(config) == {"fps": 1.0}


def test_only_the_files_a_release_lists_are_opened(built: Built, tmp_path: Path) -> None:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    outside = (built.release / fmt.check_path(EXTRACTOR)).resolve()  # a real file elsewhere

    def edit(meta: dict[str, Any]) -> None:
        meta["extractors"][EXTRACTOR]["check"]["file"] = str(outside)

    _edit_meta(copy, edit)
    release = fmt.read_release(copy)
    for name in (str(outside), "../release/samples.parquet", "unlisted.parquet"):
        with pytest.raises(InputError, match="is not one of the files it lists"):
            release.path(name)
    with pytest.raises(InputError, match=r"release\.json: .* is not one of the files it lists"):
        compare_release(copy, built.dataset, CompareConfig(validate_splits=False))


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("files", ["samples.parquet"], "files is not an object"),
        ("files", {"samples.parquet": "abc"}, r"files\['samples\.parquet'\] is not an object"),
        ("extractors", {EXTRACTOR: {"samples": 7}}, rf"extractors\['{EXTRACTOR}'\]\.check"),
        ("stages", {"download": [1]}, r"stages\['download'\] is not an object"),
        (
            "extractors",
            {"..": {"check": {"file": "a", "projection": "b"}}},
            r"extractors\['\.\.'\] is not an extractor name",
        ),
    ],
)
def test_a_malformed_release_json_is_named(
    built: Built, tmp_path: Path, field: str, value: object, named: str
) -> None:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    _edit_meta(copy, lambda meta: meta.update({field: value}))
    with pytest.raises(InputError, match=rf"release\.json: {named}"):
        fmt.read_release(copy, verify=False)


def test_samples_without_split_or_group_are_named(built: Built, tmp_path: Path) -> None:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    samples = pq.read_table(copy / fmt.SAMPLES).drop_columns(["split", "group"])
    pq.write_table(samples, copy / fmt.SAMPLES)
    digest = fmt.sha256_file(copy / fmt.SAMPLES)
    _edit_meta(copy, lambda meta: meta["files"][fmt.SAMPLES].update(sha256=digest))
    release = fmt.read_release(copy)
    with pytest.raises(InputError, match=r"samples\.parquet: missing column split, missing"):
        release.samples()
    with pytest.raises(InputError, match=r"samples\.parquet: missing column split"):
        compare_release(copy, built.dataset, CompareConfig(validate_splits=False))
    with pytest.raises(InputError, match=r"samples\.parquet: missing column split"):
        rebuild_release(copy, tmp_path / "rebuilt", RebuildConfig(until="manifest"))


def test_an_empty_split_in_samples_is_named_with_its_row(built: Built, tmp_path: Path) -> None:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    samples = pq.read_table(copy / fmt.SAMPLES)
    splits = samples.column("split").to_pylist()
    splits[3] = None
    index = samples.schema.get_field_index("split")
    field = samples.schema.field(index).with_nullable(True)  # as another writer could
    samples = samples.set_column(index, field, pa.array(splits))
    pq.write_table(samples, copy / fmt.SAMPLES)
    digest = fmt.sha256_file(copy / fmt.SAMPLES)
    _edit_meta(copy, lambda meta: meta["files"][fmt.SAMPLES].update(sha256=digest))
    with pytest.raises(InputError, match=r"samples\.parquet row 3: split is empty"):
        compare_release(copy, built.dataset, CompareConfig(validate_splits=False))


def test_a_symbolic_link_in_a_release_is_refused(built: Built, tmp_path: Path) -> None:
    """A link would hash, and later open, a file outside the release."""
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    moved = tmp_path / "elsewhere.parquet"
    (copy / fmt.SAMPLES).rename(moved)
    (copy / fmt.SAMPLES).symlink_to(moved)  # same bytes, same checksum
    with pytest.raises(InputError, match="a symbolic link, which a release never holds"):
        fmt.read_release(copy)


def test_flat_pictures_are_not_the_same_picture() -> None:
    rng = np.random.default_rng(1)
    dark, other = np.zeros(40, np.uint64), np.zeros(40, np.uint64)
    dark[::10] = rng.integers(1, 2**63, 4, dtype=np.uint64)  # black but for 4 moments
    other[::10] = rng.integers(1, 2**63, 4, dtype=np.uint64)
    assert picture_share(dark, other, 10) == 0.0  # the 36 black moments count neither way
    assert picture_share(dark, dark, 10) == 1.0
    assert picture_share(np.zeros(40, np.uint64), np.zeros(40, np.uint64), 10) == 0.0


def test_old_keyframe_hashes_are_not_compared_with_a_picture_track(
    built: Built, tmp_path: Path
) -> None:
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    prints = pq.read_table(copy / fmt.FINGERPRINTS)
    rng = np.random.default_rng(2)
    keyframes = [rng.integers(1, 2**63, 8, dtype=np.uint64).tolist() for _ in range(len(prints))]
    column = prints.schema.get_field_index("phash")
    field = prints.schema.field(column)
    prints = prints.set_column(column, field, pa.array(keyframes, field.type))
    pq.write_table(prints.drop_columns(["phash_step_s"]), copy / fmt.FINGERPRINTS)
    digest = fmt.sha256_file(copy / fmt.FINGERPRINTS)
    _edit_meta(copy, lambda meta: meta["files"][fmt.FINGERPRINTS].update(sha256=digest))
    comparison = compare_release(copy, built.dataset, CompareConfig(validate_splits=False))
    assert comparison.survived == 7 and comparison.changed == []
    ours = _fingerprints(copy / fmt.FINGERPRINTS, None)
    theirs = _fingerprints(None, DatasetLayout(built.dataset))
    sample = built.ids[0]
    assert "older version" in str(_picture_not_comparable(ours[sample], theirs[sample]))
    assert _picture_not_comparable(theirs[sample], theirs[sample]) is None


def test_release_files_and_folders_are_synced_before_and_after_the_rename(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from svm_toolkit.release import write as write_module

    synced: list[tuple[str, Path]] = []
    real_file, real_dir = write_module.fsync_file, write_module.fsync_dir

    def sync_file(path: Path) -> None:
        synced.append(("file", path))
        real_file(path)

    def sync_dir(path: Path) -> None:
        synced.append(("dir", path))
        real_dir(path)

    monkeypatch.setattr(write_module, "fsync_file", sync_file)
    monkeypatch.setattr(write_module, "fsync_dir", sync_dir)
    out = tmp_path / "release"
    write_release(built.dataset, out)
    tmp = tmp_path / f".release.tmp-{os.getpid()}"
    files = {("file", tmp / p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert files <= set(synced)
    assert ("dir", tmp) in synced and ("dir", tmp / fmt.FEATURES_DIR) in synced
    assert synced[-1] == ("dir", tmp_path)  # the rename itself, after it


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--weights", "vggish=v.pth"], "--weights needs --extractors naming its extractor"),
        (["--extractors", "vggish", "--weights", "panns=p.pth"], "'panns' is not among"),
        (["--device", "gpu"], "--device"),
    ],
)
def test_rebuild_refuses_bad_flags_before_any_work(
    built: Built,
    tmp_path: Path,
    args: list[str],
    said: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from svm_toolkit.cli import main

    out = tmp_path / "rebuilt"
    with pytest.raises(SystemExit) as stopped:
        main(["rebuild", str(built.release), "-o", str(out), *args])
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err
    assert not out.exists()  # nothing downloaded, nothing written


def test_a_check_file_of_another_shape_is_named_not_a_traceback(
    built: Built, tmp_path: Path
) -> None:
    """A crafted check vector (float64, any length) is refused with the file named."""
    copy = tmp_path / "release"
    shutil.copytree(built.release, copy)
    name = fmt.check_path(EXTRACTOR)
    check = pq.read_table(copy / name)
    vectors = [[0.5] * 7 for _ in range(check.num_rows)]
    crafted = check.set_column(1, "check", pa.array(vectors, pa.list_(pa.float64())))
    pq.write_table(crafted, copy / name)
    digest = fmt.sha256_file(copy / name)
    _edit_meta(copy, lambda meta: meta["files"][name].update(sha256=digest))
    with pytest.raises(InputError, match=rf"{EXTRACTOR}\.parquet: check \(list<.*expected"):
        compare_release(copy, built.dataset, CompareConfig(validate_splits=False))
