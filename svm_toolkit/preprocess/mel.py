"""The Mel recipes the models were trained with, in numpy (torch only multiplies by the filters).

* :func:`kaldi_fbank`: Kaldi's filterbank as ``torchaudio.compliance.kaldi.fbank`` computes it
  (snip edges, DC removal, pre-emphasis 0.97, window, FFT padded to a power of two, power
  spectrum, triangular Mel bins on ``1127 ln(1 + f/700)`` from 20 Hz to Nyquist, log floored at
  float32 eps).
* :func:`imagebind_fbank`: ImageBind's audio input (facebookresearch/ImageBind ``data.py``):
  3 clips of 2 s cut at the sample indices pytorchvideo's ``ConstantClipsPerVideoSampler``
  (exact fractions) and ``data.py``'s slicing give, mean removed in place as the reference
  does, 128-bin Hann fbank, padded or cut to 204 frames, normalised with mean -4.268 and std
  9.138 (``data.py``'s ``waveform2melspec`` and ``load_and_transform_audio_data``).
* :func:`vggish_examples`: VGGish's log-mel examples (tensorflow/models ``mel_features.py`` and
  ``vggish_params.py``): periodic-Hann STFT magnitude (25 ms / 10 ms, FFT 512), 64 HTK Mel bands
  over 125-7500 Hz, ``log(mel + 0.01)``, non-overlapping 0.96 s examples of 96 x 64 (§4.1).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal, TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
_F = TypeVar("_F", np.float32, np.float64)

_FLOAT32_EPS: Final = float(np.finfo(np.float32).eps)


def _mel(hz: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
    """HTK/Kaldi Mel scale: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def _product(values: npt.NDArray[np.floating], matrix: FloatArray) -> FloatArray:
    """``values @ matrix`` in float32, by torch (on its own threads: one in preprocess workers).

    Not numpy's ``@``: its OpenBLAS runs one thread per core whatever the process's affinity or
    torch's setting, and on a worker pinned to one core (or one of as many workers as cores)
    they fight: the (198, 257) x (257, 128) product of a Kaldi clip took 8 ms instead of 0.13,
    and its spinning threads slowed the FFTs after it (a 60 s clip's imagebind + vggish features:
    80 ms -> 23 ms on one core).
    """
    import torch

    with torch.no_grad():
        product = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)) @ (
            torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
        )
    result: FloatArray = product.numpy()
    return result


def _frames(signal: npt.NDArray[_F], length: int, hop: int) -> npt.NDArray[_F]:
    """Frames of ``length`` samples every ``hop`` (edges snipped), shape (n, length)."""
    count = 1 + (len(signal) - length) // hop if len(signal) >= length else 0
    if count <= 0:
        return np.zeros((0, length), signal.dtype)
    return np.lib.stride_tricks.sliding_window_view(signal, length)[::hop][:count]


