from __future__ import annotations

import struct
import subprocess
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest

from svm_toolkit import ffmpeg
from svm_toolkit.config import replace
from svm_toolkit.errors import ConfigError, SampleError
from svm_toolkit.preprocess import audio as audio_module
from svm_toolkit.preprocess import load_audio
from svm_toolkit.preprocess.audio import Take, _samples, load_takes
from svm_toolkit.preprocess.config import PreprocessConfig
from svm_toolkit.preprocess.recipes import MEL_RECIPES, MelChannels, get_recipes
from svm_toolkit.testing import MediaSpec, make_media


@pytest.mark.parametrize("container", ["mp4", "webm", "mkv", "m4a", "mp3", "ogg", "wav"])
def test_any_codec_decodes_to_16k_mono(tmp_path: Path, container: str) -> None:
    video = "testsrc2" if container in ("mp4", "webm", "mkv") else None
    spec = MediaSpec(
        seconds=2.0, video=video, audio="sine", tone_hz=440, sample_rate=44_100, container=container
    )  # type: ignore[arg-type]
    audio = load_audio(make_media(tmp_path / f"x.{container}", spec))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(32_000, abs=1_600)  # 2 s at 16 kHz (codec padding aside)
    middle = audio[4_000:28_000]
    peak_hz = (
        np.argmax(np.abs(np.fft.rfft(middle * np.hanning(len(middle))))) * 16_000 / len(middle)
    )
    assert peak_hz == pytest.approx(440, abs=3)


def test_no_audio_and_garbage(tmp_path: Path, media_dir: Path) -> None:
    with pytest.raises(SampleError, match="no audio stream") as err:
        load_audio(media_dir / "silent.mp4")
    assert err.value.status == "no_audio"
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(SampleError) as err:
        load_audio(tmp_path / "bad.mp4")
    assert err.value.status == "decode_error"


@pytest.mark.parametrize(("name", "codec"), [("x.m4a", "aac"), ("x.wav", "pcm_s16le")])
def test_frame_samples_equal_pyav_to_ndarray(tmp_path: Path, name: str, codec: str) -> None:
    """Planar (AAC's fltp) and packed (WAV's s16) stereo read straight from the frame planes."""
    path = tmp_path / name
    subprocess.run(
        [ffmpeg.require(), "-v", "error", "-f", "lavfi", "-i", "sine=frequency=330:duration=1",
         "-f", "lavfi", "-i", "anoisesrc=duration=1", "-filter_complex", "[0][1]amerge=inputs=2",
         "-c:a", codec, str(path)],
        check=True,
    )  # fmt: skip
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
    assert frames and len(frames[0].layout.channels) == 2
    expected = np.concatenate([frame.to_ndarray() for frame in frames], axis=-1)
    np.testing.assert_array_equal(_samples(frames), expected)


