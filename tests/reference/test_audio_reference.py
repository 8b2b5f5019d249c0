"""Audio input parity: our decoder and Mel recipes against the reference code, on real stereo files.

Real stereo 44.1 kHz music-like recordings (left: a three-note chord swelling twice a second
over a noise floor; right: a rising chirp with noise bursts), 10.3 s, in mp4/AAC and
ogg/Vorbis, decoded once with PyAV as the reference input (channels x samples, float32):

* the gain: our ``mean`` take is the channel mean, (L + R) / 2 (swresample's mono downmix was
  (L + R) / sqrt 2, gain 1.414), and ``first`` is channel 0; a 5.1 file too;
* the ``vggish`` recipe, as ``svm preprocess`` computes it from the file, against torchvggish's
  ``vggish_input.waveform_to_examples(samples x channels, 44100)`` (channel mean, resampy,
  log-Mel examples): max abs diff <= 1e-4;
* the ``imagebind`` recipe against the steps of ImageBind's ``load_and_transform_audio_data``
  (``imagebind/data.py``: ``torchaudio.functional.resample``, ``ConstantClipsPerVideoSampler``,
  ``waveform2melspec`` (Kaldi fbank of channel 0), ``Normalize``) applied to the decoded
  (C, T) tensor (``torchaudio.load`` needs torchcodec, not installed): max abs diff <= 1e-3;
* both resamplers against the functions they rebuild (``resampy.resample``,
  ``torchaudio.functional.resample``), chunked as the decoder streams.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
import resampy
import torch
import torchaudio.functional
from imagebind import data as imagebind_data
from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler
from torchvggish import vggish_input
from torchvision import transforms

from svm_toolkit import ffmpeg
from svm_toolkit.preprocess.audio import Take, load_audio
from svm_toolkit.preprocess.recipes import imagebind_recipe, vggish_recipe
from svm_toolkit.preprocess.resample import StreamingResampler, output_length, resample

SECONDS = 10.3
LEFT = (
    "(0.2*sin(2*PI*220*t)+0.15*sin(2*PI*277.18*t)+0.12*sin(2*PI*329.63*t))"
    "*(0.6+0.4*sin(2*PI*2*t))+0.02*(random(0)-0.5)"
)
RIGHT = "0.3*sin(2*PI*(150+120*t)*t)+0.2*(random(1)-0.5)*lt(mod(t\\,1.5)\\,0.3)"
CODECS = {"mp4": ("-c:a", "aac", "-b:a", "192k"), "ogg": ("-c:a", "libvorbis", "-q:a", "6")}


def _stereo(path: Path, seconds: float = SECONDS) -> Path:
    codec = CODECS[path.suffix.removeprefix(".")]
    subprocess.run(
        [ffmpeg.require(), "-v", "error", "-f", "lavfi",
         "-i", f"aevalsrc={LEFT}|{RIGHT}+0.05:s=44100:d={seconds}", *codec, str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module", params=sorted(CODECS))
def stereo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real stereo 44.1 kHz recording, different content in each channel, > 8 s."""
    return _stereo(tmp_path_factory.mktemp("stereo") / f"song.{request.param}")


