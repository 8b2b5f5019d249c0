"""Speech ratio: speed of Silero VAD's exports, and the error of scoring sampled windows.

    .venv/bin/python benchmarks/speech.py [--soundtracks 40] [--seconds 60]

On one pinned core it prints, in one run:

* real-time factors of the wheel's TorchScript model called once per 32 ms chunk (the way
  ``silero_vad.get_speech_timestamps`` runs it), of the ONNX sequence export over the whole
  soundtrack, and of the default sampled windows (``SpeechConfig``);
* on generated soundtracks (espeak-ng speech turns over demo songs, speech 0-95 % of the time)
  the error of the sampled ratio against the whole-soundtrack ratio, and how often the two agree
  on the default filter (speech > 50 %).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from svm_toolkit.demo.corpus import CorpusConfig, plan_corpus, song_audio
from svm_toolkit.preprocess.filters import FilterConfig
from svm_toolkit.preprocess.speech import SpeechConfig, SpeechDetector
from svm_toolkit.testing.speech import SENTENCES, synthetic_speech

SR = 16_000


def soundtracks(count: int, seconds: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Songs with speech turns of 2-10 s over them; speech covers 0-95 % of the time, evenly."""
    with tempfile.TemporaryDirectory(prefix="svm-bench-speech-") as scratch:
        clips = plan_corpus(Path(scratch), CorpusConfig(clips=8, songs=8))
    songs = [song_audio(c.song, seconds=seconds, sample_rate=SR) for c in clips]
    voice = synthetic_speech(" ".join(SENTENCES), seconds=seconds)
    voice = 0.8 * voice / np.abs(voice).max()
    length = int(seconds * SR)
    out = []
    for i in range(count):
        target = 0.95 * i / max(1, count - 1)
        mask = np.zeros(length, bool)
        while mask.mean() < target:
            turn = int(rng.uniform(2, 10) * SR)
            start = int(rng.integers(0, max(1, length - turn)))
            mask[start : start + turn] = True
        song = songs[i % len(songs)]
        out.append((0.15 * song + np.where(mask, np.roll(voice, i * SR), 0)).astype(np.float32))
    return out


def realtime(fn: object, audio: np.ndarray, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn(audio)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return len(audio) / SR / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soundtracks", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each, s")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    tracks = soundtracks(args.soundtracks, args.seconds, np.random.default_rng(0))
    sampled = SpeechDetector()
    whole = SpeechDetector(SpeechConfig(max_scored_s=None))
    from silero_vad import load_silero_vad

    jit = load_silero_vad()

    def per_chunk(audio: np.ndarray) -> None:
        jit.reset_states()
        with torch.inference_mode():
            for i in range(0, len(audio) - 511, 512):
                jit(torch.from_numpy(audio[i : i + 512]), SR)

    cfg = sampled.config
    print(f"one pinned core; {len(tracks)} soundtracks x {args.seconds:g} s\n")
    rows = {
        "TorchScript, one call per 32 ms chunk": realtime(per_chunk, tracks[-1][: 10 * SR]),
        "ONNX sequence export, whole soundtrack": realtime(whole.speech_ratio, tracks[-1]),
        f"ONNX, {cfg.max_scored_s:g} s in {cfg.window_s:g} s windows (default)": realtime(
            sampled.speech_ratio, tracks[-1]
        ),
    }
    print(f"{'speech ratio':46} {'x real time':>12}")
    for label, factor in rows.items():
        print(f"{label:46} {factor:12.0f}")

    exact = np.array([whole.speech_ratio(t) for t in tracks])
    estimate = np.array([sampled.speech_ratio(t) for t in tracks])
    limit = FilterConfig().max_speech_ratio
    assert limit is not None
    error = np.abs(estimate - exact)
    agree = np.mean((estimate > limit) == (exact > limit))
    print(
        f"\nsampled vs whole ratio over {len(tracks)} soundtracks (whole ratios "
        f"{exact.min():.2f}-{exact.max():.2f}):"
    )
    print(
        f"  mean |error| {error.mean():.3f}, 90th percentile {np.quantile(error, 0.9):.3f}, "
        f"max {error.max():.3f}"
    )
    print(f"  same verdict on speech > {limit:.0%}: {agree:.0%}")


if __name__ == "__main__":
    main()
