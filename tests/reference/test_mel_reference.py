"""Our Mel recipes against the reference code itself, on Vorbis-coded music-like recordings.

References: pytorchvideo 0.1.5's ``ConstantClipsPerVideoSampler``; ImageBind's ``data.py``
(imagebind-unofficial 0.1.1: ``get_clip_timepoints``, ``waveform2melspec``,
``load_and_transform_audio_data``); torchaudio 2.11.1's ``compliance.kaldi.fbank``; torchvggish
0.2's ``vggish_input.waveform_to_examples``. The recordings are 16 kHz mono (no resampling
involved): a chord with a swelling third, a chirp every 3 s and noise bursts, through
libvorbis, so some bands are coded as empty, as in real compressed music.

``torchaudio.load`` needs torchcodec, which is not installed: ``load_and_transform_audio_data``
gets a ``torchaudio.load`` that decodes the same file with soundfile (libsndfile), the one stub.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile
import torch
import torchaudio
from imagebind import data
from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler
from torchaudio.compliance import kaldi
from torchvggish import vggish_input
from torchvision import transforms

from svm_toolkit import ffmpeg
from svm_toolkit.preprocess.mel import (
    ImageBindAudio,
    clip_sample_ranges,
    clip_starts,
    imagebind_fbank,
    kaldi_fbank,
    vggish_examples,
)

SR = 16_000
CONFIG = ImageBindAudio()
#: A normalised ImageBind value at Kaldi log energy -15, one nat above the float32 floor
#: (ln eps = -15.94): below it the band is all but empty and float32 rounding dominates.
NEAR_FLOOR = (-15.0 - CONFIG.mean) / CONFIG.std

MUSIC = (
    "0.25*sin(2*PI*220*t)+0.2*sin(2*PI*277.18*t)+0.2*sin(2*PI*329.63*t)*(1+sin(2*PI*0.5*t))/2"
    "+0.3*sin(2*PI*(200+400*t)*t)*lt(mod(t,3),1)+0.2*(random(0)-0.5)*lt(mod(t,1.7),0.3)"
)

Loader = Callable[[float], tuple[Path, npt.NDArray[np.float32]]]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Loader:
    """``recording(seconds)``: a 16 kHz mono Ogg/Vorbis file of music and its decoded samples."""
    folder = tmp_path_factory.mktemp("music")

    def make(seconds: float) -> tuple[Path, npt.NDArray[np.float32]]:
        path = folder / f"music_{seconds:g}.ogg"
        if not path.exists():
            source = f"aevalsrc='{MUSIC}':s={SR}:d={seconds:g}"
            encode = ["-c:a", "libvorbis", "-ac", "1", "-ar", str(SR), str(path)]
            ffmpeg.run(["-loglevel", "error", "-y", "-f", "lavfi", "-i", source, *encode])
        samples, rate = soundfile.read(path, dtype="float32")
        assert rate == SR and len(samples) == round(seconds * SR)
        return path, samples

    return make


class ReferenceAudio:
    """Meta's ``load_and_transform_audio_data`` on one file, its ``torchaudio.load`` stubbed.

    Attributes:
        loaded: the waveforms the reference loaded (and mutated), in call order.
    """

    def __init__(self) -> None:
        self.loaded: list[torch.Tensor] = []
        self._dtype = torch.float32
        self._part = slice(None)

    def load(self, path: str | Path, *_: object, **__: object) -> tuple[torch.Tensor, int]:
        """``torchaudio.load``'s answer (channels first, sample rate), decoded by soundfile."""
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        waveform = torch.from_numpy(np.ascontiguousarray(samples[self._part].T))
        self.loaded.append(waveform.to(self._dtype))
        return self.loaded[-1], rate

    def __call__(
        self, path: Path, dtype: torch.dtype = torch.float32, part: slice = slice(None)
    ) -> npt.NDArray[np.float32]:
        """The reference's (3, 1, 128, 204) input for the ``part`` of ``path``, in ``dtype``."""
        self._dtype, self._part = dtype, part
        out: npt.NDArray[np.float32] = data.load_and_transform_audio_data([str(path)], "cpu")[0]
        return np.asarray(out)


@pytest.fixture
def reference_audio(monkeypatch: pytest.MonkeyPatch) -> ReferenceAudio:
    reference = ReferenceAudio()
    monkeypatch.setattr(torchaudio, "load", reference.load)
    return reference


