"""EngineSettings: the one place the IG engine's arguments are made from a run's configuration.

Every call of :func:`audit.attribution.native.integrated_gradients` in a run (the attribution of each block, the
native side of the Captum cross-check, per-class and per-output rankings, the direction samples, images) takes
its keyword arguments from here, so the cross-check checks the computation the report shows: before, the
tabular cross-check dropped ``--dtype float64`` and ``--bf16``, ``--class all`` dropped the tolerance and step
limit, and images stopped ``--n-steps auto`` at the engine's default 256 instead of ``--max-steps``.

Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.config import AuditConfig

__all__ = ["EngineSettings"]


@dataclass(frozen=True)
class EngineSettings:
    """The engine's arguments for one run.

    Attributes
    ----------
    method, n_steps, tolerance, max_steps
        Quadrature rule, steps (or ``"auto"``), the completeness tolerance ``auto`` refines to, its step limit.
    device : str
    dtype : {"float32", "float64"}
    bf16 : bool
    memory_budget_mb : float
    delta_floor : float
        Floor of the completeness error's denominator (see ``integrated_gradients``).
    """

    method: str
    n_steps: int | str
    tolerance: float
    max_steps: int
    device: str
    dtype: str
    bf16: bool
    memory_budget_mb: float
    delta_floor: float = 0.0

    @classmethod
    def from_config(cls, config: AuditConfig, *, delta_floor: float = 0.0) -> EngineSettings:
        """The settings a run's configuration asks for."""
        return cls(
            method=config.method,
            n_steps=config.n_steps,
            tolerance=config.thresholds.convergence_tol,
            max_steps=config.max_steps,
            device=config.device,
            dtype=config.dtype,
            bf16=config.bf16,
            memory_budget_mb=config.memory_budget_mb,
            delta_floor=delta_floor,
        )

    def replace(self, **changes: Any) -> EngineSettings:
        """A copy with some fields changed (a fixed step count for the cross-check of an image, say)."""
        return dataclasses.replace(self, **changes)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`audit.attribution.native.integrated_gradients`."""
        import torch

        return {
            "method": self.method,
            "n_steps": self.n_steps,
            "tolerance": self.tolerance,
            "max_steps": self.max_steps,
            "device": self.device,
            "dtype": torch.float64 if self.dtype == "float64" else None,
            "bf16": self.bf16,
            "memory_budget_mb": self.memory_budget_mb,
            "delta_floor": self.delta_floor,
        }
