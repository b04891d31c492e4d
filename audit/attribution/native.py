"""Our Integrated Gradients engine: every path point of a chunk of rows in ONE forward and ONE backward.

Integrated Gradients (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017):

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF/dx_i (x' + a (x - x')) da

approximated by a quadrature rule ``sum_s w_s * grad(x' + a_s (x - x'))``. Completeness says
``sum_i IG_i(x) = F(x) - F(x')``; the gap is each row's convergence diagnostic.

Why one backward is enough: in eval mode the rows of a batch do not interact, so the gradient of
``sum_r F(p_r)`` with respect to the stacked path points ``p`` holds each point's own gradient. Captum instead
asks autograd for ``grad(unbind(outputs))``, which slows sharply as the batch grows. The engine checks the
assumption on a small probe and, if the model couples rows (BatchNorm in train mode, attention across the
batch), falls back to one point per forward pass and says so.

F(x) and F(x') come from the same passes: the end points a=0 and a=1 are added to the batch with weight 0 when
the rule does not already contain them.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from audit.attribution.quadrature import METHODS, min_steps, rule
from audit.errors import AttributionError

__all__ = ["IGResult", "integrated_gradients", "select_output", "rows_are_independent", "AUTO_SCHEDULE"]

# On the CPU a chunk whose working set stays near the caches is ~2x faster than one huge batch (measured on
# the 96-256-128-1 MLP: 128 rows x 52 points ~7,900 rows/s, 2,048 rows x 52 points ~3,200 rows/s), so the
# CPU budget is capped here; memory_budget_mb still caps it lower. CUDA uses the budget and free memory.
CPU_WORKING_SET_MB = 64

# n_steps="auto": the step counts tried, in order, for rows still above tolerance
AUTO_SCHEDULE = (16, 32, 64, 128, 256, 512)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class IGResult:
    """What :func:`integrated_gradients` returns; every tensor is on the CPU.

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


# --- public helpers --------------------------------------------------------------------------------------


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


def rows_are_independent(model: torch.nn.Module, x: torch.Tensor, *, rtol: float = 1e-4) -> bool:
    """Probe whether a row's output depends on the other rows of its batch.

    Runs the first row alone, with its neighbours, and with altered neighbours; all three outputs for that row
    must agree. ``x`` has shape (n_rows, *feature_shape); at least one row.
    """
    with torch.no_grad():
        x0 = x[:1]
        others = x[1:4] if x.shape[0] > 1 else x0.expand(3, *x0.shape[1:])
        gen = torch.Generator(device="cpu").manual_seed(1234)
        noise = torch.randn(others.shape, generator=gen, dtype=torch.float32).to(others.device, others.dtype)
        scale = x.detach().abs().amax().clamp(min=1.0)
        altered = others * 3.0 + noise * scale
        try:
            alone = model(x0)
            with_neighbours = model(torch.cat([x0, others]))
            with_altered = model(torch.cat([x0, altered]))
        except RuntimeError:
            return False  # e.g. BatchNorm in train mode refuses a single row
        a = alone.reshape(alone.shape[0], -1)[0].double()
        b = with_neighbours.reshape(with_neighbours.shape[0], -1)[0].double()
        c = with_altered.reshape(with_altered.shape[0], -1)[0].double()
        tol = rtol * (1.0 + a.abs().max().item())
        return bool((a - b).abs().max().item() <= tol and (a - c).abs().max().item() <= tol)


# --- argument checking -----------------------------------------------------------------------------------


def _check_steps(method: str, n_steps: int | str, max_steps: int) -> None:
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


def _as_baseline(baselines: object, x: torch.Tensor, references: bool) -> torch.Tensor:
    """Baselines as a tensor of shape (n_rows, *fs) or, with ``references``, (n_refs, *fs)."""
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


def _as_target(target: object, n_rows: int, device: torch.device) -> torch.Tensor | None:
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


def _check_target_range(target: torch.Tensor | None, n_outputs: int) -> None:
    if target is None:
        return
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= n_outputs:
        bad = lo if lo < 0 else hi
        raise AttributionError(
            f"target index {bad} is out of range for a model with {n_outputs} outputs; use 0..{n_outputs - 1}"
        )


# --- memory budget -----------------------------------------------------------------------------------------


