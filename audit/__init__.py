"""audit: what is my model actually using?

Integrated Gradients attributions from a native engine, cross-checked against Captum, turned into
global rankings, findings, reports and an exit code.

>>> import audit
>>> run = audit.run(model, df, target="label")  # doctest: +SKIP

``audit.run`` and ``audit.load`` are imported on first use, so ``import audit`` stays light.
"""

from __future__ import annotations

import warnings
from typing import Any

__version__ = "0.1.0"

# Captum and transformers import tqdm.auto, which in a Jupyter kernel without ipywidgets warns "IProgress not
# found" (a red TqdmWarning in the notebook's first output). audit shows no tqdm bar, so the warning is noise.
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

__all__ = ["__version__", "run", "load"]


def __getattr__(name: str) -> Any:
    if name in ("run", "load"):
        from audit import api

        return getattr(api, name)
    raise AttributeError(f"module 'audit' has no attribute '{name}'")
