"""What every part of the attribution layer shares: the result type, output selection, devices and out-of-memory.

- :class:`IGResult` -- what :func:`audit.attribution.native.integrated_gradients` returns; :data:`ProgressFn`.
- :func:`select_output` -- the explained scalar per row of a model's output.
- :func:`resolve_device` -- a device name checked once, with one clear error.
- :func:`model_dtype_device` -- the dtype and device a model computes in.
- :func:`is_oom` -- whether an exception is an out-of-memory error (CUDA or CPU allocator).
- :func:`batched_forward` -- a no-grad forward in batches that halves the batch on out-of-memory and goes on.

This module depends on torch and :mod:`audit.errors` only, so any layer of the project may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from audit.errors import AttributionError

__all__ = [
    "IGResult",
    "ProgressFn",
    "select_output",
    "resolve_device",
    "model_dtype_device",
    "is_oom",
    "batched_forward",
]

ProgressFn = Callable[[int, int], None]
"""``progress(done_rows, total_rows)``, called as chunks of rows finish."""


@dataclass(frozen=True)
class IGResult:
    """What :func:`audit.attribution.native.integrated_gradients` returns; every tensor is on the CPU.

    Attributes
    ----------
    attributions : Tensor of shape (n_rows, *feature_shape)
    f_x : Tensor of shape (n_rows,)
        The explained output at the input.
    f_baseline : Tensor of shape (n_rows,)
        The explained output at the baseline (the mean over references when several are averaged).
    delta : Tensor of shape (n_rows,)
        Completeness error ``sum(attributions) - (f_x - f_baseline)``.
    rel_delta : Tensor of shape (n_rows,)
        ``|delta| / max(|f_x - f_baseline|, floor)``, with ``floor = 1e-6 * (1 + max(|f_x|, |f_baseline|))``
        so that rows whose output barely moves do not divide by zero.
    steps : Tensor of shape (n_rows,), int64
        Quadrature steps each row used (all equal unless ``n_steps="auto"``).
    chunk_rows : int
        Rows that shared a forward/backward at the first step count (at the end of the run).
    points_per_pass : int
        Path points of each of those rows per forward/backward: all of them (steps plus the end points the rule
        lacks) unless memory or speed cut a row's points into several passes. 1 on the exact path.
    """

    attributions: torch.Tensor
    f_x: torch.Tensor
    f_baseline: torch.Tensor
    delta: torch.Tensor
    rel_delta: torch.Tensor
    steps: torch.Tensor
    method: str
    n_steps: int | str
    batch_independent: bool
    chunk_rows: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    points_per_pass: int = 0


def select_output(out: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """The explained scalar per row.

    Parameters
    ----------
    out : Tensor of shape (m,), (m, 1) or (m, k)
    target : LongTensor of shape (m,) or None
        Output index per row; required when k > 1.

    Returns
    -------
    Tensor of shape (m,)

    Raises
    ------
    AttributionError
        ``out`` has another shape, or k > 1 outputs and no ``target``.
    """
    if out.dim() == 1:
        return out
    if out.dim() == 2 and out.shape[1] == 1 and target is None:
        return out[:, 0]
    if out.dim() != 2:
        raise AttributionError(
            f"the model returned output of shape {tuple(out.shape)}; audit explains (rows,) or (rows, classes) "
            "outputs: wrap the model so it returns one of those"
        )
    if target is None:
        raise AttributionError(
            f"the model has {out.shape[1]} outputs; say which to explain (a class index per row, or --class K)"
        )
    return out.gather(1, target.view(-1, 1)).squeeze(1)


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, checked.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...

    Returns
    -------
    torch.device
        A bare ``"cuda"`` gets the current index, so that ``"cuda"`` and ``"cuda:0"`` compare equal.

    Raises
    ------
    AttributionError
        An unknown device name, or CUDA without a visible GPU.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise AttributionError(f"unknown device '{device}'; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AttributionError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def model_dtype_device(module: torch.nn.Module) -> tuple[torch.dtype, torch.device]:
    """The floating-point dtype and the device a model computes in: what its inputs should have.

    Parameters
    ----------
    module : torch.nn.Module
        Any form: eager, TorchScript, a ``torch.export`` graph module.

    Returns
    -------
    dtype : torch.dtype
    device : torch.device
        Those of the first floating-point parameter (``torch.float64`` after ``model.double()``), else of the
        first floating-point buffer, else ``(torch.float32, cpu)`` for a model without floating tensors.
    """
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return torch.float32, torch.device("cpu")


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` means that memory ran out.

    Parameters
    ----------
    err : BaseException

    Returns
    -------
    bool
        True for ``torch.cuda.OutOfMemoryError`` and for a RuntimeError whose message says "out of memory"
        (CUDA, MPS) or "can't allocate memory" (the CPU allocator); False for anything else.
    """
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    msg = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def batched_forward(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    batch: int,
    device: str | torch.device,
    dtype: torch.dtype | None = None,
    on_oom: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """The model's outputs for rows ``x``, without gradients, ``batch`` rows per forward; when memory runs out
    the batch halves and the work goes on from the rows that failed (rows already done are kept).

    Parameters
    ----------
    model : torch.nn.Module
        Maps (m, *feature_shape) to (m, ...). Run as it is (eval or train mode is the caller's business).
    x : Tensor of shape (n_rows, *feature_shape)
        On any device; each batch is moved to ``device``, and floating-point rows are cast to ``dtype``
        (integer rows such as token ids keep theirs). Zero rows give one forward of the empty batch.
    batch : int
        Rows per forward at the start (at least 1).
    device : str or torch.device
        Where the model runs.
    dtype : torch.dtype, optional
        Dtype of floating-point inputs; by default the model's own (:func:`model_dtype_device`).
    on_oom : callable(old_batch, new_batch), optional
        Called each time memory ran out and the batch was halved, e.g. to write a note for the reader.

    Returns
    -------
    Tensor of shape (n_rows, ...) on the CPU
        The outputs in the dtype the model returns them, in row order.

    Raises
    ------
    AttributionError
        ``batch`` is not a whole number >= 1.
    Exception
        Whatever the model raises, out-of-memory at one row per forward included, unchanged.
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise AttributionError(f"batch must be a whole number >= 1, got {batch!r}")
    dev = torch.device(device)
    dtype = model_dtype_device(model)[0] if dtype is None else dtype
    n = x.shape[0]
    step = min(int(batch), max(1, n))
    parts: list[torch.Tensor] = []  # outputs of the rows done, (step, ...) each, on the CPU
    start = 0
    with torch.no_grad():
        while start < n or not parts:
            stop = min(n, start + step)
            xb = x[start:stop]  # (stop - start, *feature_shape)
            xb = xb.to(dev, dtype) if xb.is_floating_point() else xb.to(dev)
            try:
                out = model(xb)  # (stop - start, ...)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
                if not is_oom(err) or step == 1:
                    raise
                out = None  # out of memory: retried below, once the exception's frames are gone
            if out is None:
                del xb  # the failed batch's device copy goes too
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                old, step = step, max(1, step // 2)
                if on_oom is not None:
                    on_oom(old, step)
                continue
            parts.append(out.detach().cpu())
            start = stop
    return torch.cat(parts)
