"""Captum's Integrated Gradients on the same rows, baselines, targets, method and steps as our engine.

With :mod:`audit.attribution.layer_crosscheck` (Captum's ``LayerIntegratedGradients``), the only module of the
package that imports Captum. :func:`captum_attribute` wraps the model's forward so (m,) and (m, 1) outputs and
per-row targets work, and interprets baselines exactly like
:func:`audit.attribution.native.integrated_gradients`.

Speed: Captum takes per-row gradients through ``torch.autograd.grad(torch.unbind(outputs), inputs)``, whose cost
grows faster than the batch. With its default ``internal_batch_size=None`` every path point of every row goes
through one forward, which on the CPU is the slowest setting by far (96-256-128-1 MLP, 50 Gauss-Legendre steps:
~77 rows/s at 2,048 rows against ~570 rows/s at 256 rows). Captum's own ``internal_batch_size`` can never go below
the number of rows; :func:`captum_attribute` lifts that floor by handing Captum groups of rows, so that any
number of path points per forward can be asked for. :func:`best_internal_batch_size` picks the setting that was
fastest in our measurements (about 1,024 points per forward), capped by a memory budget.
"""

from __future__ import annotations

import warnings

import captum
import torch
from captum.attr import IntegratedGradients

from audit.attribution.arguments import as_baseline, as_target, check_target_range
from audit.attribution.base import model_dtype_device, select_output
from audit.attribution.memory import bytes_per_point
from audit.attribution.quadrature import captum_rule
from audit.errors import AttributionError

__all__ = ["captum_attribute", "best_internal_batch_size", "captum_version", "POINTS_PER_FORWARD"]

# Path points per forward at which Captum ran fastest on the CPU (96-256-128-1 MLP, 2,048 rows, 50 steps:
# 512-2,048 points per forward were within noise of each other; 102,400 at once was ~20x slower).
POINTS_PER_FORWARD = 1024


class _Forward(torch.nn.Module):
    """The model with its output made 2-D: (m,) -> (m, 1), so Captum's target selection always applies."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.model(z)
        return out.unsqueeze(1) if out.dim() == 1 else out


def captum_version() -> str:
    """The installed Captum version, for provenance."""
    return str(captum.__version__)


def best_internal_batch_size(
    model: torch.nn.Module, x: torch.Tensor, *, n_steps: int, memory_budget_mb: float = 256
) -> int:
    """Path points per Captum forward: :data:`POINTS_PER_FORWARD`, fewer when a point's activations are so
    large that the budget would be exceeded, and never more than ``n_rows * n_steps``.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (n_rows, *feature_shape)
    n_steps : int
    memory_budget_mb : float, default 256

    Returns
    -------
    int, at least 1
    """
    dtype, device = model_dtype_device(model)
    per_point = bytes_per_point(model, x[:2].to(device, dtype), torch.finfo(dtype).bits // 8)
    by_memory = max(1, int(memory_budget_mb * 2**20 // per_point))
    return max(1, min(POINTS_PER_FORWARD, by_memory, x.shape[0] * n_steps))


def captum_attribute(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    baselines: object = "zero",
    target: object = None,
    method: str = "gausslegendre",
    n_steps: int = 50,
    internal_batch_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``captum.attr.IntegratedGradients(model).attribute(...)`` with our argument conventions.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (m, *feature_shape) to (m,), (m, 1) or (m, k). Runs in its own dtype and on its own device.
    x : Tensor of shape (n_rows, *feature_shape)
    baselines : "zero", float, or Tensor of shape feature_shape, (1, *feature_shape) or (n_rows, *feature_shape)
        As in :func:`audit.attribution.native.integrated_gradients` (no reference averaging here: the
        cross-check calls this once per reference).
    target : None, int, or LongTensor of shape (n_rows,)
    method : str, default "gausslegendre"
        One of :data:`audit.attribution.quadrature.METHODS`; Captum's own rule is used (see
        :func:`audit.attribution.quadrature.captum_rule`).
    n_steps : int, default 50
    internal_batch_size : int, optional
        Path points per forward. ``None`` is Captum's default: all ``n_rows * n_steps`` points at once. Below
        ``n_rows`` the rows are handed to Captum in groups of ``internal_batch_size`` rows, one step per forward.

    Returns
    -------
    attributions : Tensor of shape (n_rows, *feature_shape), on the CPU
    delta : Tensor of shape (n_rows,), on the CPU
        Captum's completeness error ``sum(attributions) - (F(x) - F(x'))`` per row.
    """
    captum_rule(method, n_steps)  # unknown method, bad step counts, Captum's own minimum: one clear error
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] < 1:
        raise AttributionError("inputs must be a torch.Tensor of shape (rows, features...) with at least one row")
    if internal_batch_size is not None and (isinstance(internal_batch_size, bool) or internal_batch_size < 1):
        raise AttributionError(f"internal_batch_size must be a positive whole number, got {internal_batch_size!r}")
    dtype, device = model_dtype_device(model)
    n = x.shape[0]
    xs = x.detach().to(device, dtype)
    b = as_baseline(baselines, xs.cpu(), references=False).to(device, dtype)  # (1 or n, *fs)
    tgt = as_target(target, n, device)
    forward = _Forward(model)
    with torch.no_grad():
        probe = forward(xs[:2])  # (1 or 2, k)
    check_target_range(tgt, int(probe.shape[-1]))
    select_output(probe, None if tgt is None else tgt[: probe.shape[0]])  # k > 1 outputs and no target: fails
    ig = IntegratedGradients(forward)

    group = n if internal_batch_size is None or internal_batch_size >= n else int(internal_batch_size)
    attrs, deltas = [], []
    for start in range(0, n, group):
        stop = min(n, start + group)
        xg = xs[start:stop]
        bg = (b if b.shape[0] == 1 else b[start:stop]).expand_as(xg).contiguous()
        tg = None if tgt is None else tgt[start:stop]
        ibs = None if internal_batch_size is None else max(int(internal_batch_size), stop - start)
        with warnings.catch_warnings():  # Captum warns when asked for fewer points than rows; we never do
            warnings.simplefilter("ignore", UserWarning)
            a, d = ig.attribute(
                xg,
                baselines=bg,
                target=tg if tg is not None else 0,
                method=method,
                n_steps=int(n_steps),
                internal_batch_size=ibs,
                return_convergence_delta=True,
            )
        attrs.append(a.detach().cpu())
        deltas.append(d.detach().reshape(-1).cpu())
    return torch.cat(attrs), torch.cat(deltas)
