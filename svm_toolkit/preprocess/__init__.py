"""Preprocessing: audio, Mel recipes, crop boxes, signals, filters, duplicate signals, the stage."""

from svm_toolkit.preprocess.audio import load_audio
from svm_toolkit.preprocess.config import PREPROCESS_PRESETS, PreprocessConfig
from svm_toolkit.preprocess.crop import CropBox, detect_crop, read_frames, sample_frames
from svm_toolkit.preprocess.filters import FILTER_PRESETS, FILTERS, FilterConfig, Verdict, judge
from svm_toolkit.preprocess.fingerprint import chromaprint, chromaprint_similarity, hamming, phash
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
