"""Preprocessing: audio, Mel recipes, crop boxes, signals, filters, duplicate signals, the stage.

Each public name is imported from its module when first asked for, so that importing one
submodule (a Mel recipe, a config) does not load the others (torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svm_toolkit.lazy import lazy_api

if TYPE_CHECKING:
    from svm_toolkit.preprocess.audio import load_audio
    from svm_toolkit.preprocess.config import PREPROCESS_PRESETS, PreprocessConfig
    from svm_toolkit.preprocess.crop import CropBox, detect_crop, read_frames, sample_frames
    from svm_toolkit.preprocess.filters import FILTER_PRESETS, FILTERS, FilterConfig, Verdict, judge
    from svm_toolkit.preprocess.fingerprint import (
        chromaprint,
        chromaprint_similarity,
        hamming,
        phash,
    )
    from svm_toolkit.preprocess.mel import imagebind_fbank, kaldi_fbank, vggish_examples
    from svm_toolkit.preprocess.recipes import MEL_RECIPES, LibrosaMel, MelRecipe
    from svm_toolkit.preprocess.runner import PreprocessSummary, run_preprocess
    from svm_toolkit.preprocess.signals import Signals
    from svm_toolkit.preprocess.speech import SpeechConfig, SpeechDetector

__all__ = [
    "FILTERS",
    "FILTER_PRESETS",
    "MEL_RECIPES",
    "PREPROCESS_PRESETS",
    "CropBox",
    "FilterConfig",
    "LibrosaMel",
    "MelRecipe",
    "PreprocessConfig",
    "PreprocessSummary",
    "Signals",
    "SpeechConfig",
    "SpeechDetector",
    "Verdict",
    "chromaprint",
    "chromaprint_similarity",
    "detect_crop",
    "hamming",
    "imagebind_fbank",
    "judge",
    "kaldi_fbank",
    "load_audio",
    "phash",
    "read_frames",
    "run_preprocess",
    "sample_frames",
    "vggish_examples",
]

#: Public name -> the module of svm_toolkit.preprocess that defines it.
_API: dict[str, str] = {
    "CropBox": "svm_toolkit.preprocess.crop",
    "FILTERS": "svm_toolkit.preprocess.filters",
    "FILTER_PRESETS": "svm_toolkit.preprocess.filters",
    "FilterConfig": "svm_toolkit.preprocess.filters",
    "LibrosaMel": "svm_toolkit.preprocess.recipes",
    "MEL_RECIPES": "svm_toolkit.preprocess.recipes",
    "MelRecipe": "svm_toolkit.preprocess.recipes",
    "PREPROCESS_PRESETS": "svm_toolkit.preprocess.config",
    "PreprocessConfig": "svm_toolkit.preprocess.config",
    "PreprocessSummary": "svm_toolkit.preprocess.runner",
    "Signals": "svm_toolkit.preprocess.signals",
    "SpeechConfig": "svm_toolkit.preprocess.speech",
    "SpeechDetector": "svm_toolkit.preprocess.speech",
    "Verdict": "svm_toolkit.preprocess.filters",
    "chromaprint": "svm_toolkit.preprocess.fingerprint",
    "chromaprint_similarity": "svm_toolkit.preprocess.fingerprint",
    "detect_crop": "svm_toolkit.preprocess.crop",
    "hamming": "svm_toolkit.preprocess.fingerprint",
    "imagebind_fbank": "svm_toolkit.preprocess.mel",
    "judge": "svm_toolkit.preprocess.filters",
    "kaldi_fbank": "svm_toolkit.preprocess.mel",
    "load_audio": "svm_toolkit.preprocess.audio",
    "phash": "svm_toolkit.preprocess.fingerprint",
    "read_frames": "svm_toolkit.preprocess.crop",
    "run_preprocess": "svm_toolkit.preprocess.runner",
    "sample_frames": "svm_toolkit.preprocess.crop",
    "vggish_examples": "svm_toolkit.preprocess.mel",
}

__getattr__, __dir__ = lazy_api(__name__, _API)
