from __future__ import annotations

from pathlib import Path

import pytest

from svm_toolkit.errors import SampleError
from svm_toolkit.probe import probe_media
from svm_toolkit.testing import MediaSpec, make_media
from tests.conftest import probe


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
