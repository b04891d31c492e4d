"""The ``text`` extra: transformers and tokenizers are optional, imported only by the text modules.

:func:`require` imports them on first use; when they are missing the run stops with one line (exit 3) that says
how to install them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from audit.errors import ModelLoadError

__all__ = ["EXTRA_MESSAGE", "require"]

EXTRA_MESSAGE = "text models need the text extra: pip install 'audit[text]'"


def require(name: str) -> ModuleType:
    """``import name`` (``"transformers"`` or ``"tokenizers"``), or a :class:`ModelLoadError` naming the extra."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ModelLoadError(f"{EXTRA_MESSAGE} ({name} is not installed)") from e
