"""Preprocessing: 16 kHz audio, the Mel recipes the models expect, crop boxes, signals, filters."""

from svm_toolkit.preprocess.audio import load_audio
from svm_toolkit.preprocess.crop import CropBox, detect_crop, sample_frames
from svm_toolkit.preprocess.filters import FILTER_PRESETS, FILTERS, FilterConfig, Verdict, judge
from svm_toolkit.preprocess.mel import imagebind_fbank, kaldi_fbank, vggish_examples
from svm_toolkit.preprocess.signals import Signals, measure

__all__ = [
    "FILTERS",
    "FILTER_PRESETS",
    "CropBox",
    "FilterConfig",
    "Signals",
    "Verdict",
    "detect_crop",
    "imagebind_fbank",
    "judge",
    "kaldi_fbank",
    "load_audio",
    "measure",
    "sample_frames",
    "vggish_examples",
]