def reference_ranges(samples: int, clips: int = 3) -> list[tuple[int, int]]:
    """ImageBind's clip slices: the sampler's clip times, ``int(t * sr)`` as data.py cuts."""
    sampler = ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=clips)
    return [(int(a * SR), int(b * SR)) for a, b in data.get_clip_timepoints(sampler, samples / SR)]


# -- clip placement ------------------------------------------------------------------------------


def test_clip_sample_ranges_are_the_references_for_every_length() -> None:
    """Every 1/16000 s from 7.5 to 8.5 s, the shortest lengths, and 3,000 random ones to 10 min."""
    rng = np.random.default_rng(18)
    lengths = [
        *range(0, 400),
        *range(31_900, 32_100),
        *range(120_000, 136_000),
        *rng.integers(0, 600 * SR, 3_000).tolist(),
    ]
    for samples in lengths:
        assert clip_sample_ranges(samples, SR, 2.0, 3) == reference_ranges(samples), samples


def test_clip_starts_are_the_samplers_for_video_durations() -> None:
    """ImageBind's 5 video clips on float durations (frames / fps): the same starts, exactly."""
    rng = np.random.default_rng(5)
    for duration in [0.0, 1.0, 2.0, 2.04, 10.0, 13.04, *rng.uniform(0, 600, 2_000).tolist()]:
        sampler = ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=5)
        starts = [float(start) for start, _ in data.get_clip_timepoints(sampler, duration)]
        assert clip_starts(duration, 2.0, 5) == starts, duration


# -- ImageBind's normalised fbank ----------------------------------------------------------------


@pytest.mark.parametrize("seconds", [8.5, 12.3])
def test_imagebind_fbank_is_the_reference_on_recordings_longer_than_8_s(
    seconds: float, recording: Loader, reference_audio: ReferenceAudio
) -> None:
    path, samples = recording(seconds)
    ours = imagebind_fbank(samples)
    reference = reference_audio(path)
    assert ours.shape == reference.shape == (3, 1, 128, 204)
    assert np.abs(ours - reference).max() <= 1e-3
    assert np.abs(ours - reference_audio(path, torch.float64)).max() <= 5e-4


def test_imagebind_fbank_on_parts_of_a_recording_differs_by_rounding_in_empty_bands(
    recording: Loader, reference_audio: ReferenceAudio
) -> None:
    """Within 1e-3 wherever the band holds any energy; beyond that, float32 rounding.

    Where Vorbis left a band all but empty (Kaldi log energy below -15; the floor is
    ln eps = -15.94), float32 rounding moves the reference's own output by up to 1.4e-3 (its
    float32 run against its float64 run), so ours may differ by that much there; ours stays
    within 5e-4 of the reference's float64 run everywhere.
    """
    path, samples = recording(30.0)
    rng = np.random.default_rng(4)  # 6 parts; the reference's float32 run is 1.2e-3 off in one
    for seconds in rng.uniform(8.01, 30.0, 6):
        first = int(rng.integers(0, len(samples) - int(seconds * SR) + 1))
        part = slice(first, first + int(seconds * SR))
        ours = imagebind_fbank(samples[part])
        reference = reference_audio(path, part=part)
        diff = np.abs(ours - reference)
        assert diff[reference >= NEAR_FLOOR].max() <= 1e-3, part
        assert diff.max() <= 2e-3, part
        assert np.abs(ours - reference_audio(path, torch.float64, part)).max() <= 5e-4, part


@pytest.mark.parametrize("seconds", [1.5, 5.3])
def test_imagebind_fbank_keeps_the_references_in_place_mean_removal_on_short_recordings(
    seconds: float, recording: Loader, reference_audio: ReferenceAudio
) -> None:
    """Under 8 s the clips overlap and the reference removes each clip's mean in place.

    ``waveform2melspec`` runs ``waveform -= waveform.mean()`` on its slice, a view of the loaded
    waveform: the next clip reads the overlap already shifted. We do the same, so we match; each
    clip taken on its own (a copy) would not.
    """
    path, samples = recording(seconds)
    ours = imagebind_fbank(samples)
    reference = reference_audio(path)
    (loaded,) = reference_audio.loaded
    assert not np.array_equal(loaded[0].numpy(), samples)  # the reference mutated its input
    assert np.abs(ours - reference).max() <= 1e-3
    waveform = torch.from_numpy(samples)[None]
    normalise = transforms.Normalize(mean=CONFIG.mean, std=CONFIG.std)
    own_copies = np.stack(
        [
            normalise(data.waveform2melspec(waveform[:, a:b].clone(), SR, 128, 204)).numpy()
            for a, b in reference_ranges(len(samples))
        ]
    )
    if seconds < CONFIG.clip_duration_s:  # every clip is the whole recording
        assert np.abs(ours[0] - ours[1]).max() <= 1e-4  # the second mean removal is ~0
        assert np.abs(own_copies - reference).max() <= 1e-3
    else:  # only frames that straddle the end of the earlier clip move, by up to 0.03
        ranges = reference_ranges(len(samples))
        moved = np.abs(own_copies - reference)[:, 0].max(axis=1) > 1e-3  # (clips, frames)
        assert np.abs(own_copies - reference).max() > 1e-2
        for k in range(1, len(ranges)):
            edge = ranges[k - 1][1] - ranges[k][0]  # in clip k's samples
            straddling = [f for f in range(204) if 160 * f < edge < 160 * f + 400]
            assert set(np.flatnonzero(moved[k])) <= set(straddling), k
        assert not moved[0].any()


