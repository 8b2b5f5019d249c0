"""The offline demo: a generated music-video corpus run through every stage."""

from svm_toolkit.demo.corpus import Clip, CorpusConfig, generate_corpus
from svm_toolkit.demo.pipeline import DemoReport, StageReport, run_demo

__all__ = ["Clip", "CorpusConfig", "DemoReport", "StageReport", "generate_corpus", "run_demo"]
