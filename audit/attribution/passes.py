"""The kernels: one forward and one backward over many path points, and the runs of a fixed step count.

Integrated Gradients (Sundararajan, Taly, Yan, ICML 2017) is approximated by a quadrature rule
``sum_s w_s * grad F(x' + a_s (x - x'))``. When rows do not interact, the gradient of ``sum_r F(p_r)`` with
respect to the stacked path points ``p`` holds each point's own gradient, so one backward serves every point of
a pass (:func:`run_fixed`, cut as :class:`audit.attribution.planning.PassSizes` says). When they do, row r's
output is the function the model computes on the whole batch with row r replaced by a path point: one forward
and one backward per point (:func:`run_coupled`).

F(x) and F(x') come from the same passes: the end points a=0 and a=1 are added with weight 0 when the rule does
not already contain them (:func:`points_per_row` counts them).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from audit.attribution.base import ProgressFn, is_oom, select_output
from audit.attribution.planning import PassSizes
from audit.attribution.quadrature import rule
from audit.errors import AttributionError

__all__ = ["points_per_row", "run_fixed", "run_coupled"]


def _with_end_points(alphas: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Append a=0 and a=1 with weight 0 when the rule lacks them; return their positions too."""
    a, w = list(alphas), list(weights)
    i0 = next((i for i, v in enumerate(a) if v == 0.0), None)
    if i0 is None:
        a.append(0.0)
        w.append(0.0)
        i0 = len(a) - 1
    i1 = next((i for i, v in enumerate(a) if v == 1.0), None)
    if i1 is None:
        a.append(1.0)
        w.append(0.0)
        i1 = len(a) - 1
    return np.asarray(a), np.asarray(w), i0, i1


def points_per_row(method: str, n_steps: int) -> int:
    """Path points the engine evaluates per row at a step count.

    Parameters
    ----------
    method : str
        One of :data:`audit.attribution.quadrature.METHODS`.
    n_steps : int

    Returns
    -------
    int
        The rule's nodes plus the end points a=0 and a=1 it lacks (they give F(x') and F(x)): ``n_steps + 2``
        for Gauss-Legendre and the midpoint rule, ``n_steps + 1`` for the left and right Riemann rules,
        ``n_steps`` for the trapezoid.
    """
    return len(_with_end_points(*rule(method, n_steps))[0])