def _activation_elems_per_point(model: torch.nn.Module, x1: torch.Tensor) -> int:
    """Elements held per path point: the outputs of every leaf module on a one-row probe (forward hooks).
    TorchScript modules take no hooks; they get a conservative guess of 64x the input."""
    counted = 0

    def hook(_m: torch.nn.Module, _i: object, out: object) -> None:
        nonlocal counted
        if isinstance(out, torch.Tensor):
            counted += out.numel()

    handles = []
    if not isinstance(model, torch.jit.ScriptModule):
        for m in model.modules():
            if next(iter(m.children()), None) is None:
                with contextlib.suppress(RuntimeError, AttributeError):
                    handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x1)
    finally:
        for h in handles:
            h.remove()
    if counted == 0:
        counted = 64 * x1[0].numel()
    return counted


def _rows_per_chunk(
    model: torch.nn.Module, x1: torch.Tensor, points_per_row: int, memory_budget_mb: float, element_size: int
) -> int:
    act = _activation_elems_per_point(model, x1)
    # points and their gradient (2x input), activations and their gradients (2x), autograd slack (1.5x)
    bytes_per_point = element_size * (2 * x1[0].numel() + 3 * act)
    points = max(1, int(memory_budget_mb * 2**20 // bytes_per_point))
    return max(1, points // points_per_row)


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    msg = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


# --- the core pass -----------------------------------------------------------------------------------------


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


def _pass_batched(
    model: torch.nn.Module,
    x: torch.Tensor,
    b: torch.Tensor,
    target: torch.Tensor | None,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    i0: int,
    i1: int,
    autocast: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """One forward and one backward over all path points of a chunk.

    x, b : (n, *fs); alphas, weights : (S,). Returns attributions (n, *fs), F(x) (n,), F(x') (n,), n_outputs.
    """
    n, fs = x.shape[0], tuple(x.shape[1:])
    S = alphas.shape[0]
    diff = x - b  # (n, *fs)
    a = alphas.view(S, 1, *([1] * len(fs)))
    points = (b.unsqueeze(0) + a * diff.unsqueeze(0)).reshape(S * n, *fs)  # (S * n, *fs)
    points.requires_grad_(True)
    tgt = None if target is None else target.repeat(S)  # (S * n,)
    ctx = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with torch.enable_grad(), ctx:
        out = model(points)
    n_outputs = 1 if out.dim() == 1 else int(out.shape[-1])
    _check_target_range(tgt, n_outputs)
    sel = select_output(out, tgt).float() if autocast else select_output(out, tgt)  # (S * n,)
    (grads,) = torch.autograd.grad(sel.sum(), points)  # grads: (S * n, *fs)
    grads = grads.reshape(S, n * int(np.prod(fs, dtype=np.int64)))  # (S, n * F)
    avg = (weights.to(grads.dtype) @ grads).reshape(n, *fs)  # (n, *fs)
    attr = diff * avg.to(diff.dtype)
    f = sel.detach().reshape(S, n)
    return attr.detach(), f[i1].to(x.dtype), f[i0].to(x.dtype), n_outputs


def _pass_single(
    model: torch.nn.Module,
    x: torch.Tensor,
    b: torch.Tensor,
    target: torch.Tensor | None,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    i0: int,
    i1: int,
    autocast: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Slow, always-correct path for models that couple rows: each path point is its own batch of one."""
    n = x.shape[0]
    attr = torch.zeros_like(x)
    fx = torch.zeros(n, dtype=x.dtype, device=x.device)
    fb = torch.zeros(n, dtype=x.dtype, device=x.device)
    n_outputs = 1
    ctx = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    for r in range(n):
        diff = x[r] - b[r]
        total = torch.zeros_like(x[r])
        for s in range(alphas.shape[0]):
            p = (b[r] + alphas[s] * diff).unsqueeze(0).requires_grad_(True)  # (1, *fs)
            with torch.enable_grad(), ctx:
                out = model(p)
            n_outputs = 1 if out.dim() == 1 else int(out.shape[-1])
            tgt = None if target is None else target[r : r + 1]
            _check_target_range(tgt, n_outputs)
            sel = select_output(out, tgt).float()
            (g,) = torch.autograd.grad(sel.sum(), p)
            total += weights[s].to(g.dtype) * g[0].to(total.dtype)
            if s == i0:
                fb[r] = sel.detach()[0]
            if s == i1:
                fx[r] = sel.detach()[0]
        attr[r] = diff * total
    return attr, fx, fb, n_outputs


def _rel(delta: torch.Tensor, fx: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    span = (fx - fb).abs()
    floor = 1e-6 * (1.0 + torch.maximum(fx.abs(), fb.abs()))
    return delta.abs() / torch.maximum(span, floor)


def _run_fixed(
    model: torch.nn.Module,
    x: torch.Tensor,
    b: torch.Tensor,
    target: torch.Tensor | None,
    method: str,
    n_steps: int,
    *,
    device: torch.device,
    chunk_rows: int,
    independent: bool,
    autocast: bool,
    progress: ProgressFn | None,
    progress_offset: int,
    progress_total: int,
    notes: list[str],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """IG at a fixed step count over all rows, chunk by chunk; shrinks the chunk and goes on when memory runs
    out. x, b: (n, *fs) on the CPU. Returns attributions, F(x), F(x') on the CPU and the chunk size used."""
    al, wt, i0, i1 = _with_end_points(*rule(method, n_steps))
    alphas = torch.as_tensor(al, dtype=x.dtype, device=device)
    weights = torch.as_tensor(wt, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32, device=device)
    n = x.shape[0]
    attr = torch.empty_like(x)
    fx = torch.empty(n, dtype=x.dtype)
    fb = torch.empty(n, dtype=x.dtype)
    start = 0
    one_pass = _pass_batched if independent else _pass_single
    while start < n:
        stop = min(n, start + chunk_rows)
        xc = x[start:stop].to(device, non_blocking=True)
        bc = (b if b.shape[0] == 1 else b[start:stop]).to(device, non_blocking=True).expand_as(xc)
        tc = None if target is None else target[start:stop].to(device)
        try:
            a_c, fx_c, fb_c, _ = one_pass(model, xc, bc, tc, alphas, weights, i0, i1, autocast)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
            if not _is_oom(err) or chunk_rows == 1:
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            chunk_rows = max(1, chunk_rows // 2)
            notes.append(f"memory ran out at {stop - start} rows x {len(al)} points; chunk shrunk to {chunk_rows}")
            continue
        attr[start:stop] = a_c.cpu()
        fx[start:stop] = fx_c.cpu()
        fb[start:stop] = fb_c.cpu()
        start = stop
        if progress is not None:
            progress(progress_offset + start, progress_total)
    return attr, fx, fb, chunk_rows


def integrated_gradients(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    baselines: object = "zero",
    references: bool = False,
    target: object = None,
    method: str = "gausslegendre",
    n_steps: int | str = 50,
    tolerance: float = 0.01,
    max_steps: int = 256,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    bf16: bool = False,
    memory_budget_mb: float = 1024,
    chunk_rows: int | None = None,
    check_independence: bool = True,
    progress: ProgressFn | None = None,
) -> IGResult:
    """Integrated Gradients for a batch of rows.

    Parameters
    ----------
    model : torch.nn.Module or torch.jit.ScriptModule
        Maps (m, *feature_shape) to (m,), (m, 1) or (m, k). Put it in eval mode first.
    x : Tensor of shape (n_rows, *feature_shape)
    baselines : "zero", float, or Tensor
        ``"zero"`` (default) or a number: that constant everywhere; a tensor of shape ``feature_shape`` or
        ``(1, *feature_shape)``: one row for all (e.g. the data mean); ``(n_rows, *feature_shape)``: one per row.
    references : bool, default False
        Treat ``baselines`` of shape ``(n_refs, *feature_shape)`` as reference rows and average IG over them
        (expected-gradients style). Completeness then holds against the mean reference output.
    target : None, int, or LongTensor of shape (n_rows,)
        Output index to explain per row; ``None`` for single-output models.
    method : str, default "gausslegendre"
        One of :data:`audit.attribution.quadrature.METHODS`.
    n_steps : int or "auto", default 50
        Quadrature steps. ``"auto"`` starts at 16 and doubles only for rows whose relative completeness error
        is above ``tolerance``, up to ``max_steps``.
    device : "cpu", "cuda" or torch.device
    dtype : torch.float32 or torch.float64, optional
        Compute precision; float64 is the reference mode (the model is copied and converted).
    bf16 : bool, default False
        bf16 autocast on CUDA for the forward pass; gradients and sums stay float32.
    memory_budget_mb : float, default 1024
        Sets how many rows share one forward/backward; results do not depend on it.
    chunk_rows : int, optional
        Overrides the budget with a fixed number of rows per chunk.
    check_independence : bool, default True
        Probe whether rows interact within a batch; if they do, use the slow per-point path.
    progress : callable(done_rows, total_rows), optional

    Returns
    -------
    IGResult
    """
    _check_steps(method, n_steps, max_steps)
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
    if not (0 < tolerance < 1e3):
        raise AttributionError(f"tolerance must be a positive number, got {tolerance}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AttributionError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    if bf16 and dev.type != "cuda":
        raise AttributionError("bf16 autocast needs a CUDA device; drop --bf16 or use --device cuda")
    if memory_budget_mb <= 0:
        raise AttributionError(f"memory_budget_mb must be positive, got {memory_budget_mb}")
    if chunk_rows is not None and chunk_rows < 1:
        raise AttributionError(f"chunk_rows must be at least 1, got {chunk_rows}")

    work_dtype = dtype or (torch.float64 if x.dtype == torch.float64 else torch.float32)
    if work_dtype not in (torch.float32, torch.float64):
        raise AttributionError(f"dtype must be float32 or float64, got {work_dtype}")
    model_param = next(iter(model.parameters()), None)
    model_dtype = model_param.dtype if model_param is not None else torch.float32
    if work_dtype != model_dtype:
        with warnings.catch_warnings():  # ScriptModule copies warn about .grad of non-leaf parameters
            warnings.simplefilter("ignore")
            model = copy.deepcopy(model).to(work_dtype)
    model_device = model_param.device if model_param is not None else dev
    if model_device != dev:
        model = model.to(dev)
    x = x.detach().to("cpu", work_dtype)
    n = x.shape[0]
    refs = _as_baseline(baselines, x, references).to(work_dtype)
    tgt = _as_target(target, n, torch.device("cpu"))
    notes: list[str] = []

    independent = True
    if check_independence:
        independent = rows_are_independent(model, x[: min(n, 4)].to(dev))
        if not independent:
            notes.append(
                "the model's output for a row depends on the other rows of its batch (BatchNorm in train mode or "
                "cross-row attention?); every path point was run as its own batch, which is correct but slow"
            )

    steps_list = list(AUTO_SCHEDULE) if n_steps == "auto" else [int(n_steps)]
    steps_list = [s for s in steps_list if s <= max_steps] if n_steps == "auto" else steps_list
    points_per_row = steps_list[0] + 2
    elem = 8 if work_dtype == torch.float64 else 4
    if chunk_rows is None:
        budget = min(memory_budget_mb, CPU_WORKING_SET_MB)
        if dev.type == "cuda":
            free, _total = torch.cuda.mem_get_info(dev)
            budget = min(memory_budget_mb, 0.6 * free / 2**20)
        chunk = _rows_per_chunk(model, x[:1].to(dev), points_per_row, budget, elem)
    else:
        chunk = int(chunk_rows)
    chunk = min(chunk, n)

    ref_rows = refs if references else [refs]
    total_work = n * len(ref_rows)
    attr_sum = torch.zeros_like(x)
    fx = torch.zeros(n, dtype=work_dtype)
    fb_sum = torch.zeros(n, dtype=work_dtype)
    steps_used = torch.full((n,), steps_list[0], dtype=torch.long)
    for k, ref in enumerate(ref_rows):
        b = ref.unsqueeze(0) if references else ref
        a, fx_k, fb_k, chunk = _run_fixed(
            model, x, b, tgt, method, steps_list[0], device=dev, chunk_rows=chunk, independent=independent,
            autocast=bf16, progress=progress, progress_offset=k * n, progress_total=total_work, notes=notes,
        )
        if n_steps == "auto":
            rel_k = _rel(a.sum(dim=tuple(range(1, a.dim()))) - (fx_k - fb_k), fx_k, fb_k)
            for s in steps_list[1:]:
                todo = torch.nonzero(rel_k > tolerance).flatten()
                if todo.numel() == 0:
                    break
                b_todo = b if b.shape[0] == 1 else b[todo]
                t_todo = None if tgt is None else tgt[todo]
                a2, fx2, fb2, _ = _run_fixed(
                    model, x[todo], b_todo, t_todo, method, s, device=dev,
                    chunk_rows=max(1, chunk * points_per_row // (s + 2)), independent=independent, autocast=bf16,
                    progress=None, progress_offset=0, progress_total=0, notes=notes,
                )
                a[todo] = a2
                fx_k[todo] = fx2
                fb_k[todo] = fb2
                steps_used[todo] = torch.maximum(steps_used[todo], torch.tensor(s))
                rel_k[todo] = _rel(a2.sum(dim=tuple(range(1, a2.dim()))) - (fx2 - fb2), fx2, fb2)
        attr_sum += a
        fx = fx_k
        fb_sum += fb_k
    attributions = attr_sum / len(ref_rows)
    fb = fb_sum / len(ref_rows)
    delta = attributions.sum(dim=tuple(range(1, attributions.dim()))) - (fx - fb)
    return IGResult(
        attributions=attributions,
        f_x=fx,
        f_baseline=fb,
        delta=delta,
        rel_delta=_rel(delta, fx, fb),
        steps=steps_used,
        method=method,
        n_steps=n_steps,
        batch_independent=independent,
        chunk_rows=chunk,
        notes=tuple(dict.fromkeys(notes)),
    )