def _surround(path: Path, layout: str, channels: int, codec: str) -> Path:
    """A 2 s 330 Hz tone in every channel of ``layout`` (with a picture for mp4)."""
    pan = "|".join(f"c{i}=c0" for i in range(channels))
    video = (
        ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2"]
        if path.suffix == ".mp4"
        else []
    )
    subprocess.run(
        [ffmpeg.require(), "-v", "error", *video,
         "-f", "lavfi", "-i", "sine=frequency=330:duration=2:sample_rate=48000",
         "-filter_complex", f"[{1 if video else 0}:a]pan={layout}|{pan}[a]",
         *(["-map", "0:v"] if video else []), "-map", "[a]",
         "-c:a", codec, *(["-mapping_family", "255"] if codec == "libopus" else []), str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("name", "layout", "channels", "codec"),
    [("s71.mp4", "7.1", 8, "aac"), ("s16.mka", "hexadecagonal", 16, "libopus")],
)
def test_eight_or_more_planar_channels_decode(
    tmp_path: Path, name: str, layout: str, channels: int, codec: str
) -> None:
    """7.1 AAC segfaulted: PyAV's ``frame.planes`` reads past the 8 data pointers (issue 17.5)."""
    path = _surround(tmp_path / name, layout, channels, codec)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.channels == channels
    audio = load_audio(path)
    assert len(audio) == pytest.approx(32_000, abs=1_600)
    spectrum = np.abs(np.fft.rfft(audio[4_000:28_000]))
    assert np.argmax(spectrum) * 16_000 / 24_000 == pytest.approx(330, abs=3)


def test_max_seconds_stops_decoding(tmp_path: Path) -> None:
    path = make_media(tmp_path / "x.m4a", MediaSpec(seconds=6.0, video=None, container="m4a"))
    assert len(load_audio(path, max_seconds=6.0)) == pytest.approx(96_000, abs=1_600)
    with pytest.raises(SampleError, match=r"longer than 3 s .*--max-media-s") as err:
        load_audio(path, max_seconds=3.0)
    assert err.value.status == "too_long"


def _stating(path: Path, out: Path, *, timescale: int, duration: int, delta: int) -> Path:
    """A copy of an mp4 whose audio track states another length (``mdhd`` and ``stts``).

    FFmpeg takes a track's duration as the smaller of ``mdhd``'s and the sum of ``stts``'s
    sample deltas, so both are rewritten: ``timescale`` ticks per second, ``duration`` ticks,
    every sample ``delta`` ticks. The samples themselves are untouched.
    """
    data = bytearray(path.read_bytes())
    mdhd = data.index(b"mdhd")
    assert data[mdhd + 4] == 0  # version 0: 32-bit times
    data[mdhd + 16 : mdhd + 24] = struct.pack(">II", timescale, duration)
    stts = data.index(b"stts")
    (entries,) = struct.unpack(">I", data[stts + 8 : stts + 12])
    for k in range(entries):
        at = stts + 16 + 8 * k
        data[at : at + 4] = struct.pack(">I", delta)
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize(
    ("timescale", "duration", "delta", "stated_s"),
    [
        pytest.param(1, 10**9, 1 << 24, 1e9, id="states-1e9-s"),  # was 58.2 TiB: MemoryError
        pytest.param(44_100, 4_410, 50, 0.1, id="states-0.1-s"),  # the array grows instead
    ],
)
def test_a_stream_duration_that_lies_costs_nothing(
    tmp_path: Path, timescale: int, duration: int, delta: int, stated_s: float
) -> None:
    """The first allocation is capped; the decoded samples are those of the honest file."""
    honest = tmp_path / "honest.mp4"
    subprocess.run(
        [ffmpeg.require(), "-v", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=44100:duration=2", "-c:a", "aac",
         "-use_editlist", "0", str(honest)],
        check=True,
    )  # fmt: skip
    lying = _stating(honest, tmp_path / "lying.mp4", timescale=timescale, duration=duration,
                     delta=delta)  # fmt: skip
    with av.open(str(lying)) as container:
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        assert float(stream.duration * stream.time_base) == pytest.approx(stated_s, rel=0.05)
    expected = load_audio(honest)
    tracemalloc.start()  # numpy reports its array buffers to tracemalloc
    try:
        audio = load_audio(lying)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(audio, expected)
    assert audio.dtype == np.float32
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # 5 min at 16 kHz is 19 MiB


def _two_channels(path: Path) -> Path:
    """2 s of stereo 44.1 kHz AAC: a 330 Hz tone on the left, noise on the right."""
    subprocess.run(
        [ffmpeg.require(), "-v", "error", "-f", "lavfi",
         "-i", "aevalsrc=0.5*sin(2*PI*330*t)|0.3*(random(0)-0.5):s=44100:d=2",
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_one_decode_gives_every_take(tmp_path: Path) -> None:
    """The mean, the first channel, with either resampler: each as a load of its own gives."""
    path = _two_channels(tmp_path / "stereo.m4a")
    takes = [Take(c, r) for c in ("mean", "first") for r in ("sinc", "resampy")]
    together = load_takes(path, [*takes, takes[0]])
    assert list(together) == takes  # distinct, in order
    for take in takes:
        np.testing.assert_array_equal(together[take], load_audio(path, take=take))
        assert len(together[take]) == pytest.approx(32_000, abs=1_600)
    left = together[Take("first", "sinc")]
    spectrum = np.abs(np.fft.rfft(left[4_000:28_000]))
    assert np.argmax(spectrum) * 16_000 / 24_000 == pytest.approx(330, abs=3)
    mean = together[Take("mean", "sinc")]  # half the tone, plus half the noise
    assert np.sqrt(np.mean(mean**2)) < np.sqrt(np.mean(left**2))
    every = load_takes(path, [Take("all", "sinc")])[Take("all", "sinc")]
    assert every.shape == (2, len(left))
    np.testing.assert_array_equal(every[0], left)
    np.testing.assert_allclose((every[0] + every[1]) / 2, mean, rtol=0, atol=1e-6)


def test_all_channels_of_short_recordings_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ALL_CHANNELS_S the take ``all`` keeps channel 0 alone (memory: one signal)."""
    path = _two_channels(tmp_path / "stereo.m4a")
    monkeypatch.setattr(audio_module, "ALL_CHANNELS_S", 1.0)
    every = load_audio(path, take=Take("all", "sinc"))
    assert every.shape[0] == 1
    np.testing.assert_array_equal(every[0], load_audio(path, take=Take("first", "sinc")))
    mono = make_media(tmp_path / "mono.m4a", MediaSpec(seconds=1.0, video=None, container="m4a"))
    assert load_audio(mono, take=Take("all", "sinc")).shape[0] == 1


def test_channel_policy_is_a_recipe_parameter() -> None:
    assert MEL_RECIPES["imagebind"].take == Take("all", "sinc")  # ImageBind's data.py
    assert MEL_RECIPES["vggish"].take == Take("mean", "resampy")  # torchvggish
    assert MEL_RECIPES["librosa"].take == Take("mean", "sinc")
    assert MEL_RECIPES["imagebind"].config["channels"] == "first"  # in the shards' provenance
    assert MEL_RECIPES["vggish"].config["resampler"] == "resampy"
    config = replace(PreprocessConfig(), {"channels": {"imagebind": "mean"}})
    imagebind, vggish = get_recipes(("imagebind", "vggish"), channels=config.channels)
    assert imagebind.take == Take("mean", "sinc") and vggish.take == Take("mean", "resampy")
    assert imagebind.config["channels"] == "mean"
    with pytest.raises(ConfigError, match=r"channels.vggish must be one of mean, first"):
        MelChannels(vggish="left")  # type: ignore[arg-type]
