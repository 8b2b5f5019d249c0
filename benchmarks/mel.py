"""Mel recipes on one pinned core, in multiples of real time, against the bare FFT they contain.

    .venv/bin/python benchmarks/mel.py [--seconds 600]

Baseline: framing + float32 FFT power spectrum of the same 25 ms / 10 ms frames (no window,
no Mel), the floor every recipe pays. Issue target: the ImageBind fbank >= 500x real time.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from svm_toolkit.preprocess.mel import imagebind_fbank, kaldi_fbank, vggish_examples

SR = 16_000


def bare_fft(x: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160]
    spectrum = np.fft.rfft(frames, n=512)
    return spectrum.real**2 + spectrum.imag**2


def best_of(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"machine: {platform.machine()}, 1 pinned core, numpy {np.__version__}")
    x = np.random.default_rng(0).standard_normal(int(args.seconds * SR)).astype(np.float32)
    video = x[: 30 * SR]
    runs = [
        ("bare FFT power (baseline)", args.seconds, lambda: bare_fft(x)),
        (
            "kaldi_fbank, 128 bins",
            args.seconds,
            lambda: kaldi_fbank(x, num_mel_bins=128, window="hanning"),
        ),
        ("vggish_examples", args.seconds, lambda: vggish_examples(x)),
        ("imagebind_fbank, 30 s video", 30.0, lambda: imagebind_fbank(video)),
    ]
    print(f"{'':<30}{'audio s':>9}{'seconds':>9}{'x real time':>13}")
    for name, audio_s, fn in runs:
        seconds = best_of(fn)
        print(f"{name:<30}{audio_s:>9.0f}{seconds:>9.3f}{audio_s / seconds:>13,.0f}")


if __name__ == "__main__":
    main()
