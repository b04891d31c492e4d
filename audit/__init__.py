"""audit: what is my model actually using?

Integrated Gradients attributions from a native engine, cross-checked against Captum, turned into
global rankings, findings, reports and an exit code.

>>> import audit
>>> run = audit.run(model, df, target="label")  # doctest: +SKIP

``audit.run`` and ``audit.load`` are imported on first use, so ``import audit`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "run", "load"]


def __getattr__(name: str) -> Any:
    if name in ("run", "load"):
        from audit import api

        return getattr(api, name)
    raise AttributeError(f"module 'audit' has no attribute '{name}'")
