"""svm_toolkit."""

__version__ = "0.1.0"
