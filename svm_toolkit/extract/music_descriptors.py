"""VM-NET / CBVMR's 1140-d handcrafted music descriptors, in numpy and librosa.

Hong, Im and Yang (arXiv 1704.06761, ICMR 2018) describe each music track by statistics of
librosa features of its central 29.12 s. Their code is ``csehong/VM-NET``,
``data/audio_feature_extractor/librosa_feature.py`` (constants in ``youtube-8M_audio.py``: SR
12 kHz, n_fft 512, hop 256, 29.12 s). This module re-implements that
file. It was read through the code search tool, not copied. The reference runs as follows:

1. Load at 12 kHz. If the audio is too short, zeros are appended **at the end** until it is
   ``int(29.12 * 12000) = 349,440`` samples long. If it is too long, the central 349,440
   samples are kept; they start at ``(n - 349440) // 2``.
2. Split it with ``librosa.effects.hpss`` (STFT 2048/512, median kernel 31, soft masks,
   power 2, margin 1) into a harmonic part and a percussive part.
3. For the harmonic part, then the percussive part, stack these frame-wise descriptors, with
   ``hop 256`` (1,366 frames). Each descriptor matrix goes through ``logamplitude(|X|,
   ref_power=np.max)``: ``10 log10(max(1e-10, |X|))`` minus the same of the matrix's maximum,
   floored at that maximum minus 80 dB. So every row is in dB relative to the largest value
   of *its own matrix*, in [-80, 0].

   ====================  ====  ====================================================
   descriptor            rows  how (librosa 0.5 semantics)
   ====================  ====  ====================================================
   chroma_stft             12  power STFT 512, tuning estimated, max-normalised
   chroma_cens             12  CQT from C1, 7 octaves x 12 bins, CENS (smoothing 41)
   mel                     96  power STFT 512, 96 Slaney Mel bands built for
                               **sr = 22,050 Hz** (the reference passes no ``sr``)
   mfcc                    20  128 Mel bands, STFT **2048**, sr 12 kHz, dB, DCT-II ortho
   mfcc_delta              20  librosa 0.5 ``delta`` (width 9, edge padding)
   mfcc_delta2             20  librosa 0.5 ``delta(order=2)``: the filter applied twice
   rms                      1  ``sqrt(mean_k |S[k, t]|^2)`` over STFT-512 magnitude bins
   spectral_centroid        1  STFT-512 magnitude
   spectral_bandwidth       1  STFT-512 magnitude, p = 2
   spectral_rolloff         1  STFT-512 magnitude, 85 %
   poly1                    2  ``polyfit`` of order 1 to each magnitude frame
   poly2                    3  ``polyfit`` of order 2 to each magnitude frame
   zero_crossing_rate       1  frames of 512, edge padding
   **per part**           190
   ====================  ====  ====================================================

4. Aggregate over time: ``mean`` (380), then ``var`` (population, 380), then ``max`` (380).
   That gives **3 x 2 x 190 = 1140** dimensions in total. The order is statistic, then part
   (harmonic, percussive), then the descriptor rows in the table order. :data:`BREAKDOWN`
   spells the order out, and :func:`descriptor_slice` finds a block.

Which librosa version the reference used, and how this module follows it:

* The reference calls ``feature.rmse(y=..., n_fft=...)`` and ``logamplitude``, so it ran on
  **librosa 0.5.x**. In 0.6, ``rmse`` dropped ``n_fft``; ``chroma_cens`` first appears in 0.5.
* This module follows 0.5 where 0.11 behaves differently:

  - STFT centre padding is ``reflect`` (0.11 defaults to zeros);
  - ``chroma_cens`` uses 12 CQT bins per octave (0.5 matched ``n_chroma``; 0.11 uses 36);
  - ``rms`` is the mean over STFT bins (0.11 applies a Parseval correction);
  - ``delta`` is the 0.5 ``lfilter`` version. With ``order=2``, that version is the
    first-order filter applied twice, and the result lags by 4 frames. This is kept on
    purpose, because it is what the reference computed.

* The mel matrix is kept the way the reference builds it: for 22,050 Hz although the audio
  is 12 kHz. Its 96 bands therefore fall at about 0.544x their nominal frequencies.

The reference's python2 ``/ 2`` in the centre cut is integer division, and so is this module's.

What may differ from the original output (not measured: librosa 0.5 is not installed here):

* The reference resampled the original file with ``resampy`` (``kaiser_best``). Here the
  toolkit's 16 kHz track is resampled with soxr HQ.
* The CQT and the tuning estimators are librosa 0.11's.
* When the reference padded, numpy's ``hstack`` promoted the samples to float64; here the
  samples stay float32.

Speed: HPSS median filtering is the slowest step. :func:`median_filter_axis` gives the same
values as ``scipy.ndimage.median_filter``, using a sliding sorted window compiled with numba.
On one core, 30 s of audio took a median of 0.59 s (min 0.51, max 0.73, 7 runs) and 10 min took
0.52 s. The first call in a process adds a few seconds for imports and the numba JIT.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from svm_toolkit.jit import first_call

FloatArray = npt.NDArray[np.float32]

#: (descriptor, rows) computed for each HPSS part, in the reference's stacking order.
DESCRIPTORS: Final[tuple[tuple[str, int], ...]] = (
    ("chroma_stft", 12),
    ("chroma_cens", 12),
    ("mel", 96),
    ("mfcc", 20),
    ("mfcc_delta", 20),
    ("mfcc_delta2", 20),
    ("rms", 1),
    ("spectral_centroid", 1),
    ("spectral_bandwidth", 1),
    ("spectral_rolloff", 1),
    ("poly1", 2),
    ("poly2", 3),
    ("zero_crossing_rate", 1),
)
#: HPSS parts, in order.
PARTS: Final = ("harmonic", "percussive")
#: Statistics over frames, in order (``var`` is the population variance, ddof 0).
STATISTICS: Final = ("mean", "var", "max")
#: Rows per part (190).
PART_ROWS: Final = sum(rows for _, rows in DESCRIPTORS)
#: The full layout: ("<statistic>/<part>/<descriptor>", dims), in output order; sums to 1140.
BREAKDOWN: Final[tuple[tuple[str, int], ...]] = tuple(
    (f"{stat}/{part}/{name}", rows)
    for stat in STATISTICS
    for part in PARTS
    for name, rows in DESCRIPTORS
)
#: Output dimension.
DIM: Final = sum(dims for _, dims in BREAKDOWN)


def descriptor_slice(statistic: str, part: str, descriptor: str) -> slice:
    """Where one block lies in the 1140-d vector.

    Args:
        statistic: one of :data:`STATISTICS`.
        part: one of :data:`PARTS`.
        descriptor: a name in :data:`DESCRIPTORS`.

    Raises:
        KeyError: an unknown name.
    """
    key = f"{statistic}/{part}/{descriptor}"
    start = 0
    for name, dims in BREAKDOWN:
        if name == key:
            return slice(start, start + dims)
        start += dims
    raise KeyError(key)


@dataclass(frozen=True, slots=True)
class VMNetMusicConfig:
    """The reference's constants (``csehong/VM-NET`` ``data/audio_feature_extractor``).

    Attributes:
        sample_rate: analysis rate, Hz.
        n_fft: STFT size of the spectral descriptors, samples.
        hop_length: frame hop of every descriptor, samples (21.3 ms).
        duration_s: length of the centre clip, s.
        hpss_n_fft: STFT size of the HPSS split (librosa's default), samples.
        hpss_hop_length: its hop, samples.
        hpss_kernel: median filter length, frames / bins.
        n_mels: Mel bands of the ``mel`` descriptor.
        mel_filter_rate: rate the ``mel`` filter bank is built for, Hz. The reference passes
            no ``sr``, so librosa's default of 22,050 Hz applies.
        n_mfcc: MFCCs kept.
        mfcc_n_fft: STFT size inside ``mfcc`` (librosa's default), samples.
        mfcc_n_mels: Mel bands inside ``mfcc`` (librosa's default).
        delta_width: frames of the delta regression window.
        cens_bins_per_octave: CQT bins per octave in ``chroma_cens`` (librosa 0.5 default).
        cens_octaves: CQT octaves from C1.
        cens_smoothing: CENS smoothing window, frames.
        rolloff: spectral roll-off fraction.
        amin: floor of ``logamplitude``.
        top_db: dynamic range kept by ``logamplitude``, dB.
        pad_mode: STFT centre padding (librosa 0.5: reflect).
    """

    sample_rate: int = 12_000
    n_fft: int = 512
    hop_length: int = 256
    duration_s: float = 29.12
    hpss_n_fft: int = 2048
    hpss_hop_length: int = 512
    hpss_kernel: int = 31
    n_mels: int = 96
    mel_filter_rate: int = 22_050
    n_mfcc: int = 20
    mfcc_n_fft: int = 2048
    mfcc_n_mels: int = 128
    delta_width: int = 9
    cens_bins_per_octave: int = 12
    cens_octaves: int = 7
    cens_smoothing: int = 41
    rolloff: float = 0.85
    amin: float = 1e-10
    top_db: float = 80.0
    pad_mode: Literal["reflect", "constant"] = "reflect"

    @property
    def clip_samples(self) -> int:
        """Samples in the centre clip: ``int(29.12 * 12000) = 349440``."""
        return int(self.duration_s * self.sample_rate)

    @property
    def frames(self) -> int:
        """Frames per descriptor (1,366)."""
        return 1 + self.clip_samples // self.hop_length


DEFAULT_CONFIG: Final = VMNetMusicConfig()


@dataclass(frozen=True, slots=True)
class CentreClip:
    """The analysed clip.

    Attributes:
        samples: float32, shape (``clip_samples``,), mono at ``config.sample_rate``.
        start_s: where it starts in the input audio, seconds (0 when the audio was padded).
    """

    samples: FloatArray
    start_s: float


def centre_clip(
    audio: npt.NDArray[np.floating],
    sample_rate: int,
    config: VMNetMusicConfig = DEFAULT_CONFIG,
) -> CentreClip:
    """Resample to ``config.sample_rate`` (soxr HQ) and keep the reference's centre clip.

    Audio longer than the clip is cut to its centre. The cut starts at ``(n - clip) // 2`` of
    the resampled length ``n``. Shorter audio is padded with zeros at the end, as the reference
    does. Long inputs are resampled only around the clip; the margin of 0.25 s or more keeps
    the result equal to a full resample, up to float rounding.

    Args:
        audio: float, shape (samples,), mono.
        sample_rate: rate of ``audio``, Hz.
        config: constants.
    """
    import soxr  # type: ignore[import-untyped]

    target, want = config.sample_rate, config.clip_samples
    x = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate == target:
        resampled, n_out, offset = x, len(x), 0
    else:
        n_out = (2 * len(x) * target + sample_rate) // (2 * sample_rate)  # soxr: round half up
        g = math.gcd(sample_rate, target)
        block_in, block_out = sample_rate // g, target // g  # input/output samples in lockstep
        start_out = max(0, (n_out - want) // 2)
        margin = target // 4
        first = max(0, (start_out - margin) // block_out)
        last = -(-(start_out + want + margin) // block_out)
        offset = first * block_out
        segment = x[first * block_in : last * block_in] if n_out > want else x
        resampled = soxr.resample(segment, sample_rate, target, quality="HQ").astype(np.float32)
    if n_out >= want:
        start = (n_out - want) // 2
        clip = resampled[start - offset : start - offset + want]
        clip = np.pad(clip, (0, want - len(clip)))  # only if soxr's length rule ever differs
        return CentreClip(np.ascontiguousarray(clip, np.float32), start / target)
    clip = np.zeros(want, np.float32)
    clip[: min(len(resampled), want)] = resampled[:want]
    return CentreClip(clip, 0.0)


def _log_rel_max(x: npt.NDArray[np.floating], config: VMNetMusicConfig) -> npt.NDArray[np.float64]:
    """Librosa 0.5's ``logamplitude(|x|, ref_power=np.max)``: dB below the matrix maximum."""
    mag = np.abs(np.asarray(x, dtype=np.float64))
    db = 10.0 * np.log10(np.maximum(config.amin, mag))
    db -= 10.0 * np.log10(max(config.amin, float(mag.max(initial=0.0))))
    floored: npt.NDArray[np.float64] = np.maximum(db, db.max(initial=-np.inf) - config.top_db)
    return floored


def _delta_v05(data: npt.NDArray[np.float64], width: int, order: int) -> npt.NDArray[np.float64]:
    """Librosa 0.5's ``feature.delta`` along frames (axis -1), trimmed to the input length.

    The regression filter ``[h, ..., -h] / sum(k^2)`` runs causally over the data padded with
    ``width`` edge copies on both sides, ``order`` times, and the output is cut at a fixed
    offset. For ``order=2`` this is the first-order filter applied twice, lagging 4 frames
    (what the reference computed).
    """
    half = 1 + width // 2
    taps = np.arange(half - 1.0, -half, -1.0)
    taps /= np.sum(taps**2)
    frames = data.shape[-1]
    out = np.pad(data, ((0, 0), (width, width)), mode="edge")
    for _ in range(order):
        # causal FIR from rest, as scipy.signal.lfilter(taps, 1, out): y[n] = sum_k taps[k] x[n-k]
        history = np.pad(out, ((0, 0), (len(taps) - 1, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(history, len(taps), axis=-1)
        out = windows @ taps[::-1]
    return out[:, -half - frames : -half]


def _sliding_median_rows_py(padded: FloatArray, kernel: int, out: FloatArray) -> None:
    """Median of each ``kernel``-wide window along the rows of ``padded``, into ``out``.

    ``padded`` has shape (rows, n + kernel - 1) and ``out`` shape (rows, n). The window is kept
    sorted while it slides: each step overwrites the outgoing value with the incoming one and
    moves it to its place (insertion sort from there), so a step costs O(kernel) at most.
    Plain loops only, so that numba (a librosa dependency) compiles it quickly.
    """
    half = kernel // 2
    buf = np.empty(kernel, padded.dtype)
    for r in range(padded.shape[0]):
        row = padded[r]
        for i in range(kernel):  # insertion sort of the first window
            value = row[i]
            j = i
            while j > 0 and buf[j - 1] > value:
                buf[j] = buf[j - 1]
                j -= 1
            buf[j] = value
        out[r, 0] = buf[half]
        for i in range(1, out.shape[1]):
            old, new = row[i - 1], row[i - 1 + kernel]
            lo, hi = 0, kernel - 1  # binary search: some index holding ``old``
            while lo < hi:
                mid = (lo + hi) // 2
                if buf[mid] < old:
                    lo = mid + 1
                else:
                    hi = mid
            j = lo
            if new > old:
                while j + 1 < kernel and buf[j + 1] < new:
                    buf[j] = buf[j + 1]
                    j += 1
            else:
                while j > 0 and buf[j - 1] > new:
                    buf[j] = buf[j - 1]
                    j -= 1
            buf[j] = new
            out[r, i] = buf[half]


@functools.lru_cache(maxsize=1)
def _median_kernel() -> Callable[[FloatArray, int, FloatArray], None] | None:
    """The numba-compiled :func:`_sliding_median_rows_py`, or ``None`` without numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with librosa
        return None
    kernel: Callable[[FloatArray, int, FloatArray], None]
    try:
        kernel = numba.njit(cache=True, nogil=True)(_sliding_median_rows_py)
    except RuntimeError:  # no writable cache folder: compile per process instead
        kernel = numba.njit(cache=False, nogil=True)(_sliding_median_rows_py)
    return kernel


def median_filter_axis(x: FloatArray, kernel: int, axis: int) -> FloatArray:
    """``scipy.ndimage.median_filter(x, size=kernel along axis, mode="reflect")`` for 2-D float32.

    The same values as scipy, about 10x faster for kernel 31 (HPSS is the slowest step here).

    Args:
        x: float32, shape (rows, cols).
        kernel: odd window length.
        axis: 0 (down the columns) or 1 (along the rows).
    """
    if kernel % 2 != 1:
        raise ValueError(f"median kernel must be odd, got {kernel}")
    fast = _median_kernel()
    rows = np.ascontiguousarray(x.T if axis == 0 else x, dtype=np.float32)
    half = kernel // 2
    padded = np.ascontiguousarray(np.pad(rows, ((0, 0), (half, half)), mode="symmetric"))
    if fast is None:  # pragma: no cover - numba comes with librosa; numpy selection, ~5x slower
        windows = np.lib.stride_tricks.sliding_window_view(padded, kernel, axis=1)
        out = np.partition(windows, half, axis=-1)[..., half]
    else:
        out = np.empty_like(rows)
        fast(padded, kernel, out)
    return out.T if axis == 0 else out


def _hpss(y: FloatArray, config: VMNetMusicConfig) -> tuple[FloatArray, FloatArray]:
    """``librosa.effects.hpss(y)`` as librosa 0.5 ran it: harmonic and percussive waveforms.

    Soft masks ``H^2 / (H^2 + P^2)`` from median filters along time (H) and frequency (P);
    bins where both medians are 0 are split evenly (margin 1).
    """
    import librosa

    n_fft, hop = config.hpss_n_fft, config.hpss_hop_length
    stft = librosa.stft(y, n_fft=n_fft, hop_length=hop, pad_mode=config.pad_mode)
    mag = np.abs(stft)
    harm = median_filter_axis(mag, config.hpss_kernel, axis=1)
    perc = median_filter_axis(mag, config.hpss_kernel, axis=0)
    scale = np.maximum(harm, perc)
    silent = scale < np.finfo(np.float32).tiny
    scale[silent] = 1.0
    h2, p2 = (harm / scale) ** 2, (perc / scale) ** 2
    total = h2 + p2
    total[silent] = 1.0
    mask_h, mask_p = h2 / total, p2 / total
    mask_h[silent] = mask_p[silent] = 0.5
    parts = []
    for mask in (mask_h, mask_p):
        wave = librosa.istft(
            stft * mask, n_fft=n_fft, hop_length=hop, length=len(y), dtype=np.float32
        )
        parts.append(np.ascontiguousarray(wave, dtype=np.float32))
    return parts[0], parts[1]


def _part_descriptors(y: FloatArray, config: VMNetMusicConfig) -> npt.NDArray[np.float64]:
    """The 190 log-scaled descriptor rows of one HPSS part, shape (190, frames)."""
    import librosa

    sr, hop = config.sample_rate, config.hop_length
    spec = np.abs(
        librosa.stft(y, n_fft=config.n_fft, hop_length=hop, pad_mode=config.pad_mode)
    )  # (257, T) magnitude
    power = spec**2
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=config.n_fft)
    cqt = np.abs(
        librosa.cqt(
            y,
            sr=sr,
            hop_length=hop,
            n_bins=config.cens_octaves * config.cens_bins_per_octave,
            bins_per_octave=config.cens_bins_per_octave,
            pad_mode=config.pad_mode,
        )
    )
    cens = librosa.feature.chroma_cens(
        C=cqt,
        sr=sr,
        hop_length=hop,
        bins_per_octave=config.cens_bins_per_octave,
        n_octaves=config.cens_octaves,
        win_len_smooth=config.cens_smoothing,
    )
    mel_fb = librosa.filters.mel(
        sr=config.mel_filter_rate, n_fft=config.n_fft, n_mels=config.n_mels
    )
    mel = mel_fb @ power
    spec_long = np.abs(
        librosa.stft(y, n_fft=config.mfcc_n_fft, hop_length=hop, pad_mode=config.pad_mode)
    )
    mfcc_fb = librosa.filters.mel(sr=sr, n_fft=config.mfcc_n_fft, n_mels=config.mfcc_n_mels)
    log_mel = librosa.power_to_db(
        (mfcc_fb @ spec_long**2).astype(np.float64), ref=1.0, amin=config.amin, top_db=config.top_db
    )
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    rms = np.sqrt(np.mean(power, axis=0, keepdims=True))
    n_fft = config.n_fft
    centroid = librosa.feature.spectral_centroid(S=spec, sr=sr, n_fft=n_fft)
    blocks = [
        chroma,
        cens,
        mel,
        mfcc,
        _delta_v05(mfcc, config.delta_width, 1),
        _delta_v05(mfcc, config.delta_width, 2),
        rms,
        centroid,
        librosa.feature.spectral_bandwidth(S=spec, sr=sr, n_fft=n_fft, centroid=centroid),
        librosa.feature.spectral_rolloff(S=spec, sr=sr, n_fft=n_fft, roll_percent=config.rolloff),
        librosa.feature.poly_features(S=spec, sr=sr, n_fft=n_fft, order=1),
        librosa.feature.poly_features(S=spec, sr=sr, n_fft=n_fft, order=2),
        librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop),
    ]
    rows = [_log_rel_max(block, config) for block in blocks]
    for (name, want), got in zip(DESCRIPTORS, rows, strict=True):
        if got.shape != (want, config.frames):
            raise RuntimeError(f"{name}: shape {got.shape}, expected ({want}, {config.frames})")
    return np.concatenate(rows, axis=0)


def clip_descriptors(clip: FloatArray, config: VMNetMusicConfig = DEFAULT_CONFIG) -> FloatArray:
    """The 1140-d descriptor of an already cut clip.

    Args:
        clip: float32, shape (``config.clip_samples``,), mono at ``config.sample_rate``.
        config: constants.

    Returns:
        float32, shape (1140,), laid out as :data:`BREAKDOWN`.
    """
    y = np.ascontiguousarray(clip, dtype=np.float32)
    if y.shape != (config.clip_samples,):
        raise ValueError(f"clip has shape {y.shape}, expected ({config.clip_samples},)")
    with first_call("vmnet_music"), warnings.catch_warnings():
        # the first call in a process compiles (or loads) numba kernels: see svm_toolkit.jit
        harmonic, percussive = _hpss(y, config)
        # silent parts: librosa warns that no pitch was found for the tuning estimate (0 used)
        warnings.filterwarnings("ignore", message=".*[Tt]uning.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*[Ee]mpty.*", category=UserWarning)
        rows = np.concatenate([_part_descriptors(part, config) for part in (harmonic, percussive)])
    stats = (rows.mean(axis=1), rows.var(axis=1), rows.max(axis=1))
    return np.concatenate(stats).astype(np.float32)


def music_descriptors(
    audio: npt.NDArray[np.floating],
    sample_rate: int,
    config: VMNetMusicConfig = DEFAULT_CONFIG,
) -> FloatArray:
    """VM-NET's music descriptor of a track: statistics of its centre 29.12 s.

    Args:
        audio: float, shape (samples,), mono.
        sample_rate: rate of ``audio``, Hz (resampled to ``config.sample_rate``).
        config: constants.

    Returns:
        float32, shape (1140,), laid out as :data:`BREAKDOWN`: values in dB relative to each
        descriptor matrix's maximum (means and maxima in [-80, 0]; variances in dB^2).
    """
    return clip_descriptors(centre_clip(audio, sample_rate, config).samples, config)
