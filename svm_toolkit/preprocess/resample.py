"""Resample audio to 16 kHz the way each reference does, as the soundtrack streams.

Two resamplers, each the arithmetic of a model's reference code:

* ``"resampy"``: ``resampy.resample(x, sr, 16000)`` with its default ``kaiser_best`` filter,
  what torchvggish's ``vggish_input.waveform_to_examples`` calls
  (github.com/harritaylor/torchvggish, ``torchvggish/vggish_input.py``).
* ``"sinc"``: ``torchaudio.functional.resample(x, sr, 16000)`` with its defaults (Hann-windowed
  sinc, ``lowpass_filter_width=6``, ``rolloff=0.99``, rates divided by their gcd), what
  ImageBind's ``load_and_transform_audio_data`` calls (github.com/facebookresearch/ImageBind,
  ``imagebind/data.py``). The kernel and the strided convolution are rebuilt here in torch, the
  same operations in the same float32 precision, so torchaudio is not needed at run time.

Both are local filters: each output sample reads a bounded window of input samples. A
:class:`StreamingResampler` therefore resamples the soundtrack in chunks aligned to the rate
ratio's period, each padded with enough context on both sides, and gives the samples a
whole-array call would give (up to float rounding), holding only one chunk of input.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import torch

Resampler = Literal["resampy", "sinc"]
RESAMPLERS: Final[tuple[Resampler, ...]] = ("resampy", "sinc")

_SINC_WIDTH = 6  # torchaudio's lowpass_filter_width, zero crossings each side
_SINC_ROLLOFF = 0.99  # torchaudio's rolloff, fraction of the lower Nyquist frequency
_KAISER_BEST_ZEROS = 64  # resampy's kaiser_best table spans 64 zero crossings each side
_MAX_PHASES = 4_000  # longest period, output samples, resampled as a polyphase kernel
_CHUNK_S = 8.0  # input resampled per call, seconds (at most: rounded to the ratio's period)


def resample(
    x: npt.NDArray[np.float32], orig: int, new: int, method: Resampler
) -> npt.NDArray[np.float32]:
    """Resample a whole mono signal.

    Args:
        x: float32, shape (samples,), at ``orig`` Hz.
        orig: input rate, Hz.
        new: output rate, Hz.
        method: ``"resampy"`` (torchvggish's) or ``"sinc"`` (torchaudio's, ImageBind's).

    Returns:
        float32, shape (samples,) at ``new`` Hz: ``int(len(x) * new / orig)`` samples for
        resampy, ``ceil(len(x) * new / orig)`` for sinc (the references' lengths); ``x`` itself
        when the rates are equal.
    """
    if orig == new:
        return x
    if method == "resampy":
        return _resampy(x, orig, new)
    return _sinc(x, orig, new)


def output_length(samples: int, orig: int, new: int, method: Resampler) -> int:
    """Samples :func:`resample` returns for ``samples`` input samples."""
    if orig == new:
        return samples
    g = math.gcd(orig, new)
    if method == "resampy":
        return int(samples * float(new) / float(orig))
    return _sinc_length(samples, orig // g, new // g)


def _sinc_length(samples: int, orig: int, new: int) -> int:
    """The output length torchaudio gives for gcd-reduced rates: a ceiling taken in float32.

    ``torch.ceil(torch.as_tensor(new * samples / orig))`` rounds the quotient to float32 first,
    which past 2**22 output samples (about 262 s at 16 kHz) can drop the last sample that an
    exact ceiling would keep; the same length keeps ImageBind's clip placement exact.
    """
    return math.ceil(float(np.float32(new * samples / orig)))


def _resampy(x: npt.NDArray[np.float32], orig: int, new: int) -> npt.NDArray[np.float32]:
    g = math.gcd(orig, new)
    if new // g > _MAX_PHASES:  # an odd rate: resampy itself (its loop costs 5x the kernel's)
        import resampy  # imported here: it compiles numba kernels on first use

        out: npt.NDArray[np.float32] = resampy.resample(
            np.asarray(x, np.float32), orig, new, filter="kaiser_best"
        )
        return out
    kernel, left = _kaiser_kernel(orig, new)
    return _polyphase(x, orig // g, new // g, kernel, left, int(len(x) * float(new) / float(orig)))


@functools.lru_cache(maxsize=8)
def _kaiser_kernel(orig: int, new: int) -> tuple[torch.Tensor, int]:
    """The ``kaiser_best`` interpolation of resampy as one filter per output phase.

    resampy (``resampy/interpn.py``) computes output ``t`` at input time ``t * orig / new``:
    from its integer part ``n`` and fraction it reads weights from a tabulated filter wing
    (``precision`` entries per zero crossing, linearly interpolated) for ``x[n - i]`` (left
    wing) and ``x[n + 1 + k]`` (right wing). With a rational ratio the fractions repeat every
    ``new / gcd`` outputs, so those weights are computed once per phase, in float64 as resampy
    does, and applied as a strided convolution.

    Returns:
        float32, shape (phases, 1, taps): phase ``j`` of period ``m`` reads input samples
        ``m * orig' - left + (0 .. taps)``; and ``left``, input samples.
    """
    from resampy.filters import get_filter  # the filter table only, no numba

    g = math.gcd(orig, new)
    p_in, p_out = orig // g, new // g
    win, precision, _ = get_filter("kaiser_best")
    ratio = new / orig
    if ratio < 1:
        win = ratio * win
    delta = np.diff(win, append=win[-1])
    scale = min(1.0, ratio)
    step = int(scale * precision)
    wings = []
    for j in range(p_out):
        n, rem = divmod(j * p_in, p_out)
        frac = scale * rem / p_out
        taps: dict[int, float] = {}
        for side, f in ((-1, frac), (1, scale - frac)):
            index = f * precision
            offset = int(index)
            eta = index - offset
            rows = offset + step * np.arange((len(win) - offset) // step)
            weights = win[rows] + eta * delta[rows]
            for i, w in enumerate(weights):
                taps[n - i if side < 0 else n + 1 + i] = float(w)
        wings.append(taps)
    left = -min(min(t) for t in wings)
    size = left + max(max(t) for t in wings) + 1
    kernel = np.zeros((p_out, 1, size), np.float64)
    for j, phase in enumerate(wings):
        for at, w in phase.items():
            kernel[j, 0, left + at] = w
    return torch.from_numpy(kernel.astype(np.float32)), left


def _polyphase(
    x: npt.NDArray[np.float32],
    p_in: int,
    p_out: int,
    kernel: torch.Tensor,
    left: int,
    length: int,
) -> npt.NDArray[np.float32]:
    """Output ``m * p_out + j`` = ``kernel[j] . x[m * p_in - left :]``; ``length`` samples."""
    right = max(0, kernel.shape[-1] - left) + p_in
    wave = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]
    padded = torch.nn.functional.pad(wave, (left, right))
    with torch.inference_mode():
        out = torch.nn.functional.conv1d(padded[:, None], kernel, stride=p_in)
    flat: npt.NDArray[np.float32] = out.transpose(1, 2).reshape(-1)[:length].numpy()
    return flat


@functools.lru_cache(maxsize=8)
def _sinc_kernel(orig: int, new: int) -> tuple[torch.Tensor, int]:
    """The kernel of torchaudio's ``_get_sinc_resample_kernel``, float32 input, reduced rates.

    Returns:
        The kernel, float32, shape (new, 1, 2 * width + orig), and ``width``, input samples.
    """
    base = min(orig, new) * _SINC_ROLLOFF
    width = math.ceil(_SINC_WIDTH * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float32)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float32)[:, None, None] / new + idx
    t *= base
    t = t.clamp_(-_SINC_WIDTH, _SINC_WIDTH)
    window = torch.cos(t * math.pi / _SINC_WIDTH / 2) ** 2
    t *= math.pi
    kernel = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernel *= window * (base / orig)
    return kernel, width


def _sinc(x: npt.NDArray[np.float32], orig: int, new: int) -> npt.NDArray[np.float32]:
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    kernel, width = _sinc_kernel(orig, new)
    return _polyphase(x, orig, new, kernel, width, _sinc_length(len(x), orig, new))


class StreamingResampler:
    """Resample a mono signal pushed in pieces; each finished chunk goes to ``sink``.

    The signal is conceptually padded with zeros on both ends (as both references pad it).
    Chunks start at multiples of the rate ratio's period (``orig / gcd`` input samples) and are
    resampled with ``context`` samples of real (or zero) signal each side, so every output
    sample sees the same inputs, at the same filter phase, as in one whole-array call.
    """

    def __init__(
        self,
        orig: int,
        new: int,
        method: Resampler,
        sink: Callable[[npt.NDArray[np.float32]], None],
    ) -> None:
        g = math.gcd(orig, new)
        self.orig, self.new, self.method, self.sink = orig, new, method, sink
        self.period_in, self.period_out = orig // g, new // g
        if method == "resampy":
            reach = math.ceil(_KAISER_BEST_ZEROS / min(1.0, new / orig)) + 2
        else:
            reach = 2 * math.ceil(_SINC_WIDTH * orig / (min(orig, new) * _SINC_ROLLOFF)) + orig
        self.context = math.ceil(reach / self.period_in) * self.period_in
        self.chunk = max(1, round(_CHUNK_S * orig / self.period_in)) * self.period_in
        self.pieces: list[npt.NDArray[np.float32]] = [np.zeros(self.context, np.float32)]
        self.held = self.context  # samples in ``pieces``
        self.pushed = 0  # input samples pushed
        self.emitted = 0  # output samples given to ``sink``

    def push(self, x: npt.NDArray[np.float32]) -> None:
        """Add input samples (float32, shape (n,), at ``orig`` Hz)."""
        if self.orig == self.new:
            self.pushed += len(x)
            self.emitted += len(x)
            self.sink(x)
            return
        self.pieces.append(x)
        self.held += len(x)
        self.pushed += len(x)
        while self.held >= self.chunk + 2 * self.context:
            self._emit(self.chunk, self.chunk * self.period_out // self.period_in)

    def close(self) -> None:
        """Resample what is left (the end padded with zeros)."""
        if self.orig == self.new:
            return
        total = output_length(self.pushed, self.orig, self.new, self.method)
        left = self.held - self.context
        pad = self.context + (-left % self.period_in)
        self.pieces.append(np.zeros(pad, np.float32))
        self.held += pad
        self._emit(left + (-left % self.period_in), total - self.emitted)

    def _emit(self, advance: int, count: int) -> None:
        """Resample the held samples; give ``count`` outputs; drop ``advance`` inputs."""
        held = np.concatenate(self.pieces) if len(self.pieces) > 1 else self.pieces[0]
        size = advance + 2 * self.context
        out = resample(held[:size], self.orig, self.new, self.method)
        skip = self.context * self.period_out // self.period_in
        if count > 0:
            self.sink(out[skip : skip + count])
            self.emitted += count
        rest = held[advance:]
        self.pieces, self.held = [rest], len(rest)
