"""The bundled baselines (TIVM, MVBind) and their resumable training (``svm train``)."""

from svm_toolkit.train.config import TRAIN_PRESETS, LossConfig, ModelConfig, TrainConfig

__all__ = ["TRAIN_PRESETS", "LossConfig", "ModelConfig", "TrainConfig"]
