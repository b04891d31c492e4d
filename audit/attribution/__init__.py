"""attribution layer: our Integrated Gradients engine, its quadrature rules, the Captum adapter and cross-check.

- :mod:`audit.attribution.native` -- :func:`integrated_gradients` (all path points of a chunk in one forward and
  one backward), :class:`IGResult`, :func:`select_output`, :func:`rows_are_independent`.
- :mod:`audit.attribution.quadrature` -- :func:`rule` (textbook nodes and weights), :func:`captum_rule`.
- :mod:`audit.attribution.captum_ig` -- :func:`captum_attribute`: the only module that imports Captum.
- :mod:`audit.attribution.crosscheck` -- :func:`crosscheck`, :func:`sample_rows`, :func:`spearman`.

Names are imported on first use, so ``import audit.attribution.quadrature`` does not import torch or Captum.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "IGResult",
    "integrated_gradients",
    "select_output",
    "rows_are_independent",
    "METHODS",
    "rule",
    "captum_rule",
    "captum_attribute",
    "best_internal_batch_size",
    "crosscheck",
    "sample_rows",
    "spearman",
]

_LAZY = {
    "IGResult": "native",
    "integrated_gradients": "native",
    "select_output": "native",
    "rows_are_independent": "native",
    "METHODS": "quadrature",
    "rule": "quadrature",
    "captum_rule": "quadrature",
    "captum_attribute": "captum_ig",
    "best_internal_batch_size": "captum_ig",
    "crosscheck": "crosscheck",
    "sample_rows": "crosscheck",
    "spearman": "crosscheck",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audit.attribution' has no attribute '{name}'")
    return getattr(importlib.import_module(f"audit.attribution.{module}"), name)