def _pass_batched(
    model: torch.nn.Module,
    x: torch.Tensor,
    b: torch.Tensor,
    diff: torch.Tensor,
    target: torch.Tensor | None,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    autocast: bool,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward and one backward over the path points ``alphas`` of every row of a chunk.

    x, b, diff = x - b : (n, *fs); alphas, weights : (k,). Returns the weighted gradient sum
    ``sum_s weights[s] * grad F(b + alphas[s] * diff)`` (n, *fs) and the outputs at the points (k, n).
    ``channels_last`` lays (n, C, H, W) points out as NHWC in memory (same values, faster convolutions on CPU).
    """
    n, fs = x.shape[0], tuple(x.shape[1:])
    k = alphas.shape[0]
    a = alphas.view(k, 1, *([1] * len(fs)))
    points = torch.addcmul(b.unsqueeze(0), a, diff.unsqueeze(0)).reshape(k * n, *fs)  # (k * n, *fs), one kernel
    if channels_last:
        points = points.contiguous(memory_format=torch.channels_last)
    points.requires_grad_(True)
    tgt = None if target is None else target.repeat(k)  # (k * n,)
    ctx = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with torch.enable_grad(), ctx:
        out = model(points)
    sel = select_output(out, tgt).float() if autocast else select_output(out, tgt)  # (k * n,)
    (grads,) = torch.autograd.grad(sel.sum(), points)  # grads: (k * n, *fs)
    grads = grads.reshape(k, n * int(np.prod(fs, dtype=np.int64)))  # (k, n * F)
    wsum = (weights.to(grads.dtype) @ grads).reshape(n, *fs)  # (n, *fs)
    return wsum, sel.detach().reshape(k, n)


def _pass_coupled(
    model: torch.nn.Module,
    context: torch.Tensor,
    pos: int,
    b: torch.Tensor,
    target: torch.Tensor | None,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    i0: int,
    i1: int,
    autocast: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact path for models that couple rows: the output of row ``pos`` of ``context`` as a function of that
    row alone, the other rows held at their values. One forward and one backward per path point.

    context : (n, *fs), the whole input batch; b : (*fs,), the row's baseline; target : (1,) or None.
    Returns the row's attributions (*fs,), F(x) and F(x') as 0-d tensors.
    """
    xr = context[pos]
    diff = xr - b  # (*fs,)
    total = torch.zeros_like(xr)
    f = [torch.zeros((), dtype=context.dtype, device=context.device) for _ in range(2)]
    ctx = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    for s in range(alphas.shape[0]):
        p = (b + alphas[s] * diff).unsqueeze(0).requires_grad_(True)  # (1, *fs)
        batch = torch.cat([context[:pos], p, context[pos + 1 :]])  # (n, *fs)
        with torch.enable_grad(), ctx:
            out = model(batch)
        sel = select_output(out[pos : pos + 1], target)  # (1,)
        sel = sel.float() if autocast else sel
        (g,) = torch.autograd.grad(sel.sum(), p)  # (1, *fs)
        total += weights[s].to(total.dtype) * g[0].to(total.dtype)
        if s == i0:
            f[0] = sel.detach()[0].to(context.dtype)
        if s == i1:
            f[1] = sel.detach()[0].to(context.dtype)
    return diff * total, f[1], f[0]


def run_fixed(
    model: torch.nn.Module,
    x: torch.Tensor,
    b: torch.Tensor,
    target: torch.Tensor | None,
    method: str,
    n_steps: int,
    *,
    device: torch.device,
    sizes: PassSizes,
    autocast: bool,
    progress: ProgressFn | None,
    progress_offset: int,
    progress_total: int,
    notes: list[str],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IG at a fixed step count over rows that do not interact, chunk by chunk, each chunk's path points in one
    or more passes as ``sizes`` says; when memory runs out the cut shrinks and the work goes on.

    A row's result is the same sum whatever the cut, up to float rounding.

    Parameters
    ----------
    model : torch.nn.Module
        On ``device``, in the dtype of ``x``.
    x : Tensor of shape (n, *fs)
        The rows, on the CPU.
    b : Tensor of shape (1 or n, *fs)
        Their baselines, on the CPU.
    target : LongTensor of shape (n,) or None
    method : str
    n_steps : int
    device : torch.device
    sizes : PassSizes
        The cut (:func:`audit.attribution.planning.plan_passes`); shrinks in place when memory runs out.
    autocast : bool
        bf16 autocast of the forward (CUDA).
    progress : callable(done, total) or None
        Called after each chunk with ``progress_offset + rows done`` and ``progress_total``.
    progress_offset, progress_total : int
    notes : list of str
        Out-of-memory notes are appended here.

    Returns
    -------
    attributions : Tensor of shape (n, *fs)
    f_x : Tensor of shape (n,)
    f_baseline : Tensor of shape (n,)
        All on the CPU, in the dtype of ``x``.

    Raises
    ------
    AttributionError
        Memory ran out at one point of one row per pass.
    """
    al, wt, i0, i1 = _with_end_points(*rule(method, n_steps))
    S = len(al)
    alphas = torch.as_tensor(al, dtype=x.dtype, device=device)
    weights = torch.as_tensor(wt, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32, device=device)
    n = x.shape[0]
    attr = torch.empty_like(x)
    fx = torch.empty(n, dtype=x.dtype)
    fb = torch.empty(n, dtype=x.dtype)
    sizes.begin(S, n)
    start = 0
    while start < n:
        stop = min(n, start + sizes.shape(S)[0])
        c = stop - start
        xc = x[start:stop].to(device, non_blocking=True)  # (c, *fs)
        bc = (b if b.shape[0] == 1 else b[start:stop]).to(device, non_blocking=True).expand_as(xc)
        tc = None if target is None else target[start:stop].to(device)
        diff = xc - bc  # (c, *fs)
        total = torch.zeros_like(diff)  # weighted gradients summed over the passes: (c, *fs)
        f_ends: dict[int, torch.Tensor] = {}  # i0, i1 -> outputs (c,)
        a0 = 0
        while a0 < S:
            rows, per_row = sizes.shape(S)
            if rows < c:  # memory ran out: this chunk starts again with fewer rows
                break
            a1 = min(S, a0 + per_row)
            t0 = time.perf_counter()
            try:
                wsum, f = _pass_batched(
                    model, xc, bc, diff, tc, alphas[a0:a1], weights[a0:a1], autocast, sizes.channels_last
                )
            except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
                if not is_oom(err):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                smaller = sizes.shrink(c, a1 - a0)
                if smaller is None:
                    raise AttributionError(
                        f"memory ran out with a single path point of one input of shape {tuple(x.shape[1:])} per "
                        f"forward and backward on {device}; free memory there, use smaller inputs or another device"
                    ) from err
                notes.append(
                    f"memory ran out at {c} rows x {a1 - a0} points per pass; went on with {smaller[0]} rows x "
                    f"at most {smaller[1]} points"
                )
                continue
            sizes.record(c * (a1 - a0), time.perf_counter() - t0)
            total += wsum
            for i in (i0, i1):
                if a0 <= i < a1:
                    f_ends[i] = f[i - a0]
            a0 = a1
        if a0 < S:
            continue
        attr[start:stop] = (diff * total).detach().cpu()
        fx[start:stop] = f_ends[i1].to(x.dtype).cpu()
        fb[start:stop] = f_ends[i0].to(x.dtype).cpu()
        start = stop
        if progress is not None:
            progress(progress_offset + start, progress_total)
    return attr, fx, fb


def run_coupled(
    model: torch.nn.Module,
    context: torch.Tensor,
    rows: torch.Tensor,
    b: torch.Tensor,
    target: torch.Tensor | None,
    method: str,
    n_steps: int,
    *,
    device: torch.device,
    autocast: bool,
    progress: ProgressFn | None,
    progress_offset: int,
    progress_total: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IG at a fixed step count for rows that interact: the exact path, row by row, one forward and one
    backward per path point of a row with the other rows of ``context`` held at their values.

    Parameters
    ----------
    model : torch.nn.Module
        On ``device``, in the dtype of ``context``.
    context : Tensor of shape (n, *fs)
        The whole input batch, on the CPU.
    rows : LongTensor of shape (m,)
        Positions in ``context`` of the rows to attribute.
    b : Tensor of shape (1 or m, *fs)
        Their baselines.
    target : LongTensor of shape (m,) or None
    method : str
    n_steps : int
    device : torch.device
    autocast : bool
        bf16 autocast of the forward (CUDA).
    progress : callable(done, total) or None
        Called after each row with ``progress_offset + rows done`` and ``progress_total``.
    progress_offset, progress_total : int

    Returns
    -------
    attributions : Tensor of shape (m, *fs)
    f_x : Tensor of shape (m,)
    f_baseline : Tensor of shape (m,)
        All on the CPU, in the dtype of ``context``.
    """
    al, wt, i0, i1 = _with_end_points(*rule(method, n_steps))
    alphas = torch.as_tensor(al, dtype=context.dtype, device=device)
    weights = torch.as_tensor(wt, dtype=context.dtype, device=device)
    ctx = context.to(device)
    m = rows.shape[0]
    attr = torch.empty((m, *context.shape[1:]), dtype=context.dtype)
    fx = torch.empty(m, dtype=context.dtype)
    fb = torch.empty(m, dtype=context.dtype)
    for k in range(m):
        bk = (b[0] if b.shape[0] == 1 else b[k]).to(device)
        tk = None if target is None else target[k : k + 1].to(device)
        a_k, fx_k, fb_k = _pass_coupled(model, ctx, int(rows[k]), bk, tk, alphas, weights, i0, i1, autocast)
        attr[k], fx[k], fb[k] = a_k.cpu(), fx_k.cpu(), fb_k.cpu()
        if progress is not None:
            progress(progress_offset + k + 1, progress_total)
    return attr, fx, fb