def _decoded(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    """The file's samples as PyAV decodes them, float32, shape (channels, samples), and rate."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
        rate = container.streams.audio[0].codec_context.sample_rate
    return np.concatenate(frames, axis=-1).astype(np.float32), rate


def test_mean_take_is_the_channel_mean(stereo: Path) -> None:
    wave, rate = _decoded(stereo)
    assert wave.shape[0] == 2 and rate == 44_100
    left, right = wave
    assert np.corrcoef(left, right)[0, 1] < 0.2  # the channels differ
    mean = load_audio(stereo, sample_rate=rate)  # same rate: no resampling
    np.testing.assert_array_equal(mean, (left + right) / np.float32(2))
    np.testing.assert_array_equal(load_audio(stereo, sample_rate=rate, take=Take("first")), left)
    at16k = load_audio(stereo)  # resampled: the gain is still 1 (swresample's mono: 1.414)
    reference = resample((left + right) / np.float32(2), rate, 16_000, "sinc")
    gain = np.sqrt(np.mean(at16k**2) / np.mean(reference**2))
    assert gain == pytest.approx(1.0, abs=1e-6)


def test_surround_mean_is_the_mean_of_six_channels(tmp_path: Path) -> None:
    path = tmp_path / "surround.mp4"
    sources = [f"0.1*sin(2*PI*{110 * (k + 1)}*t)+0.05*(random({k})-0.5)" for k in range(6)]
    subprocess.run(
        [ffmpeg.require(), "-v", "error", "-f", "lavfi",
         "-i", f"aevalsrc={'|'.join(sources)}:s=44100:d=3:c=5.1", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    wave, rate = _decoded(path)
    assert wave.shape[0] == 6
    np.testing.assert_allclose(
        load_audio(path, sample_rate=rate), wave.mean(axis=0), rtol=0, atol=1e-7
    )


def test_vggish_examples_equal_torchvggish(stereo: Path) -> None:
    recipe = vggish_recipe()
    ours = recipe.compute(load_audio(stereo, take=recipe.take)).units
    wave, rate = _decoded(stereo)
    reference = vggish_input.waveform_to_examples(wave.T, rate, return_tensor=False)
    assert ours.shape == reference.shape == (10, 96, 64)
    diff = float(np.abs(ours - reference).max())
    assert diff <= 1e-4, diff


def _imagebind_reference(wave: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    """``load_and_transform_audio_data``'s steps on a decoded (C, T) waveform (defaults)."""
    waveform = torchaudio.functional.resample(torch.from_numpy(wave), orig_freq=rate,
                                              new_freq=16_000)  # fmt: skip
    sampler = ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=3)
    normalize = transforms.Normalize(mean=-4.268, std=9.138)
    clips = []
    for start, end in imagebind_data.get_clip_timepoints(sampler, waveform.size(1) / 16_000):
        clip = waveform[:, int(start * 16_000) : int(end * 16_000)]
        clips.append(normalize(imagebind_data.waveform2melspec(clip, 16_000, 128, 204)))
    return torch.stack(clips).numpy()


def test_imagebind_fbank_equals_the_reference(stereo: Path) -> None:
    recipe = imagebind_recipe()
    ours = recipe.compute(load_audio(stereo, take=recipe.take)).units
    reference = _imagebind_reference(*_decoded(stereo))
    assert ours.shape == reference.shape == (3, 1, 128, 204)
    diff = float(np.abs(ours - reference).max())
    assert diff <= 1e-3, diff


def test_imagebind_fbank_of_a_short_stereo_recording(tmp_path: Path) -> None:
    """Under 8 s ImageBind's clips overlap and its in-place mean removal over both channels
    moves channel 0 where they do: the take ``all`` keeps both channels so the recipe can."""
    path = _stereo(tmp_path / "short.mp4", seconds=5.3)
    recipe = imagebind_recipe()
    audio = load_audio(path, take=recipe.take)
    assert audio.shape[0] == 2
    reference = _imagebind_reference(*_decoded(path))
    diff = float(np.abs(recipe.compute(audio).units - reference).max())
    assert diff <= 1e-3, diff
    first_only = imagebind_recipe().compute(load_audio(path, take=Take("first", "sinc"))).units
    assert float(np.abs(first_only - reference).max()) > 0.1  # channel 0 alone is not it


@pytest.mark.parametrize("rate", [44_100, 48_000, 22_050, 8_000])
def test_resamplers_equal_the_references_when_streamed(rate: int) -> None:
    rng = np.random.default_rng(rate)
    x = (rng.standard_normal(rate * 21 + 17) * 0.3).astype(np.float32)
    expected = {
        "sinc": torchaudio.functional.resample(torch.from_numpy(x), rate, 16_000).numpy(),
        "resampy": resampy.resample(x, rate, 16_000),
    }
    for method, reference in expected.items():
        pieces: list[npt.NDArray[np.float32]] = []
        stream = StreamingResampler(rate, 16_000, method, pieces.append)  # type: ignore[arg-type]
        for at in range(0, len(x), 12_345):
            stream.push(x[at : at + 12_345])
        stream.close()
        streamed = np.concatenate(pieces)
        assert streamed.shape == reference.shape
        # sinc: the same kernel and convolution (0 here); resampy: float32 sums, ~5e-7
        tolerance = 0.0 if method == "sinc" else 2e-6
        np.testing.assert_allclose(streamed, reference, rtol=0, atol=tolerance)


@pytest.mark.parametrize(
    ("orig", "samples"), [(44_100, 44_100 * 600 + 1), (44_100, 44_100 * 300 + 7)]
)
def test_sinc_output_length_equals_torchaudio_on_long_recordings(orig: int, samples: int) -> None:
    """torchaudio takes the ceiling in float32: past 2**22 outputs it can be one sample shorter."""
    reference = torchaudio.functional.resample(torch.zeros(1, samples), orig, 16_000).shape[-1]
    assert output_length(samples, orig, 16_000, "sinc") == reference
