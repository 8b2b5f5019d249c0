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


def test_side_by_side_segments_agree_with_one_sequential_pass(
    detector: SpeechDetector, voice: np.ndarray
) -> None:
    sequential = SpeechDetector(SpeechConfig(max_streams=1))
    assert detector.probabilities(voice).shape == sequential.probabilities(voice).shape == (250,)
    assert abs(detector.speech_ratio(voice) - sequential.speech_ratio(voice)) < 0.05
