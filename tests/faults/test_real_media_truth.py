"""Real media that must not pass as fine: files cut short, sound that does not decode.

Real containers made by ffmpeg with a stereo soundtrack (tests/real_media.py): half of a
13.04 s Matroska file (the header still says 13.04 s, 6.4 s decode), half of an Ogg/Theora
file, half of an MP4 whose index was at the end, and an Ogg/Theora file whose Vorbis packets
ffmpeg rejects beside a good picture. Through the real ``svm download`` (loopback server) and
``svm preprocess``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from svm_toolkit.cli import main
from svm_toolkit.io.paths import DatasetLayout
from svm_toolkit.io.shards import ShardWriter, read_shards
from svm_toolkit.schema import COL, Status, ledger_schema, with_provenance
from svm_toolkit.testing import LoopbackServer, Route
from tests.faults.download_helpers import dataset, leftovers, svm_download
from tests.faults.download_helpers import ledger as download_ledger
from tests.real_media import bad_vorbis, cut_in_half, real_media

ATTEMPTS = 2


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files: whole ones and their damaged copies, side by side."""
    folder = tmp_path_factory.mktemp("media")
    whole = real_media(folder, "mkv", 13.04, name="whole.mkv")
    cut_in_half(whole).rename(folder / "cut.mkv")
    cut_in_half(real_media(folder, "ogg", 8.0, name="theora.ogg")).rename(folder / "cut.ogg")
    cut_in_half(real_media(folder, "mp4_moov_last", 8.0)).rename(folder / "cut.mp4")
    bad_vorbis(real_media(folder, "ogg", 4.0, name="small.ogg"), "badaudio.ogg")
    return folder


def svm(*args: str | Path) -> tuple[int, str]:
    """Run the ``svm`` CLI in this process: its exit code and what it wrote to stderr."""
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return (code if isinstance(code, int) else 1), err.getvalue()


def downloaded(root: Path, files: dict[str, Path]) -> Path:
    """A dataset whose download stage placed ``files`` (sample id -> file) and recorded ok."""
    layout = DatasetLayout(root)
    rows = []
    for sample_id, source in files.items():
        path = layout.media_path(sample_id, source.suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(source.read_bytes())
        rows.append(
            {
                COL.sample_id: sample_id,
                COL.stage: "download",
                COL.status: Status.OK.value,
                COL.attempts: 1,
                COL.started_at: datetime.now(UTC),
                COL.seconds: 0.1,
                COL.media_path: path.relative_to(root).as_posix(),
            }
        )
    schema = with_provenance(ledger_schema(pa.field(COL.media_path, pa.string())), "download")
    with ShardWriter(layout.ledger_dir, "download", schema) as writer:
        writer.write(rows)
    return root


def test_preprocess_tells_cut_files_and_bad_sound_and_keeps_what_was_read(
    media: Path, tmp_path: Path
) -> None:
    names = ("whole.mkv", "cut.mkv", "cut.ogg", "cut.mp4", "badaudio.ogg")
    root = downloaded(tmp_path / "ds", {n.replace(".", "_"): media / n for n in names})
    code, err = svm("preprocess", root, "--workers", "1", "--mel", "none")
    assert code == 0 and "Traceback" not in err, err
    table = read_shards(root / "ledger", "preprocess")
    assert table is not None
    rows = {r[COL.sample_id]: r for r in table.to_pylist()}
    assert {k: r[COL.status] for k, r in rows.items()} == {
        "whole_mkv": "ok",
        "cut_mkv": "truncated",
        "cut_ogg": "truncated",
        "cut_mp4": "truncated",
        "badaudio_ogg": "decode_error",
    }
    assert rows["whole_mkv"]["media_duration_s"] == pytest.approx(13.04, abs=0.05)

    cut = rows["cut_mkv"]  # the facts are what decodes, the detail says both durations
    assert "13.04 s in the header" in cut[COL.detail] and "s decode" in cut[COL.detail]
    assert 5.0 < cut["media_duration_s"] < 8.0
    assert f"{cut['media_duration_s']:.2f} s decode" in cut[COL.detail]
    assert (cut["width"], cut["height"], cut["video_codec"], cut["audio_codec"]) == (
        160, 120, "h264", "vorbis"
    )  # fmt: skip
    assert cut["audio_channels"] == 2 and cut["crop_w"] is None  # not decoded further
    assert "the file ends inside its last Ogg page" in rows["cut_ogg"][COL.detail]
    assert 3.0 < rows["cut_ogg"]["media_duration_s"] < 4.5
    assert "nothing decodes" in rows["cut_mp4"][COL.detail]
    assert rows["cut_mp4"]["width"] is None  # the file does not open: no facts to keep

    bad = rows["badaudio_ogg"]  # the picture decodes: its facts, scores and crop are kept
    assert bad[COL.detail].startswith("audio: ") and "cannot decode audio" in bad[COL.detail]
    assert (bad["width"], bad["height"], bad["video_codec"], bad["audio_codec"]) == (
        160, 120, "theora", "vorbis"
    )  # fmt: skip
    assert bad["media_duration_s"] == pytest.approx(4.0, abs=0.05)
    assert (bad["crop_x"], bad["crop_y"], bad["crop_w"], bad["crop_h"]) == (0, 0, 160, 120)
    assert bad["motion"] is not None and bad["loudness_dbfs"] is None

    again = svm("preprocess", root, "--workers", "1", "--mel", "none", "--retry", "truncated")
    assert again[0] == 0, again[1]  # a retry of the same cut files says the same
    table = read_shards(root / "ledger", "preprocess")
    assert table is not None
    assert sorted(r[COL.status] for r in table.to_pylist()).count("truncated") == 3


@pytest.fixture(scope="module")
def server(media: Path) -> Iterator[LoopbackServer]:
    with LoopbackServer(media) as srv:
        yield srv


def test_a_cut_download_is_fetched_again_then_truncated_and_never_placed(
    tmp_path: Path, server: LoopbackServer
) -> None:
    config = tmp_path / "fast.yaml"
    config.write_text("backoff_s: 0.01\nbackoff_max_s: 0.05\n")
    urls = {
        "whole": server.url(Route.MEDIA, "whole.mkv"),
        "cut": server.url(Route.MEDIA, "cut.mkv"),  # served whole: a file that is cut itself
    }
    ds = dataset(tmp_path, urls)
    result = svm_download(ds, "--attempts", str(ATTEMPTS), "--config", str(config))
    assert result.returncode == 0, result.stderr
    rows = download_ledger(ds)
    assert {k: r[COL.status] for k, r in rows.items()} == {"whole": "ok", "cut": "truncated"}
    assert rows["cut"][COL.attempts] == ATTEMPTS  # retried in the run, as a network failure
    assert "13.04 s in the header" in str(rows["cut"][COL.detail])
    assert server.requests.count("/media/cut.mkv") >= ATTEMPTS
    assert leftovers(ds) == [] and [p.stem for p in (ds / "media").rglob("*.*")] == ["whole"]
