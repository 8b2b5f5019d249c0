"""Duplicate signals: perceptual hashes of frames and Chromaprint audio fingerprints.

* :func:`phash`: the DCT perceptual hash (a 32 x 32 area-averaged thumbnail, its 2-D DCT-II, the
  8 x 8 lowest frequencies compared with their median: 64 bits). Re-encoding, rescaling and small
  colour changes move a handful of bits; a different picture differs in about half of them.
* :func:`chromaprint`: AcoustID's Chromaprint (``libchromaprint`` through ``pyacoustid``'s
  bindings), the raw 32-bit sub-fingerprints, about 8 a second. The same recording re-encoded
  matches in > 90 % of the bits at the right offset; unrelated audio in about 50 %.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import MissingToolError

SAMPLE_RATE: Final = 16_000
HASH_SIZE: Final = 8  # 8 x 8 = 64 bits
THUMB_SIZE: Final = 32


@functools.lru_cache(maxsize=2)
def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    """Orthonormal DCT-II matrix, shape (n, n): ``D @ x`` is the DCT of column vectors."""
    k = np.arange(n)[:, None]
    matrix = np.cos(math.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return matrix


def _area_resize(image: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float64]:
    """Average ``image`` (h, w) down to (size, size); nearest pixels where it is smaller."""
    out = image.astype(np.float64)
    for axis in (0, 1):
        length = out.shape[axis]
        if length >= size:
            edges = np.linspace(0, length, size + 1).astype(int)
            sums = np.add.reduceat(out, edges[:-1], axis=axis)
            counts = np.diff(edges).reshape((-1, 1) if axis == 0 else (1, -1))
            out = sums / counts
        else:
            out = np.take(out, (np.arange(size) * length) // size, axis=axis)
    return out


def phash(image: npt.NDArray[np.uint8]) -> int:
    """The 64-bit DCT perceptual hash of one luma image, shape (height, width).

    Returns:
        An unsigned 64-bit integer; bit ``63 - i`` is coefficient ``i`` (row-major) of the 8 x 8
        low-frequency block being above the block's median.
    """
    dct = _dct_matrix(THUMB_SIZE)
    coefficients = np.round(dct @ _area_resize(image, THUMB_SIZE) @ dct.T, 6)  # no float dust
    low = coefficients[:HASH_SIZE, :HASH_SIZE].reshape(-1)
    bits = low > np.median(low)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes."""
    return (a ^ b).bit_count()


@functools.cache
def _chromaprint() -> Any:
    try:
        import chromaprint as binding
    except ImportError as exc:  # pyacoustid raises ImportError when libchromaprint is missing
        raise MissingToolError(
            f"audio fingerprints need libchromaprint ({exc}); install it with "
            "'apt-get install libchromaprint1' (scripts/setup.sh does) or your package manager"
        ) from None
    return binding


def chromaprint(
    audio: npt.NDArray[np.float32], *, max_seconds: float | None = 120.0
) -> npt.NDArray[np.uint32]:
    """Chromaprint's raw fingerprint of mono 16 kHz audio.

    Args:
        audio: float32, shape (samples,), in [-1, 1].
        max_seconds: fingerprint only the start, as ``fpcalc`` does (120 s); ``None``: all.

    Returns:
        uint32, shape (about 8 per second after the first ~3 s,); empty for short clips.

    Raises:
        MissingToolError: libchromaprint is not installed.
    """
    binding = _chromaprint()
    if max_seconds is not None:
        audio = audio[: int(max_seconds * SAMPLE_RATE)]
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    printer = binding.Fingerprinter()
    printer.start(SAMPLE_RATE, 1)
    printer.feed(pcm.tobytes())
    raw, _ = binding.decode_fingerprint(printer.finish())
    return (np.asarray(raw, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32)


def chromaprint_similarity(
    a: npt.NDArray[np.uint32],
    b: npt.NDArray[np.uint32],
    *,
    max_offset: int = 80,
    min_overlap: float = 0.5,
) -> float:
    """Share of equal bits at the best alignment of two raw fingerprints, in [0, 1].

    Args:
        a: a raw fingerprint (uint32).
        b: another.
        max_offset: largest shift tried, sub-fingerprints (~0.124 s each; 80 = ~10 s).
        min_overlap: shifts must keep this share of the shorter fingerprint overlapping (short
            overlaps of unrelated music match by chance).

    Returns:
        Above 0.95 for the same recording re-encoded, 0.5-0.85 for different music; 0.0 when
        either is shorter than 8 sub-fingerprints (one second).
    """
    best = 0.0
    least = max(8, int(min_overlap * min(len(a), len(b))))
    for offset in range(-max_offset, max_offset + 1):
        x, y = (a[offset:], b) if offset >= 0 else (a, b[-offset:])
        n = min(len(x), len(y))
        if n < least:
            continue
        differing = np.unpackbits((x[:n] ^ y[:n]).view(np.uint8)).sum()
        best = max(best, 1.0 - float(differing) / (32 * n))
    return best
