"""io layer: model checkpoints (:mod:`audit.io.model`) and tabular data (:mod:`audit.io.tabular`).

The model names are imported lazily, so ``from audit.io import inspect_table`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from audit.io.tabular import (
    TABLE_FORMATS,
    Chunk,
    TableSpec,
    inspect_table,
    iter_chunks,
    read_baseline_row,
    read_table,
)

__all__ = [
    # audit.io.model (imported on first use: it needs torch)
    "FORMS",
    "LoadedModel",
    "load_model",
    "model_input_check",
    "model_dtype",
    # audit.io.tabular
    "TABLE_FORMATS",
    "Chunk",
    "TableSpec",
    "inspect_table",
    "iter_chunks",
    "read_baseline_row",
    "read_table",
]

_LAZY = {"FORMS": "audit.io.model", "LoadedModel": "audit.io.model", "load_model": "audit.io.model",
         "model_input_check": "audit.io.model", "model_dtype": "audit.io.model"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audit.io' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
