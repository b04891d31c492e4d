"""The engine's arguments checked and normalised: steps and method, inputs, options, baselines, targets.

Every check raises one :class:`~audit.errors.AttributionError` line that names the problem and what to do.
:func:`audit.attribution.native.integrated_gradients` calls them in a fixed order (steps, inputs, options,
dtype), so that the first problem of a call is the one reported; the Captum adapter and the cross-check read
baselines and targets through the same :func:`as_baseline` and :func:`as_target`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from audit.attribution.base import resolve_device
from audit.attribution.quadrature import METHODS, min_steps
from audit.errors import AttributionError

__all__ = [
    "AUTO_SCHEDULE",
    "auto_schedule",
    "check_steps",
    "as_inputs",
    "check_options",
    "compute_dtype",
    "as_baseline",
    "as_target",
    "check_target_range",
]

# n_steps="auto": the step counts tried, in order, for rows still above tolerance
AUTO_SCHEDULE = (16, 32, 64, 128, 256, 512)


def auto_schedule(max_steps: int) -> list[int]:
    """The step counts ``n_steps="auto"`` tries.

    Parameters
    ----------
    max_steps : int
        At least ``AUTO_SCHEDULE[0]`` (:func:`check_steps` says so).

    Returns
    -------
    list of int
        :data:`AUTO_SCHEDULE` below ``max_steps``, then ``max_steps`` itself.
    """
    return [s for s in AUTO_SCHEDULE if s < max_steps] + [int(max_steps)]


def check_steps(method: str, n_steps: int | str, max_steps: int) -> None:
    """Check the integration method and the step count.

    Parameters
    ----------
    method : str
        One of :data:`audit.attribution.quadrature.METHODS`.
    n_steps : int or "auto"
        A whole number of at least ``min_steps(method)``, or ``"auto"``.
    max_steps : int
        With ``n_steps="auto"``, at least ``AUTO_SCHEDULE[0]``.

    Raises
    ------
    AttributionError
    """
    if method not in METHODS:
        raise AttributionError(f"unknown integration method '{method}'; use one of {', '.join(METHODS)}")
    if isinstance(n_steps, str):
        if n_steps != "auto":
            raise AttributionError(f"n_steps must be a whole number or 'auto', got '{n_steps}'")
        if max_steps < AUTO_SCHEDULE[0]:
            raise AttributionError(f"max_steps must be at least {AUTO_SCHEDULE[0]} with n_steps='auto'")
        return
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < min_steps(method):
        raise AttributionError(
            f"n_steps must be a whole number >= {min_steps(method)} for {method}, got {n_steps!r}; "
            "50 is a good default"
        )


def as_inputs(x: object) -> torch.Tensor:
    """The rows to explain, checked.

    Parameters
    ----------
    x : Tensor of shape (n_rows, *feature_shape)
        At least one row and one feature dimension, finite values.

    Returns
    -------
    Tensor of shape (n_rows, *feature_shape)
        ``x`` itself, or ``x.float()`` when its dtype is not floating-point.

    Raises
    ------
    AttributionError
        Not a tensor, fewer than two dimensions or no row, NaN or infinite values.
    """
    if not isinstance(x, torch.Tensor):
        raise AttributionError("inputs must be a torch.Tensor of shape (rows, features...)")
    if x.dim() < 2 or x.shape[0] < 1:
        raise AttributionError(
            f"inputs must have shape (rows, features...) with at least one row, got {tuple(x.shape)}"
        )
    if not x.dtype.is_floating_point:
        x = x.float()
    if not torch.isfinite(x).all():
        raise AttributionError("inputs hold NaN or infinite values; clean the data first")
    return x


def check_options(
    *,
    delta_floor: float,
    tolerance: float,
    device: str | torch.device,
    bf16: bool,
    memory_budget_mb: float,
    chunk_rows: int | None,
    points_per_pass: int | None,
) -> torch.device:
    """Check the engine's numeric options and the device, in this order.

    Parameters
    ----------
    delta_floor : float
        Finite, >= 0.
    tolerance : float
        In (0, 1000).
    device : str or torch.device
        Checked by :func:`audit.attribution.base.resolve_device`.
    bf16 : bool
        Needs a CUDA device.
    memory_budget_mb : float
        Positive.
    chunk_rows, points_per_pass : int or None
        None or a whole number >= 1.

    Returns
    -------
    torch.device
        The resolved device.

    Raises
    ------
    AttributionError
        The first option that is out of range.
    """
    if not (math.isfinite(delta_floor) and delta_floor >= 0):
        raise AttributionError(f"delta_floor must be a finite number >= 0, got {delta_floor}")
    if not (0 < tolerance < 1e3):
        raise AttributionError(f"tolerance must be a positive number, got {tolerance}")
    dev = resolve_device(device)
    if bf16 and dev.type != "cuda":
        raise AttributionError("bf16 autocast needs a CUDA device; drop --bf16 or use --device cuda")
    if memory_budget_mb <= 0:
        raise AttributionError(f"memory_budget_mb must be positive, got {memory_budget_mb}")
    for name, value in (("chunk_rows", chunk_rows), ("points_per_pass", points_per_pass)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise AttributionError(f"{name} must be at least 1 (a whole number), got {value!r}")
    return dev


def compute_dtype(input_dtype: torch.dtype, dtype: torch.dtype | None) -> torch.dtype:
    """The precision the engine computes in.

    Parameters
    ----------
    input_dtype : torch.dtype
        The dtype of the (floating-point) inputs.
    dtype : torch.dtype or None
        Asked for; None follows the inputs: float64 inputs compute in float64, any other in float32.

    Returns
    -------
    torch.float32 or torch.float64

    Raises
    ------
    AttributionError
        Another dtype was asked for.
    """
    work = dtype or (torch.float64 if input_dtype == torch.float64 else torch.float32)
    if work not in (torch.float32, torch.float64):
        raise AttributionError(f"dtype must be float32 or float64, got {work}")
    return work


def as_baseline(baselines: object, x: torch.Tensor, references: bool) -> torch.Tensor:
    """Baselines as a tensor on the CPU in the dtype of ``x``.

    Parameters
    ----------
    baselines : None, "zero", float, or Tensor
        ``None``, ``"zero"`` or a finite number: that constant everywhere; a tensor of shape ``feature_shape``,
        ``(1, *feature_shape)`` or ``(n_rows, *feature_shape)``; with ``references``, ``(n_refs,
        *feature_shape)``.
    x : Tensor of shape (n_rows, *feature_shape)
        The inputs; gives the shapes and the dtype.
    references : bool
        The baselines are reference rows to average over (any number of them).

    Returns
    -------
    Tensor of shape (1, *feature_shape), (n_rows, *feature_shape) or, with ``references``, (n_refs,
    *feature_shape)

    Raises
    ------
    AttributionError
        An unknown name, a non-finite value, or a shape that does not fit the inputs.
    """
    fs = tuple(x.shape[1:])
    if baselines is None or (isinstance(baselines, str) and baselines == "zero"):
        return torch.zeros((1, *fs), dtype=x.dtype)
    if isinstance(baselines, str):
        raise AttributionError(f"unknown baseline '{baselines}'; pass 'zero', a number or a tensor")
    if isinstance(baselines, (int, float)) and not isinstance(baselines, bool):
        if not math.isfinite(float(baselines)):
            raise AttributionError(f"the baseline value must be finite, got {baselines}")
        return torch.full((1, *fs), float(baselines), dtype=x.dtype)
    b = torch.as_tensor(baselines).to(dtype=x.dtype, device="cpu")
    if not torch.isfinite(b).all():
        raise AttributionError("the baseline holds NaN or infinite values; pass finite numbers")
    if tuple(b.shape) == fs:
        return b.unsqueeze(0)
    if b.dim() == len(fs) + 1 and tuple(b.shape[1:]) == fs:
        if references:
            if b.shape[0] < 1:
                raise AttributionError("pass at least one reference row")
            return b
        if b.shape[0] in (1, x.shape[0]):
            return b
    want = f"{fs}, (1, *{fs}) or ({x.shape[0]}, *{fs})"
    if references:
        want = f"(n_refs, *{fs})"
    raise AttributionError(
        f"baseline of shape {tuple(b.shape)} does not fit inputs of shape {tuple(x.shape)}; pass a baseline of "
        f"shape {want}"
    )


def as_target(target: object, n_rows: int, device: torch.device) -> torch.Tensor | None:
    """The output index to explain per row.

    Parameters
    ----------
    target : None, int, or integer array-like of shape (n_rows,)
    n_rows : int
    device : torch.device
        Where the returned tensor lives.

    Returns
    -------
    LongTensor of shape (n_rows,), or None when ``target`` is None

    Raises
    ------
    AttributionError
        Floating-point or boolean indices, or not one index per row.
    """
    if target is None:
        return None
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return torch.full((n_rows,), int(target), dtype=torch.long, device=device)
    t = torch.as_tensor(target)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise AttributionError("target must hold whole-number class indices")
    t = t.to(torch.long).reshape(-1)
    if t.numel() != n_rows:
        raise AttributionError(f"target has {t.numel()} entries for {n_rows} rows; pass one index per row or one int")
    return t.to(device)


def check_target_range(target: torch.Tensor | None, n_outputs: int) -> None:
    """Check that every target index names one of the model's outputs.

    Parameters
    ----------
    target : LongTensor of shape (n_rows,) or None
        None passes.
    n_outputs : int
        Outputs per row of the model (1 for an output of shape (m,)).

    Raises
    ------
    AttributionError
        An index below 0 or at least ``n_outputs``.
    """
    if target is None:
        return
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= n_outputs:
        bad = lo if lo < 0 else hi
        raise AttributionError(
            f"target index {bad} is out of range for a model with {n_outputs} outputs; use 0..{n_outputs - 1}"
        )
