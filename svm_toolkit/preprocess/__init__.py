"""Preprocessing: 16 kHz audio, the Mel recipes the models expect, black-border crop boxes."""

from svm_toolkit.preprocess.audio import load_audio
from svm_toolkit.preprocess.crop import CropBox, detect_crop, sample_frames
from svm_toolkit.preprocess.mel import imagebind_fbank, kaldi_fbank, vggish_examples

__all__ = [
    "CropBox",
    "detect_crop",
    "imagebind_fbank",
    "kaldi_fbank",
    "load_audio",
    "sample_frames",
    "vggish_examples",
]
