"""Real synthetic speech from ``espeak-ng`` (a Debian package; ``scripts/setup.sh`` installs it).

Used where a test or the demo needs a voice: the speech filter must tell a vlog's talking from a
song, and espeak-ng's formant synthesis is real speech to a voice-activity model.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from svm_toolkit.errors import MissingToolError

#: Sentences a vlogger might say; clips pick one by index.
SENTENCES: Final = (
    "Hello everyone and welcome back to my channel. Today I am going to show you around the "
    "old town, where we will try the best street food and talk to the people who live here.",
    "So this morning we woke up really early, packed the car and drove all the way to the coast. "
    "The weather was terrible but honestly it was one of the best days of the whole trip.",
    "Let me tell you about this recipe. You only need flour, water, salt and a little patience, "
    "and after twenty minutes in a hot oven the bread comes out golden and crispy.",
    "Quick update on the training plan. This week I ran four times, lifted twice and finally "
    "managed to beat my personal best on the long hill near the river.",
)


def synthetic_speech(
    text: str, *, seconds: float, sample_rate: int = 16_000, words_per_minute: int = 170
) -> npt.NDArray[np.float32]:
    """Speak ``text`` with espeak-ng, repeated or cut to exactly ``seconds``.

    Returns:
        float32, shape (round(seconds * sample_rate),), in [-1, 1], mono.

    Raises:
        MissingToolError: espeak-ng is not installed.
    """
    program = shutil.which("espeak-ng")
    if program is None:
        raise MissingToolError(
            "espeak-ng is not installed; run scripts/setup.sh or 'apt-get install espeak-ng'"
        )
    with tempfile.TemporaryDirectory(prefix="svm-speech-") as scratch:
        path = Path(scratch) / "speech.wav"
        subprocess.run(
            [program, "-s", str(words_per_minute), "-w", str(path), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    voice = pcm.astype(np.float32) / 32768.0
    if rate != sample_rate:  # espeak-ng speaks at 22.05 kHz
        times = np.arange(round(len(voice) * sample_rate / rate)) / sample_rate
        voice = np.interp(times, np.arange(len(voice)) / rate, voice).astype(np.float32)
    n = round(seconds * sample_rate)
    return np.resize(voice, n) if len(voice) else np.zeros(n, dtype=np.float32)


def write_wav(path: Path, audio: npt.NDArray[np.float32], sample_rate: int) -> Path:
    """Write mono float audio in [-1, 1] as 16-bit PCM WAV and return the path."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return path