def test_imagebind_fbank_of_a_stereo_recording_removes_the_mean_of_both_channels(
    tmp_path: Path, reference_audio: ReferenceAudio
) -> None:
    """The reference removes each clip's mean over both channels, then reads the first one.

    Under 8 s with a 0.05 offset in the right channel only, the step this leaves in the left
    channel at the end of the earlier clip moves its frames by up to about 1 normalised unit.
    """
    path = tmp_path / "stereo.ogg"
    right = "0.3*sin(2*PI*523.25*t)+0.3*(random(1)-0.5)*lt(mod(t,0.9),0.2)+0.05"
    source = f"aevalsrc='{MUSIC}|{right}':s={SR}:d=5.3"
    ffmpeg.run(["-loglevel", "error", "-y", "-f", "lavfi", "-i", source, "-c:a", "libvorbis",
                str(path)])  # fmt: skip
    samples, _ = soundfile.read(path, dtype="float32", always_2d=True)
    assert samples.shape == (84_800, 2)
    reference = reference_audio(path)
    assert np.abs(imagebind_fbank(samples.T) - reference).max() <= 1e-3
    assert np.abs(imagebind_fbank(samples[:, 0]) - reference).max() > 0.1


# -- torchaudio's Kaldi fbank --------------------------------------------------------------------

IMAGEBIND_KALDI = {"htk_compat": True, "use_energy": False, "window_type": "hanning"}


def _kaldi(signal: npt.NDArray[np.floating], dtype: torch.dtype, **kwargs: object) -> np.ndarray:
    tensor = torch.from_numpy(np.asarray(signal)).to(dtype)[None]
    out: np.ndarray = kaldi.fbank(tensor, sample_frequency=SR, dither=0.0, **kwargs).numpy()
    return out


def test_kaldi_fbank_is_torchaudios_on_a_tone_in_noise() -> None:
    t = np.arange(2 * SR) / SR
    rng = np.random.default_rng(0)
    signal = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(2 * SR)).astype(
        np.float32
    )
    imagebind = _kaldi(signal, torch.float32, num_mel_bins=128, **IMAGEBIND_KALDI)
    ours = kaldi_fbank(signal, num_mel_bins=128, window="hanning")
    assert np.abs(ours - imagebind).max() <= 5e-4
    assert np.abs(kaldi_fbank(signal) - _kaldi(signal, torch.float32)).max() <= 5e-5  # povey, 23


def test_kaldi_fbank_is_torchaudios_on_a_recording(recording: Loader) -> None:
    """Both float32: apart by float32 rounding in near-empty bands, which is mostly theirs."""
    _, samples = recording(12.3)
    ours = kaldi_fbank(samples, num_mel_bins=128, window="hanning")
    reference = _kaldi(samples, torch.float32, num_mel_bins=128, **IMAGEBIND_KALDI)
    exact = _kaldi(samples, torch.float64, num_mel_bins=128, **IMAGEBIND_KALDI)
    assert np.abs(ours - reference).max() <= 1.5e-2
    assert np.abs(ours - reference)[reference >= -15.0].max() <= 6e-3
    assert np.abs(ours - exact).max() <= 4e-3


# -- VGGish log-Mel ------------------------------------------------------------------------------


def test_vggish_examples_are_torchvggishs(recording: Loader) -> None:
    _, samples = recording(12.3)
    reference = vggish_input.waveform_to_examples(samples, SR, return_tensor=False)
    ours = vggish_examples(samples)
    assert ours.shape == reference.shape == (12, 96, 64)
    assert np.abs(ours - reference).max() <= 1e-4
