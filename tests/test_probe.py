from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.errors import SampleError
from svm_toolkit.probe import TruncatedMedia, probe_media
from svm_toolkit.schema import Status
from svm_toolkit.testing import MediaSpec, make_media
from tests.conftest import probe
from tests.real_media import KINDS, cut_in_half, real_media, stereo


def test_facts_agree_with_ffprobe(media_dir: Path) -> None:
    facts = probe_media(media_dir / "clip.mp4")
    reference = {s["codec_type"]: s for s in probe(media_dir / "clip.mp4")["streams"]}
    assert (
        (facts.width, facts.height)
        == (reference["video"]["width"], reference["video"]["height"])
        == (160, 120)
    )
    assert (facts.video_codec, facts.audio_codec) == ("h264", "aac")
    assert facts.fps == pytest.approx(10.0) and facts.duration_s == pytest.approx(2.0, abs=0.1)
    assert facts.has_video and facts.has_audio
    assert not probe_media(media_dir / "silent.mp4").has_audio


def test_audio_only(tmp_path: Path) -> None:
    facts = probe_media(
        make_media(tmp_path / "a.m4a", MediaSpec(seconds=1, video=None, container="m4a"))
    )
    assert (facts.has_video, facts.has_audio, facts.width) == (False, True, None)


@pytest.mark.parametrize(
    ("content", "message"), [(b"", "empty file"), (b"\x00" * 512, "unreadable media")]
)
def test_bad_files_are_decode_errors(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "x.mp4").write_bytes(content)
    with pytest.raises(SampleError, match=message) as err:
        probe_media(tmp_path / "x.mp4")
    assert err.value.status == "decode_error"


# --------------------------------------------------------------------------------------------
# Files cut short (tests/real_media.py: real containers, stereo sound, cut as `head -c` does).


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 8 s file of each kind."""
    folder = tmp_path_factory.mktemp("whole")
    for kind in KINDS:
        real_media(folder, kind, 8.0)
    return folder


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("mkv", "its Matroska segment runs to byte"),
        ("webm", "its Matroska segment runs to byte"),
        ("mp4", "its 'mdat' box runs to byte"),
        ("ogg", "the file ends inside its last Ogg page"),
        ("avi", "its 'RIFF' chunk runs to byte"),
        ("flv", "its packets end early"),  # no structure to check: the packets' times tell
    ],
)
def test_a_cut_file_is_truncated_with_what_decodes(
    whole: Path, tmp_path: Path, kind: str, why: str
) -> None:
    source = next(whole.glob(f"{kind}.*"))
    assert probe_media(source).duration_s == pytest.approx(8.0, abs=0.1)
    with pytest.raises(TruncatedMedia) as err:
        probe_media(cut_in_half(source, tmp_path))
    assert err.value.status == Status.TRUNCATED.value and why in err.value.detail
    facts = err.value.facts
    assert facts is not None and facts.has_video and facts.has_audio
    assert facts.duration_s is not None and 3.0 < facts.duration_s < 4.5  # what decodes
    assert f"{facts.duration_s:.2f} s decode" in err.value.detail
    if kind in ("mkv", "webm", "mp4", "flv"):  # they state the whole duration
        assert "8.0" in err.value.detail and "s in the header" in err.value.detail


def test_a_cut_mp4_whose_index_was_at_the_end_is_truncated_though_nothing_opens(
    whole: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        TruncatedMedia, match=r"its 'mdat' box runs to byte .* nothing decodes"
    ) as e:
        probe_media(cut_in_half(whole / "mp4_moov_last.mp4", tmp_path))
    assert e.value.facts is None


@pytest.mark.parametrize(
    ("kind", "options", "seconds"),
    [
        ("mkv", {"audio_s": 7.0}, 8.0),  # the sound ends a second before the picture
        ("mp4", {"audio_s": 9.0}, 9.0),  # ... or a second after it
        ("flv", {"audio_s": 7.0}, 8.0),  # checked by packet times only
        ("flv", {"audio_s": 9.0}, 9.0),
        ("mkv", {"vfr": True}, 8.0),  # a variable frame rate
        ("mp4", {"vfr": True}, 8.0),
        ("mkv", {"live": True, "audio_s": 6.5}, 8.0),  # written to a pipe: no size, no duration
    ],
)
def test_whole_files_are_not_truncated(
    tmp_path: Path, kind: str, options: dict[str, Any], seconds: float
) -> None:
    path = real_media(tmp_path, kind, 8.0, **options)
    assert probe_media(path).duration_s == pytest.approx(seconds, abs=0.1)


def test_whole_files_of_every_kind_are_not_truncated(whole: Path) -> None:
    for path in sorted(whole.iterdir()):  # B-frames (x264), Theora, VP8, MPEG-4 part 2, FLV1
        facts = probe_media(path)
        assert facts.duration_s == pytest.approx(8.0, abs=0.1), path.name
        assert facts.audio_channels == 2 and facts.audio_rate in (44_100, 48_000), path.name


def test_a_live_matroska_file_cut_short_has_what_decodes(tmp_path: Path) -> None:
    """Written to a pipe it states no size and no duration: nothing to compare, only to measure."""
    cut = cut_in_half(real_media(tmp_path, "mkv", 8.0, live=True))
    facts = probe_media(cut)
    assert facts.duration_s is not None and 3.0 < facts.duration_s < 4.5


def test_an_mp3_is_checked_only_when_it_states_its_frame_count(tmp_path: Path) -> None:
    """LAME's Info header states it; without one FFmpeg guesses from the size and bit rate."""
    for name, extra in (("counted.mp3", []), ("guessed.mp3", ["-q:a", "4", "-write_xing", "0"])):
        ffmpeg.run(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", stereo(8.0),
                    "-c:a", "libmp3lame", *extra, str(tmp_path / name)])  # fmt: skip
    assert probe_media(tmp_path / "counted.mp3").duration_s == pytest.approx(8.0, abs=0.1)
    with pytest.raises(TruncatedMedia, match=r"8.00 s in the header, 4.0\d s decode"):
        probe_media(cut_in_half(tmp_path / "counted.mp3"))
    assert probe_media(tmp_path / "guessed.mp3").duration_s == pytest.approx(8.0, abs=0.5)
    cut = probe_media(cut_in_half(tmp_path / "guessed.mp3")).duration_s  # as long as it looks
    assert cut is not None and 3.0 < cut < 5.0
