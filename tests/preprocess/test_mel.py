from __future__ import annotations

import numpy as np
import pytest

from svm_toolkit.preprocess.mel import (
    ImageBindAudio,
    _htk_mel_matrix,
    _kaldi_mel_banks,
    _mel,
    clip_sample_ranges,
    clip_starts,
    imagebind_fbank,
    kaldi_fbank,
    vggish_examples,
    vggish_log_mel,
)

SR = 16_000


def sine(hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)


def kaldi_bin_of(hz: float, bins: int) -> int:
    mel_low, mel_high = float(_mel(20.0)), float(_mel(SR / 2))
    centers = mel_low + (np.arange(bins) + 1) * (mel_high - mel_low) / (bins + 1)
    return int(np.argmin(np.abs(centers - float(_mel(hz)))))


def test_kaldi_fbank_shape_and_440_hz_peak() -> None:
    fbank = kaldi_fbank(sine(440, 1.0), num_mel_bins=128, window="hanning")
    assert fbank.shape == (1 + (SR - 400) // 160, 128) == (98, 128) and fbank.dtype == np.float32
    assert int(np.argmax(fbank.mean(axis=0))) == kaldi_bin_of(440, 128)


def test_kaldi_banks_are_triangles_on_the_mel_scale() -> None:
    banks = _kaldi_mel_banks(23, 512, SR, 20.0)
    assert banks.shape == (23, 257) and banks[:, -1].max() == 0
    assert banks.max() <= 1 and np.all(banks.sum(axis=1) > 0)


def test_kaldi_fbank_of_silence_is_the_log_floor() -> None:
    fbank = kaldi_fbank(np.zeros(SR), num_mel_bins=40)
    np.testing.assert_allclose(fbank, np.log(np.finfo(np.float32).eps), rtol=1e-6)
    assert kaldi_fbank(np.zeros(100)).shape == (0, 23)


def test_clip_placement_follows_pytorchvideo() -> None:
    assert [round(s, 2) for s in clip_starts(30.0, 2.0, 3)] == [0.0, 9.33, 18.67]
    assert [round(s, 2) for s in clip_starts(15.0, 2.0, 3)] == [0.0, 4.33, 8.67]
    assert clip_starts(1.0, 2.0, 3) == [0.0, 0.0, 0.0]
    # 10.000 s: the latest start is 8 s, a third of it 42666.67 samples, cut down to 42666.
    assert clip_sample_ranges(160_000, SR, 2.0, 3) == [(0, 32000), (42666, 74666), (85333, 117333)]
    # 10.00025 s: the second clip starts at 2.6667499.. s = sample 42667.99..; as a float the
    # start rounds to 2.66675 s, which would cut at 42668.
    assert clip_sample_ranges(160_004, SR, 2.0, 3)[1] == (42667, 74667)
    assert int(clip_starts(160_004 / SR, 2.0, 3)[1] * SR) == 42668
    assert clip_sample_ranges(100, SR, 2.0, 3) == [(0, 32000)] * 3  # a slice stops at the end


def test_imagebind_input() -> None:
    config = ImageBindAudio()
    out = imagebind_fbank(sine(440, 10.0), config)
    assert out.shape == (3, 1, 128, 204) and out.dtype == np.float32
    # 2 s give 198 frames; the last 6 are zero padding, normalised: (0 - mean) / std.
    np.testing.assert_allclose(out[:, 0, :, 198:], -config.mean / config.std, rtol=1e-6)
    assert int(np.argmax(out[0, 0, :, :198].mean(axis=1))) == kaldi_bin_of(440, 128)
    short = imagebind_fbank(sine(440, 1.0))  # shorter than a clip: every clip is the whole signal
    np.testing.assert_allclose(short[0], short[2], atol=1e-4)


def test_imagebind_input_leaves_the_callers_waveform_alone() -> None:
    """The in-place mean removal of overlapping clips happens on a copy."""
    waveform = (sine(440, 5.0) + 0.25).astype(np.float32)  # 5 s: the clips overlap
    before = waveform.copy()
    imagebind_fbank(waveform)
    np.testing.assert_array_equal(waveform, before)


def test_vggish_matrix_and_440_hz_peak() -> None:
    matrix = _htk_mel_matrix(257, SR, 64, 125.0, 7500.0)
    assert matrix.shape == (257, 64) and np.all(matrix[0] == 0)
    log_mel = vggish_log_mel(sine(440, 1.0))
    assert log_mel.shape == (98, 64)
    edges = np.linspace(float(_mel(125.0)), float(_mel(7500.0)), 66)
    expected = int(np.argmin(np.abs(edges[1:-1] - float(_mel(440.0)))))
    assert int(np.argmax(log_mel.mean(axis=0))) == expected


def test_vggish_examples() -> None:
    examples = vggish_examples(sine(1000, 3.0))
    assert (
        examples.shape == (3, 96, 64) and examples.dtype == np.float32
    )  # 298 frames -> 3 examples
    silent = vggish_examples(np.zeros(SR))
    np.testing.assert_allclose(silent, np.log(0.01), rtol=1e-6)
    assert vggish_examples(np.zeros(SR // 2)).shape == (0, 96, 64)


def test_recipe_registry_shapes_and_the_librosa_recipe_on_a_sine() -> None:
    import librosa

    from svm_toolkit.errors import ConfigError
    from svm_toolkit.preprocess.recipes import MEL_RECIPES, LibrosaMel, get_recipes

    sr = 16_000
    tone = np.sin(2 * np.pi * 440.0 * np.arange(5 * sr) / sr).astype(np.float32)
    for name, recipe in MEL_RECIPES.items():
        out = recipe.compute(tone)
        assert out.units.shape[1:] == recipe.unit_shape, name
        assert len(out.times_s) == len(out.units) and out.units.dtype == np.float32
    (custom,) = get_recipes(("librosa",), LibrosaMel(n_mels=64, fmax=8000.0, top_db=None))
    units = custom.compute(tone)
    assert units.units.shape[1] == 64
    assert units.times_s[1] == pytest.approx(0.01)
    centre = librosa.mel_frequencies(n_mels=64 + 2, fmin=0.0, fmax=8000.0)[1 + 20]
    at_centre = np.sin(2 * np.pi * centre * np.arange(5 * sr) / sr).astype(np.float32)
    assert int(custom.compute(at_centre).units.mean(axis=0).argmax()) == 20
    with pytest.raises(ConfigError, match="unknown Mel recipe"):
        get_recipes(("mfcc",))
