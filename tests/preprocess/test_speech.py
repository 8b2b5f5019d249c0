"""Speech vs music on real synthetic speech (espeak-ng) and generated music, through Silero VAD."""

from __future__ import annotations

import numpy as np
import pytest

from svm_toolkit.demo.corpus import CorpusConfig, plan_corpus, song_audio
from svm_toolkit.preprocess.speech import SpeechConfig, SpeechDetector
from svm_toolkit.testing.speech import SENTENCES, synthetic_speech

SR = 16_000


@pytest.fixture(scope="module")
def detector() -> SpeechDetector:
    return SpeechDetector()


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    return synthetic_speech(SENTENCES[0], seconds=8.0)


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    clips = plan_corpus(tmp_path_factory.mktemp("songs"), CorpusConfig(clips=6, songs=6))
    return [song_audio(c.song, seconds=8.0, sample_rate=SR) for c in clips]


def test_speech_is_speech(detector: SpeechDetector, voice: np.ndarray) -> None:
    assert detector.speech_ratio(voice) > 0.7


def test_music_is_not_speech(detector: SpeechDetector, songs: list[np.ndarray]) -> None:
    assert max(detector.speech_ratio(song) for song in songs) < 0.3


def test_speech_mixed_under_music_is_still_speech(
    detector: SpeechDetector, voice: np.ndarray, songs: list[np.ndarray]
) -> None:
    for song in songs[:3]:
        assert detector.speech_ratio(0.6 * voice + 0.3 * song) > 0.6


def test_noise_and_silence_are_not_speech(
    detector: SpeechDetector, rng: np.random.Generator
) -> None:
    noise = (0.05 * rng.standard_normal(8 * SR)).astype(np.float32)
    assert detector.speech_ratio(noise) < 0.1
    assert detector.speech_ratio(np.zeros(8 * SR, np.float32)) == 0.0
    assert detector.speech_ratio(np.zeros(100, np.float32)) == 0.0  # under one 32 ms chunk


def test_sequence_export_equals_the_torchscript_model_chunk_by_chunk(
    detector: SpeechDetector, voice: np.ndarray, songs: list[np.ndarray]
) -> None:
    """The ONNX sequence export against the wheel's reference model called once per 32 ms chunk."""
    import torch
    from silero_vad import load_silero_vad

    reference = load_silero_vad()  # TorchScript, nothing fetched
    for audio in (voice[: 4 * SR], (0.6 * voice + 0.3 * songs[0])[: 4 * SR]):
        reference.reset_states()
        with torch.inference_mode():
            expected = [
                reference(torch.from_numpy(audio[i : i + 512].copy()), SR).item()
                for i in range(0, len(audio) - 511, 512)
            ]
        np.testing.assert_allclose(detector.score(audio), expected, atol=1e-4)


def test_long_soundtracks_are_sampled_in_windows(
    detector: SpeechDetector, voice: np.ndarray, songs: list[np.ndarray]
) -> None:
    """60 s, speech for the first 40 s then music: the sampled ratio estimates the whole one."""
    long = np.concatenate([np.tile(voice, 5), np.tile(songs[0], 3)[: 20 * SR]]).astype(np.float32)
    whole = SpeechDetector(SpeechConfig(max_scored_s=None))
    config = detector.config
    assert whole.probabilities(long).shape == (60 * SR // 512,)
    windows = np.ceil(config.max_scored_s / config.window_s) * round(config.window_s * SR / 512)
    assert detector.probabilities(long).shape == (windows,)
    assert abs(detector.speech_ratio(long) - whole.speech_ratio(long)) < 0.1
    assert detector.probabilities(voice).shape == (250,)  # 8 s: short enough to score whole
