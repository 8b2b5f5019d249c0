"""Lazy package attributes: a public name is imported from its module when first asked for.

So importing one submodule (a config, a constant for a ``--help`` text) does not load the
others (torch, pyarrow).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_api(
    module_name: str, api: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for package ``module_name``.

    Args:
        module_name: the package (``__name__``).
        api: public name -> the module that defines it.

    Example:
        >>> __getattr__, __dir__ = lazy_api(__name__, {"DatasetLayout": "svm_toolkit.io.paths"})
    """

    def getattr_(name: str) -> Any:
        """A public name, imported from its module when first asked for."""
        if name in api:
            value = getattr(importlib.import_module(api[name]), name)
            setattr(sys.modules[module_name], name, value)
            return value
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        """The public names and the loaded submodules, for ``dir()`` and tab completion."""
        return sorted({*vars(sys.modules[module_name]), *api})

    return getattr_, dir_
