"""attribution layer: our Integrated Gradients engine, its quadrature rules, the Captum adapter and cross-check.

- :mod:`audit.attribution.native` -- :func:`integrated_gradients` (all path points of a chunk in one forward and
  one backward); the engine behind it is cut by concern into :mod:`~audit.attribution.arguments`,
  :mod:`~audit.attribution.probes`, :mod:`~audit.attribution.memory`, :mod:`~audit.attribution.planning` and
  :mod:`~audit.attribution.passes`.
- :mod:`audit.attribution.base` -- :class:`IGResult`, :func:`select_output`, :func:`resolve_device` and the
  helpers the whole project shares: :func:`is_oom`, :func:`batched_forward`, :func:`model_dtype_device`.
- :mod:`audit.attribution.probes` -- :func:`rows_are_independent`.
- :mod:`audit.attribution.quadrature` -- :func:`rule` (textbook nodes and weights), :func:`captum_rule`.
- :mod:`audit.attribution.captum_ig` -- :func:`captum_attribute`: Captum's ``IntegratedGradients``.
- :mod:`audit.attribution.crosscheck` -- :func:`crosscheck`, :func:`sample_rows`, :func:`spearman`.
- :mod:`audit.attribution.layer` -- :func:`layer_integrated_gradients`: IG in a layer's output space (token
  embeddings of text models), on the same engine.
- :mod:`audit.attribution.layer_crosscheck` -- :func:`layer_crosscheck`, :func:`captum_layer_attribute`:
  against Captum's ``LayerIntegratedGradients``.
- :mod:`audit.attribution.embedded` -- :func:`find_category_inputs`: tabular category columns looked up in
  ``nn.Embedding`` layers, explained in embedding space.

Captum is imported by ``captum_ig`` and ``layer_crosscheck`` only.

Names are imported on first use, so ``import audit.attribution.quadrature`` does not import torch or Captum.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "IGResult",
    "integrated_gradients",
    "select_output",
    "resolve_device",
    "rows_are_independent",
    "is_oom",
    "batched_forward",
    "model_dtype_device",
    "METHODS",
    "rule",
    "captum_rule",
    "captum_attribute",
    "best_internal_batch_size",
    "crosscheck",
    "sample_rows",
    "spearman",
    "layer_integrated_gradients",
    "layer_crosscheck",
    "captum_layer_attribute",
    "find_category_inputs",
]

_LAZY = {
    "IGResult": "base",
    "integrated_gradients": "native",
    "select_output": "base",
    "resolve_device": "base",
    "rows_are_independent": "probes",
    "is_oom": "base",
    "batched_forward": "base",
    "model_dtype_device": "base",
    "METHODS": "quadrature",
    "rule": "quadrature",
    "captum_rule": "quadrature",
    "captum_attribute": "captum_ig",
    "best_internal_batch_size": "captum_ig",
    "crosscheck": "crosscheck",
    "sample_rows": "crosscheck",
    "spearman": "crosscheck",
    "layer_integrated_gradients": "layer",
    "layer_crosscheck": "layer_crosscheck",
    "captum_layer_attribute": "layer_crosscheck",
    "find_category_inputs": "embedded",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audit.attribution' has no attribute '{name}'")
    return getattr(importlib.import_module(f"audit.attribution.{module}"), name)
