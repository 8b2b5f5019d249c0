"""``svm preprocess`` end to end on a dataset of generated videos: outputs, resume, workers."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.errors import InputError
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter, read_shards
from svm_toolkit.preprocess import PreprocessConfig, run_preprocess
from svm_toolkit.preprocess.crop import read_frames
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.schema import (
    COL,
    FINGERPRINT_SCHEMA,
    PICTURE_TRACK_VERSION,
    PREPROCESS_FIELDS,
    ledger_schema,
    mel_schema,
    read_provenance,
    with_provenance,
)
from svm_toolkit.testing import MediaSpec, make_media
from svm_toolkit.testing.speech import SENTENCES, synthetic_speech, write_wav
from tests.real_media import bad_vorbis, real_media

FIELDS = [*ledger_schema(*PREPROCESS_FIELDS).names]
STABLE = ("status", "failed_filters", "crop_x", "crop_y", "crop_w", "crop_h", "width", "fps")
CONFIG = PreprocessConfig(filters=FilterConfig(min_motion=None), mel=("imagebind",), workers=1)


def make_dataset(root: Path) -> Path:
    """A dataset whose download stage is done: six videos, one of them corrupt."""
    layout = DatasetLayout(root)
    root.mkdir(parents=True, exist_ok=True)
    voice = synthetic_speech(SENTENCES[1], seconds=4.0, sample_rate=16_000)
    speech_wav = write_wav(root / "voice.wav", voice, 16_000)
    specs = {
        "good": MediaSpec(seconds=4, size=(160, 240), gop=10),
        "boxed": MediaSpec(seconds=4, size=(160, 240), content=(160, 90), gop=10),
        "talk": MediaSpec(seconds=4, size=(160, 240), audio_file=speech_wav, gop=10),
        "mute": MediaSpec(seconds=4, size=(160, 240), audio=None, gop=10),
        "noise": MediaSpec(seconds=4, size=(160, 240), audio="noise", video="noise", gop=10),
    }
    rows = []
    for sample_id, spec in specs.items():
        path = make_media(layout.media_path(sample_id, ".mp4"), spec)
        rows.append(_download_row(sample_id, path.relative_to(root).as_posix()))
    broken = layout.media_path("broken", ".mp4")
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    rows.append(_download_row("broken", broken.relative_to(root).as_posix()))
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(layout.ledger_dir, "download", schema) as writer:
        writer.write(rows)
    return root


def _download_row(sample_id: str, media_path: str) -> dict[str, object]:
    return {
        COL.sample_id: sample_id,
        COL.stage: "download",
        COL.status: "ok",
        COL.attempts: 1,
        COL.started_at: datetime.now(UTC),
        COL.seconds: 0.1,
        COL.media_path: media_path,
    }


def ledger(root: Path) -> dict[str, dict[str, object]]:
    table = read_shards(root / "ledger", "preprocess")
    assert table is not None
    return {r[COL.sample_id]: r for r in table.to_pylist()}


def outcome(rows: dict[str, dict[str, object]]) -> dict[str, tuple[object, ...]]:
    """What must not depend on timing or worker count (the noise clip differs per dataset)."""
    return {k: tuple(r[c] for c in STABLE) for k, r in rows.items()}


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_dataset(tmp_path_factory.mktemp("stage"))
    summary = run_preprocess(root, CONFIG)
    assert summary.attempted == 6 and summary.cropped == 1
    return root


def test_statuses_scores_and_crops(done: Path) -> None:
    rows = ledger(done)
    assert {k: r[COL.status] for k, r in rows.items()} == {
        "good": "ok",
        "boxed": "ok",
        "talk": "filtered:speech",
        "mute": "filtered:audio",
        "noise": "ok",
        "broken": "decode_error",
    }
    assert (rows["boxed"]["crop_x"], rows["boxed"]["crop_y"]) == (0, 74)
    assert (rows["boxed"]["crop_w"], rows["boxed"]["crop_h"]) == (160, 90)
    assert (rows["good"]["crop_w"], rows["good"]["crop_h"]) == (160, 240)
    assert rows["talk"]["speech_ratio"] > 0.5 > rows["good"]["speech_ratio"]
    assert rows["talk"][COL.failed_filters] == ["speech"]
    assert rows["good"]["audio_rate"] == 44_100 and rows["good"]["audio_channels"] == 1
    assert rows["good"]["width"] == 160 and rows["good"]["rotation"] == 0
    assert rows["broken"]["detail"]
    table = pq.read_table(next((done / "ledger").glob("preprocess-*.parquet")))
    assert table.schema.names == FIELDS
    assert read_provenance(table.schema)["stage"] == "preprocess"


def test_fingerprints_and_mel_only_for_videos_that_pass(done: Path) -> None:
    prints = read_shards(done / "preprocess" / "fingerprints", "part")
    assert prints is not None and prints.schema.names == FINGERPRINT_SCHEMA.names
    by_id = {r[COL.sample_id]: r for r in prints.to_pylist()}
    assert set(by_id) == {"good", "boxed", "noise"}
    assert len(by_id["good"][COL.phash]) >= 2 and len(by_id["good"][COL.chromaprint]) > 10
    for shard in (done / "preprocess" / "fingerprints").glob("*.parquet"):  # the recipe is named
        recipe = read_provenance(pq.read_schema(shard))["picture_track_version"]
        assert recipe == PICTURE_TRACK_VERSION
    mel = read_shards(done / "preprocess" / "mel_imagebind", "part")
    assert mel is not None and mel.schema.equals(mel_schema((1, 128, 204)))  # the shape is seen
    row = {r[COL.sample_id]: r for r in mel.to_pylist()}["good"]
    units = np.asarray(row[COL.mel], dtype=np.float32)
    assert units.shape == (3, 1, 128, 204)
    assert row[COL.timestamps_s] == pytest.approx([0.0, 2 / 3, 4 / 3], abs=0.02)  # AAC pads
    meta = read_provenance(
        pq.read_schema(next((done / "preprocess" / "mel_imagebind").glob("*.parquet")))
    )
    assert meta["unit_shape"] == [1, 128, 204] and meta["recipe"] == "imagebind"


def test_a_rerun_is_a_no_op_and_a_new_recipe_fills_in(done: Path) -> None:
    before = ledger(done)
    again = run_preprocess(done, CONFIG)
    assert (again.attempted, again.skipped, again.candidates) == (0, 6, 6)
    assert ledger(done) == before
    more = run_preprocess(done, dataclasses.replace(CONFIG, mel=("imagebind", "vggish")))
    assert more.attempted == 3  # the ok videos lack vggish; filtered ones need no Mel
    vggish = read_shards(done / "preprocess" / "mel_vggish", "part")
    assert vggish is not None and sorted(vggish.column(COL.sample_id).to_pylist()) == [
        "boxed",
        "good",
        "noise",
    ]
    for folder in ("fingerprints", "mel_imagebind"):  # what the ok videos had is not rewritten
        held = read_shards(done / "preprocess" / folder, "part", columns=[], latest=False)
        assert held is not None and held.num_rows == 3


def test_a_deleted_fingerprint_shard_is_rebuilt_by_a_plain_rerun(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    run_preprocess(root, CONFIG)
    for path in (root / "preprocess" / "fingerprints").glob("part-*"):
        path.unlink()
    again = run_preprocess(root, CONFIG)  # the ledger says ok, the fingerprints are gone: redone
    assert (again.attempted, again.by_status) == (3, {"ok": 3})
    for folder in ("fingerprints", "mel_imagebind"):  # the Mel rows are kept, not written twice
        held = read_shards(root / "preprocess" / folder, "part", columns=[], latest=False)
        assert held is not None
        assert sorted(held.column(COL.sample_id).to_pylist()) == ["boxed", "good", "noise"]
    assert run_preprocess(root, CONFIG).attempted == 0


def test_an_interrupted_run_resumes_to_the_same_result(done: Path, tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    seen = []

    def stop_after_two(result: object) -> None:
        seen.append(result)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_preprocess(root, CONFIG, on_result=stop_after_two)
    assert len(ledger(root)) == 2  # what was finished is committed
    resumed = run_preprocess(root, CONFIG)
    assert (resumed.attempted, resumed.skipped) == (4, 2)
    assert outcome(ledger(root)) == outcome(ledger(done))


def test_worker_processes_give_the_same_rows(done: Path, tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    run_preprocess(root, dataclasses.replace(CONFIG, workers=2))
    assert outcome(ledger(root)) == outcome(ledger(done))


def test_retry_redoes_a_fixed_video_and_write_cropped(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    run_preprocess(root, CONFIG)
    make_media(root / "media" / "br" / "broken.mp4", MediaSpec(seconds=4, size=(160, 240)))
    config = dataclasses.replace(CONFIG, retry=("decode_error",), write_cropped=True)
    summary = run_preprocess(root, config)
    assert summary.attempted == 1 and summary.by_status == {"ok": 1}
    assert ledger(root)["broken"][COL.status] == "ok"
    cropped = ledger(root)["broken"]["cropped_path"]
    assert cropped == "preprocess/cropped/br/broken.mp4"
    assert read_frames(root / cropped, 2).luma.shape[1:] == (240, 160)


def test_no_downloads_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="svm download"):
        run_preprocess(tmp_path, CONFIG)


def test_a_rotated_video_is_measured_as_shown_and_cropped_upright(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    boxed = root / "media" / "bo" / "boxed.mp4"
    turned = boxed.with_name("turned.mp4")
    ffmpeg.run(["-loglevel", "error", "-i", str(boxed), "-c", "copy",
                "-metadata:s:v:0", "rotate=90", str(turned)])  # fmt: skip
    boxed.unlink()
    turned.rename(boxed)  # coded 160 x 240 with bars top and bottom, shown turned by 90 degrees
    run_preprocess(root, dataclasses.replace(CONFIG, write_cropped=True))
    row = ledger(root)["boxed"]
    assert row[COL.status] == "ok" and abs(row["rotation"]) == 90
    assert (row["crop_w"], row["crop_h"]) == (160, 90)  # in coded pixels
    upright = read_frames(root / row["cropped_path"], 2)
    assert upright.rotation == 0 and upright.luma.shape[1:] == (160, 90)  # shown: 90 wide, 160 tall


def test_sound_that_fails_beside_a_good_picture_keeps_the_picture(tmp_path: Path) -> None:
    """Theora + Vorbis whose Vorbis packets ffmpeg rejects: facts, scores and crop are kept."""
    root = tmp_path / "ds"
    layout = DatasetLayout(root)
    made = bad_vorbis(real_media(tmp_path / "src", "ogg", 4.0))
    path = layout.media_path("bad", ".ogg")
    path.parent.mkdir(parents=True)
    path.write_bytes(made.read_bytes())
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(layout.ledger_dir, "download", schema) as writer:
        writer.write([_download_row("bad", path.relative_to(root).as_posix())])
    run_preprocess(root, CONFIG)
    row = ledger(root)["bad"]
    assert row[COL.status] == "decode_error" and row[COL.detail].startswith("audio: ")
    assert (row["crop_w"], row["crop_h"], row["video_codec"]) == (160, 120, "theora")
    assert row["audio_codec"] == "vorbis" and row["audio_channels"] == 2
    # Audio not required: the video goes on as one without sound, the reason in its detail.
    lenient = FilterConfig(min_motion=None, require_audio=False)
    config = dataclasses.replace(CONFIG, filters=lenient, retry=("decode_error",))
    run_preprocess(root, config)
    row = ledger(root)["bad"]
    assert row[COL.status] == "ok" and row[COL.detail].startswith("audio: ")
    assert row["loudness_dbfs"] is None and row["crop_w"] == 160


@pytest.mark.parametrize(("kind", "suffix"), [("ogg", ".ogg"), ("mkv", ".mkv")])
def test_cropped_copies_of_containers_mp4_cannot_copy(
    tmp_path: Path, kind: str, suffix: str
) -> None:
    """Vorbis (Theora in Ogg) or whatever audio the kind holds: a cropped MP4 with AAC or a copy."""
    root = tmp_path / "ds"
    layout = DatasetLayout(root)
    path = layout.media_path("clip", suffix)
    path.parent.mkdir(parents=True)
    path.write_bytes(real_media(tmp_path / "src", kind, 3.0).read_bytes())
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(layout.ledger_dir, "download", schema) as writer:
        writer.write([_download_row("clip", path.relative_to(root).as_posix())])
    run_preprocess(root, dataclasses.replace(CONFIG, write_cropped=True))
    row = ledger(root)["clip"]
    assert row[COL.status] == "ok", row[COL.detail]
    cropped = root / str(row["cropped_path"])
    with av.open(str(cropped)) as container:
        assert container.format.name.startswith("mov,mp4")
        assert container.streams.audio[0].codec_context.name in {"aac", "mp3", "opus"}
