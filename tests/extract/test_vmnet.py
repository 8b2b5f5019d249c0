"""vmnet_music: VM-NET's 1140-d handcrafted librosa music descriptor (no weights)."""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import pytest
import scipy.ndimage
import scipy.signal
import torch

from svm_toolkit.errors import SampleError
from svm_toolkit.extract import music_descriptors as md
from svm_toolkit.extract.backends.vmnet import VMNetMusic
from svm_toolkit.extract.base import Media
from svm_toolkit.extract.registry import get_extractor

SR = 16_000
CHROMA_A = 9  # librosa chroma rows start at C


def tone(freqs: list[float], seconds: float, sr: int = SR) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    return (0.3 * np.asarray(wave)).astype(np.float32)


def block(vector: npt.NDArray[np.float32], stat: str, part: str, name: str) -> np.ndarray:
    return vector[md.descriptor_slice(stat, part, name)]


@pytest.fixture(scope="module")
def vectors() -> dict[str, npt.NDArray[np.float32]]:
    """Descriptors of 30 s tones, a 2 s tone (padded at the end) and silence."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning escapes, silence included
        return {
            "A4": md.music_descriptors(tone([440.0], 30.0), SR),
            "A5": md.music_descriptors(tone([880.0], 30.0), SR),
            "Cmaj": md.music_descriptors(tone([261.63, 329.63, 392.0], 30.0), SR),
            "short": md.music_descriptors(tone([440.0], 2.0), SR),
            "silence": md.music_descriptors(np.zeros(3 * SR, np.float32), SR),
        }


# -- layout ---------------------------------------------------------------------------------------


def test_layout_sums_to_1140() -> None:
    assert md.PART_ROWS == 190
    assert sum(rows for _, rows in md.DESCRIPTORS) == 190
    assert sum(dims for _, dims in md.BREAKDOWN) == md.DIM == 1140
    assert len(md.BREAKDOWN) == 3 * 2 * len(md.DESCRIPTORS)
    assert md.BREAKDOWN[0] == ("mean/harmonic/chroma_stft", 12)
    assert md.BREAKDOWN[-1] == ("max/percussive/zero_crossing_rate", 1)
    assert md.descriptor_slice("mean", "harmonic", "chroma_stft") == slice(0, 12)
    assert md.descriptor_slice("mean", "percussive", "chroma_stft") == slice(190, 202)
    assert md.descriptor_slice("var", "harmonic", "mel") == slice(380 + 24, 380 + 120)
    assert md.descriptor_slice("max", "percussive", "zero_crossing_rate") == slice(1139, 1140)
    with pytest.raises(KeyError):
        md.descriptor_slice("median", "harmonic", "mel")
    config = md.VMNetMusicConfig()
    assert config.clip_samples == 349_440
    assert config.frames == 1366
    assert VMNetMusic.contract.dim == 1140
    assert VMNetMusic.contract.step_s == pytest.approx(29.12)


# -- building blocks ------------------------------------------------------------------------------


def test_median_filter_equals_scipy() -> None:
    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal((300, 200))).astype(np.float32)
    x[:, 50:90] = 0.0  # ties and zeros
    x[10:14] = 1.0
    tiny = rng.standard_normal((7, 10)).astype(np.float32)  # shorter than the kernel
    for arr in (x, tiny):
        for axis, size in ((1, (1, 31)), (0, (31, 1))):
            want = scipy.ndimage.median_filter(arr, size=size, mode="reflect")
            np.testing.assert_array_equal(md.median_filter_axis(arr, 31, axis), want)


def test_hpss_equals_librosa_with_reflect_padding() -> None:
    import librosa

    rng = np.random.default_rng(1)
    y = tone([440.0], 1.5, 12_000) + 0.05 * rng.standard_normal(18_000).astype(np.float32)
    harmonic, percussive = md._hpss(y, md.DEFAULT_CONFIG)
    ref_h, ref_p = librosa.effects.hpss(y, pad_mode="reflect")
    np.testing.assert_allclose(harmonic, ref_h, atol=1e-5)
    np.testing.assert_allclose(percussive, ref_p, atol=1e-5)


def test_delta_is_librosa_05_lfilter_version() -> None:
    rng = np.random.default_rng(2)
    data = rng.standard_normal((20, 60))
    width, half = 9, 5
    taps = np.arange(half - 1.0, -half, -1.0)
    taps /= np.sum(taps**2)
    for order in (1, 2):
        padded = np.pad(data, ((0, 0), (width, width)), mode="edge")
        for _ in range(order):
            padded = scipy.signal.lfilter(taps, 1, padded, axis=-1)
        want = padded[:, -half - data.shape[1] : -half]
        np.testing.assert_allclose(md._delta_v05(data, width, order), want, atol=1e-12)


def test_centre_clip_long_short_and_native_rate() -> None:
    rng = np.random.default_rng(3)
    config = md.DEFAULT_CONFIG
    long = rng.standard_normal(40 * SR + 7).astype(np.float32)
    clip = md.centre_clip(long, SR)
    import soxr

    full = soxr.resample(long, SR, 12_000, quality="HQ")
    start = (len(full) - config.clip_samples) // 2
    assert clip.start_s == pytest.approx(start / 12_000)
    assert clip.samples.shape == (config.clip_samples,) and clip.samples.dtype == np.float32
    np.testing.assert_allclose(clip.samples, full[start : start + config.clip_samples], atol=1e-5)

    short = md.centre_clip(np.ones(2 * SR, np.float32), SR)
    assert short.start_s == 0.0
    assert np.all(short.samples[24_000:] == 0.0)  # padded with zeros at the end
    assert abs(float(short.samples[12_000]) - 1.0) < 1e-3

    native = rng.standard_normal(31 * 12_000).astype(np.float32)
    cut = (len(native) - config.clip_samples) // 2
    same = md.centre_clip(native, 12_000)
    np.testing.assert_array_equal(same.samples, native[cut : cut + config.clip_samples])


# -- the descriptor -------------------------------------------------------------------------------


def test_shape_dtype_finite(vectors: dict[str, npt.NDArray[np.float32]]) -> None:
    for v in vectors.values():
        assert v.shape == (1140,) and v.dtype == np.float32
        assert np.all(np.isfinite(v))
    # means and maxima are dB below each matrix's maximum, floored at -80
    tone_vec = vectors["short"]
    means_and_max = np.concatenate([tone_vec[:380], tone_vec[760:]])
    assert means_and_max.min() >= -80.0 - 1e-3 and means_and_max.max() <= 1e-3
    assert tone_vec[380:760].min() >= 0.0  # variances


def test_chroma_follows_pitch_class(vectors: dict[str, npt.NDArray[np.float32]]) -> None:
    for name in ("chroma_stft", "chroma_cens"):
        a4 = block(vectors["A4"], "mean", "harmonic", name)
        a5 = block(vectors["A5"], "mean", "harmonic", name)
        cmaj = block(vectors["Cmaj"], "mean", "harmonic", name)
        # A4 and A5 share the pitch class: both peak at A and agree closely
        assert int(np.argmax(a4)) == int(np.argmax(a5)) == CHROMA_A
        assert np.corrcoef(a4, a5)[0, 1] > 0.95
        # a C major chord does not look like an A: its strongest classes are C, E and G
        assert set(np.argsort(cmaj)[-3:].tolist()) == {0, 4, 7}
        assert np.corrcoef(a4, cmaj)[0, 1] < 0.5
        assert np.abs(a4 - cmaj).mean() > 2 * np.abs(a4 - a5).mean()


def test_silence_is_finite(vectors: dict[str, npt.NDArray[np.float32]]) -> None:
    silence = vectors["silence"]
    assert np.all(np.isfinite(silence))
    assert np.all(block(silence, "var", "harmonic", "chroma_stft") == 0.0)


# -- the extractor --------------------------------------------------------------------------------


def test_registry_and_no_weights() -> None:
    assert get_extractor("vmnet_music") is VMNetMusic
    assert VMNetMusic.default_weights() is None
    extractor = VMNetMusic()
    assert extractor.weights is None
    extractor.load("cpu")  # no file needed
    assert isinstance(extractor.model, torch.nn.Identity)


def test_prepare_embed_pool(vectors: dict[str, npt.NDArray[np.float32]]) -> None:
    extractor = VMNetMusic()
    extractor.load("cpu")
    units = extractor.prepare(Media(None, None, tone([440.0], 2.0), SR))
    assert units.data.shape == (1, 1140) and units.data.dtype == np.float32
    # deterministic: the same audio computed again (through the extractor) gives the same bits
    np.testing.assert_array_equal(units.data[0], vectors["short"])
    np.testing.assert_array_equal(units.times_s, np.zeros(1, np.float32))

    # mixed batch of several videos == each video alone; embed is the identity
    per_video = [vectors[k][None] for k in ("A4", "Cmaj", "silence")]
    batch = torch.from_numpy(np.concatenate(per_video))
    out = extractor.embed(batch)
    assert out.dtype == torch.float32 and out.shape == (3, 1140)
    np.testing.assert_array_equal(out.numpy(), batch.numpy())
    for i, single in enumerate(per_video):
        np.testing.assert_array_equal(extractor.embed(torch.from_numpy(single)).numpy()[0], out[i])

    pooled = extractor.pool(units.data)  # the step itself, L2-normalised like every pooled vector
    assert float(np.linalg.norm(units.data[0])) > 100.0  # the raw step keeps its scale
    np.testing.assert_allclose(pooled, units.data[0] / np.linalg.norm(units.data[0]), rtol=1e-6)
    assert abs(float(np.linalg.norm(pooled)) - 1.0) < 1e-6
    assert extractor.pool(np.zeros((0, 1140), np.float32)).shape == (1140,)


def test_prepare_long_audio_start_time() -> None:
    audio = tone([330.0, 495.0], 35.0)
    units = VMNetMusic().prepare(Media(None, None, audio, SR))
    want = ((35 * 12_000 - md.DEFAULT_CONFIG.clip_samples) // 2) / 12_000
    assert units.times_s[0] == pytest.approx(want, abs=1e-4)
    assert np.all(np.isfinite(units.data))


def test_prepare_without_audio() -> None:
    with pytest.raises(SampleError) as info:
        VMNetMusic().prepare(Media(None, None, None, SR))
    assert info.value.status == "no_audio"
    with pytest.raises(RuntimeError):
        VMNetMusic().embed(torch.zeros(1, 1140))