# -- Kaldi fbank ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _kaldi_mel_banks(
    num_bins: int, fft_size: int, sample_rate: int, low_hz: float
) -> npt.NDArray[np.float32]:
    """Kaldi's triangular Mel filters, shape (num_bins, fft_size // 2 + 1); the last column is 0."""
    nyquist = sample_rate / 2
    mel_low, mel_high = float(_mel(low_hz)), float(_mel(nyquist))
    delta = (mel_high - mel_low) / (num_bins + 1)
    bin_mel = _mel(np.arange(fft_size // 2) * sample_rate / fft_size)
    left = mel_low + np.arange(num_bins)[:, None] * delta
    center, right = left + delta, left + 2 * delta
    up = (bin_mel - left) / (center - left)
    down = (right - bin_mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


def kaldi_fbank(
    waveform: npt.NDArray[np.floating],
    *,
    sample_rate: int = 16_000,
    num_mel_bins: int = 23,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    window: Literal["hanning", "povey", "hamming"] = "povey",
    low_hz: float = 20.0,
    preemphasis: float = 0.97,
) -> FloatArray:
    """Log Mel filterbank energies as Kaldi computes them (dither 0, no energy term).

    Args:
        waveform: float, shape (samples,), mono at ``sample_rate``.
        sample_rate: Hz.
        num_mel_bins: Mel bands.
        frame_length_ms: window, milliseconds.
        frame_shift_ms: hop, milliseconds.
        window: ``hanning`` (symmetric Hann, as ImageBind asks), ``povey`` (Kaldi's default) or
            ``hamming``.
        low_hz: lowest band edge, Hz (the highest is Nyquist).
        preemphasis: pre-emphasis coefficient.

    Returns:
        float32, shape (frames, num_mel_bins), natural-log energies; frames =
        ``1 + (samples - window) // hop`` (0 when the signal is shorter than one window).
    """
    length = int(sample_rate * frame_length_ms / 1000)
    hop = int(sample_rate * frame_shift_ms / 1000)
    fft_size = 1 << (length - 1).bit_length()
    # float32 throughout, as torchaudio computes it (and twice as fast as float64).
    raw = _frames(np.asarray(waveform, dtype=np.float32), length, hop)
    if not len(raw):
        return np.zeros((0, num_mel_bins), dtype=np.float32)
    frames = raw - raw.mean(axis=1, keepdims=True, dtype=np.float32)
    emphasised = frames.copy()
    emphasised[:, 1:] -= np.float32(preemphasis) * frames[:, :-1]
    emphasised[:, 0] -= np.float32(preemphasis) * frames[:, 0]
    emphasised *= _window(window, length)
    spectrum = np.fft.rfft(emphasised, n=fft_size)
    power = spectrum.real**2 + spectrum.imag**2
    energies = _product(power, _kaldi_mel_banks(num_mel_bins, fft_size, sample_rate, low_hz).T)
    return np.log(np.maximum(energies, np.float32(_FLOAT32_EPS)))


@functools.lru_cache(maxsize=8)
def _window(kind: str, length: int) -> npt.NDArray[np.float32]:
    """Kaldi's symmetric windows of ``length`` samples."""
    hann = 0.5 - 0.5 * np.cos(2 * math.pi * np.arange(length) / (length - 1))
    shapes = {"hanning": hann, "povey": hann**0.85, "hamming": 0.08 + 0.92 * hann}
    return shapes[kind].astype(np.float32)


# -- ImageBind -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageBindAudio:
    """ImageBind's audio constants (``load_and_transform_audio_data``'s defaults)."""

    sample_rate: int = 16_000
    num_mel_bins: int = 128
    target_length: int = 204
    clip_duration_s: float = 2.0
    clips_per_video: int = 3
    mean: float = -4.268
    std: float = 9.138


def _clip_start_fractions(duration_s: float, clip_s: float, clips: int) -> list[Fraction]:
    """Clip starts, seconds, exact: pytorchvideo's ``ConstantClipsPerVideoSampler`` arithmetic.

    The latest possible start ``max(duration - clip, 0)`` is a float subtraction (as the sampler
    subtracts its ``Fraction`` clip length from the float duration); the starts are exact
    fractions of it (``Fraction(latest, clips) * i``).
    """
    latest = Fraction(max(duration_s - clip_s, 0.0))
    step = latest / clips
    return [step * i for i in range(clips)]


def clip_starts(duration_s: float, clip_s: float, clips: int) -> list[float]:
    """Clip start times as pytorchvideo's ``ConstantClipsPerVideoSampler`` places them, seconds.

    Computed in exact fractions as the sampler does, then rounded once to float.

    Example:
        >>> [round(s, 2) for s in clip_starts(30.0, 2.0, 3)]
        [0.0, 9.33, 18.67]
    """
    return [float(start) for start in _clip_start_fractions(duration_s, clip_s, clips)]


def clip_sample_ranges(
    samples: int, sample_rate: int, clip_s: float, clips: int
) -> list[tuple[int, int]]:
    """Each clip's ``[first, end)`` sample indices, exactly as ImageBind's ``data.py`` cuts them.

    ImageBind's ``load_and_transform_audio_data`` asks the sampler for clip times on a duration
    of ``samples / sample_rate`` seconds and slices ``waveform[int(start * sr):int(end * sr)]``
    with ``end = start + clip``, both exact fractions; ``end`` may pass the last sample (a
    slice then stops there).

    Args:
        samples: waveform length, samples.
        sample_rate: Hz.
        clip_s: clip length, seconds.
        clips: clips per waveform.

    Returns:
        ``clips`` pairs ``(first, end)`` of sample indices, ``end`` exclusive.

    Example:
        >>> clip_sample_ranges(160_000, 16_000, 2.0, 3)
        [(0, 32000), (42666, 74666), (85333, 117333)]
    """
    clip = Fraction(clip_s)
    return [
        (int(start * sample_rate), int((start + clip) * sample_rate))
        for start in _clip_start_fractions(samples / sample_rate, clip_s, clips)
    ]


def imagebind_fbank(
    waveform: npt.NDArray[np.floating], config: ImageBindAudio = ImageBindAudio()
) -> FloatArray:
    """ImageBind's audio input for one video, as ``load_and_transform_audio_data`` makes it.

    Clips are cut at :func:`clip_sample_ranges`. Each clip's mean is removed in place, in clip
    order, on one shared float32 copy of the waveform, as the reference does: its
    ``waveform2melspec`` runs ``waveform -= waveform.mean()`` on a slice, which is a view of the
    loaded waveform, so when clips overlap (recordings shorter than ``clip * (clips + 1)``: 8 s
    for ImageBind's 3 clips of 2 s) a later clip reads the overlap with the earlier clip's mean
    already taken off. Kaldi removes each frame's mean, so this moves only the frames that
    straddle the end of the earlier clip (by up to 0.03 in normalised units on a mono
    recording); the caller's array is left untouched.

    Given several channels, the reference removes the mean over all of them and computes the
    fbank of the first (``kaldi.fbank`` reads channel 0): so does this. On a stereo recording
    under 8 s whose channels have different offsets, that differs from the fbank of the first
    channel alone (by 0.96 with a 0.05 offset in the right channel).

    Args:
        waveform: float, shape (samples,) or (channels, samples), at ``config.sample_rate``.
        config: ImageBind's constants.

    Returns:
        float32, shape (clips_per_video, 1, num_mel_bins, target_length) = (3, 1, 128, 204),
        normalised.
    """
    if np.ndim(waveform) not in (1, 2):
        raise ValueError(f"a waveform is (samples,) or (channels, samples), got {waveform.shape}")
    sr = config.sample_rate
    shared = np.array(waveform, dtype=np.float32, ndmin=2)  # a copy: the caller's is untouched
    ranges = clip_sample_ranges(
        shared.shape[-1], sr, config.clip_duration_s, config.clips_per_video
    )
    clips = []
    for first, end in ranges:
        clip = shared[:, first:end]  # a view, as the reference's slice is
        if clip.size:
            clip -= clip.mean(dtype=np.float32)
        fbank = kaldi_fbank(
            clip[0], sample_rate=sr, num_mel_bins=config.num_mel_bins, window="hanning"
        ).T
        frames = fbank.shape[1]
        if frames < config.target_length:
            fbank = np.pad(fbank, ((0, 0), (0, config.target_length - frames)))
        clips.append((fbank[:, : config.target_length] - config.mean) / config.std)
    return np.stack(clips)[:, None].astype(np.float32)


# -- VGGish --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VGGishAudio:
    """VGGish's feature constants (``research/audioset/vggish/vggish_params.py``)."""

    sample_rate: int = 16_000
    window_s: float = 0.025
    hop_s: float = 0.010
    num_mel_bins: int = 64
    low_hz: float = 125.0
    high_hz: float = 7500.0
    log_offset: float = 0.01
    example_window_s: float = 0.96
    example_hop_s: float = 0.96


@functools.lru_cache(maxsize=8)
def _htk_mel_matrix(
    spectrum_bins: int, sample_rate: int, num_mel_bins: int, low_hz: float, high_hz: float
) -> npt.NDArray[np.float64]:
    """``mel_features.spectrogram_to_mel_matrix``: shape (spectrum_bins, num_mel_bins), DC row 0."""
    bins_mel = _mel(np.linspace(0.0, sample_rate / 2, spectrum_bins))
    edges = np.linspace(float(_mel(low_hz)), float(_mel(high_hz)), num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (bins_mel[:, None] - lower) / (center - lower)
    down = (upper - bins_mel[:, None]) / (upper - center)
    matrix = np.maximum(0.0, np.minimum(up, down))
    matrix[0, :] = 0.0
    return matrix


@functools.lru_cache(maxsize=8)
def _htk_mel_matrix32(
    spectrum_bins: int, sample_rate: int, num_mel_bins: int, low_hz: float, high_hz: float
) -> FloatArray:
    """:func:`_htk_mel_matrix` in float32, C-contiguous."""
    matrix = _htk_mel_matrix(spectrum_bins, sample_rate, num_mel_bins, low_hz, high_hz)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def vggish_log_mel(
    waveform: npt.NDArray[np.floating], config: VGGishAudio = VGGishAudio()
) -> FloatArray:
    """VGGish's log-mel spectrogram, shape (frames, 64), one frame per 10 ms.

    The STFT is taken in float64, as the published code takes it; the magnitudes are then
    rounded to float32 for the Mel product and the log. A float32 STFT is not enough: its
    rounding, about 1e-6 in a near-empty band of a loud frame, is divided by ``mel + 0.01``
    (1.1e-4 apart from torchvggish on Vorbis-coded music). This way: 3.6e-7 apart, and with
    numpy 2.4 a third faster than a float32 STFT (15 ms against 24 ms for 60 s of audio).
    """
    length = round(config.sample_rate * config.window_s)
    hop = round(config.sample_rate * config.hop_s)
    fft_size = 1 << (length - 1).bit_length()
    frames = _frames(np.asarray(waveform, dtype=np.float32), length, hop)
    periodic_hann = 0.5 - 0.5 * np.cos(2 * math.pi / length * np.arange(length))
    spectrum = np.fft.rfft(frames * periodic_hann, n=fft_size)  # float64
    magnitude: FloatArray = np.abs(spectrum).astype(np.float32)
    matrix = _htk_mel_matrix32(
        fft_size // 2 + 1, config.sample_rate, config.num_mel_bins, config.low_hz, config.high_hz
    )
    log_mel: FloatArray = np.log(_product(magnitude, matrix) + np.float32(config.log_offset))
    return log_mel


def vggish_examples(
    waveform: npt.NDArray[np.floating], config: VGGishAudio = VGGishAudio()
) -> FloatArray:
    """VGGish's input: non-overlapping 0.96 s examples of the log-mel spectrogram.

    Args:
        waveform: float, shape (samples,), mono at 16 kHz.
        config: VGGish's constants.

    Returns:
        float32, shape (examples, 96, 64); examples = ``1 + (frames - 96) // 96`` (0 for less
        than 0.96 s of audio).
    """
    log_mel = vggish_log_mel(waveform, config)
    rate = 1.0 / config.hop_s
    window, hop = round(config.example_window_s * rate), round(config.example_hop_s * rate)
    count = 1 + (len(log_mel) - window) // hop if len(log_mel) >= window else 0
    if count <= 0:
        return np.zeros((0, window, config.num_mel_bins), dtype=np.float32)
    return np.stack([log_mel[i * hop : i * hop + window] for i in range(count)])
