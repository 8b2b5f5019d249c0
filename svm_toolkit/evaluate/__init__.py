"""Recall@K evaluation with an explicit protocol (``svm evaluate``)."""

from svm_toolkit.evaluate.protocol import EvalConfig, EvalResult, PairedEmbeddings, evaluate_pairs

__all__ = ["EvalConfig", "EvalResult", "PairedEmbeddings", "evaluate_pairs"]
