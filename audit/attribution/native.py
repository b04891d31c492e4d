"""Our Integrated Gradients engine: the path points of a chunk of rows in one forward and one backward per pass.

Integrated Gradients (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017):

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF/dx_i (x' + a (x - x')) da

approximated by a quadrature rule ``sum_s w_s * grad(x' + a_s (x - x'))``. Completeness says
``sum_i IG_i(x) = F(x) - F(x')``; the gap is each row's convergence diagnostic.

Why one backward is enough: in eval mode the rows of a batch do not interact, so the gradient of
``sum_r F(p_r)`` with respect to the stacked path points ``p`` holds each point's own gradient. Captum instead
asks autograd for ``grad(unbind(outputs))``, which slows sharply as the batch grows. The engine checks the
assumption on a small probe and, if the model couples rows (BatchNorm in train mode, attention across the
batch), falls back to a slower exact path and says so: row r's output is then the function the model computes
on the whole input batch with row r replaced by a path point, one forward and one backward per point.

The caller's model is never modified: dtype and device changes work on a copy, and buffers that a forward pass
in train mode updates (BatchNorm running statistics) are restored afterwards.

This module is the public API (:func:`integrated_gradients` and the ``n_steps="auto"`` loop); the engine is cut
by concern, each module importing only the public names of those below it:

- :mod:`audit.attribution.base` -- :class:`IGResult`, :func:`select_output`, :func:`resolve_device`, and the
  helpers the whole project shares (:func:`~audit.attribution.base.is_oom`,
  :func:`~audit.attribution.base.batched_forward`, :func:`~audit.attribution.base.model_dtype_device`);
- :mod:`audit.attribution.arguments` -- steps, method, inputs, options, baselines and targets checked;
- :mod:`audit.attribution.probes` -- the model run on a probe: deterministic, rows independent, buffers restored;
- :mod:`audit.attribution.memory` -- memory per path point;
- :mod:`audit.attribution.planning` -- the cut of the points into passes (memory budget, timing on the CPU,
  channels-last images);
- :mod:`audit.attribution.passes` -- the kernels and the runs at one step count.
"""

from __future__ import annotations

import copy
import math
import warnings

import torch

from audit.attribution.arguments import (
    AUTO_SCHEDULE,
    as_baseline,
    as_inputs,
    as_target,
    auto_schedule,
    check_options,
    check_steps,
    compute_dtype,
)
from audit.attribution.base import IGResult, ProgressFn, model_dtype_device, resolve_device, select_output
from audit.attribution.passes import points_per_row, run_coupled, run_fixed
from audit.attribution.planning import CPU_WORKING_SET_MB, plan_passes
from audit.attribution.probes import buffers_restored, probe_independence, probe_outputs, rows_are_independent
from audit.errors import AttributionError

__all__ = [
    "IGResult",
    "integrated_gradients",
    "select_output",
    "rows_are_independent",
    "resolve_device",
    "AUTO_SCHEDULE",
    "CPU_WORKING_SET_MB",
    "COUPLED_MAX_ROW_EVALS",
]

# The exact path for models that couple rows pushes n_rows whole batches of n_rows per path point; above this many
# rows in total (minutes for a small MLP) the engine refuses and says what to do instead.
COUPLED_MAX_ROW_EVALS = 20_000_000


def _rel(delta: torch.Tensor, fx: torch.Tensor, fb: torch.Tensor, delta_floor: float = 0.0) -> torch.Tensor:
    """|delta| / max(|F(x) - F(x')|, delta_floor, 1e-6 (1 + max(|F(x)|, |F(x')|)))."""
    span = (fx - fb).abs()
    floor = (1e-6 * (1.0 + torch.maximum(fx.abs(), fb.abs()))).clamp(min=float(delta_floor))
    return delta.abs() / torch.maximum(span, floor)


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
    points_per_pass: int | None = None,
    check_independence: bool = True,
    delta_floor: float = 0.0,
    progress: ProgressFn | None = None,
) -> IGResult:
    """Integrated Gradients for a batch of rows.

    Parameters
    ----------
    model : torch.nn.Module or torch.jit.ScriptModule
        Maps (m, *feature_shape) to (m,), (m, 1) or (m, k). Put it in eval mode first. It is not modified.
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
        is above ``tolerance``, up to ``max_steps`` (the last try uses ``max_steps`` itself).
    tolerance : float, default 0.01
        Relative completeness error a row must reach with ``n_steps="auto"``.
    max_steps : int, default 256
        Cap for ``n_steps="auto"``; at least 16.
    device : "cpu", "cuda" or torch.device
    dtype : torch.float32 or torch.float64, optional
        Compute precision; float64 is the reference mode (the model is copied and converted).
    bf16 : bool, default False
        bf16 autocast on CUDA for the forward pass; gradients and sums stay float32.
    memory_budget_mb : float, default 1024
        Caps the path points in one forward/backward: as many whole rows as fit, or, when one row's points do
        not fit, one row in several passes. On the CPU the engine starts at :data:`CPU_WORKING_SET_MB` and
        times its first passes to find the fastest size within the budget (kept for later calls on the same
        model and input shape); on CUDA the budget is also capped by 60% of free memory. When memory runs out
        anyway, the rows per chunk halve, then the points per pass, down to one point of one row. Results do
        not depend on the cut, up to float rounding.
    chunk_rows : int, optional
        Overrides the budget with a fixed number of rows per chunk (all their points in one pass unless
        ``points_per_pass`` says otherwise); no timing.
    points_per_pass : int, optional
        Fixes how many path points of each row go through one forward/backward (at most; a row's points are cut
        into equal passes); no timing.
    check_independence : bool, default True
        Probe whether rows interact within a batch; if they do, use the slow exact per-point path.
    delta_floor : float, default 0.0
        Floor of the denominator of the relative completeness error, ``|delta| / max(|F(x) - F(x')|,
        delta_floor)``: rows whose output barely moves are judged on their absolute error against this typical
        change (the pipeline passes a fraction of the data set's median ``|F(x) - F(x')|``).
    progress : callable(done_rows, total_rows), optional

    Returns
    -------
    IGResult
        Attributions of shape (n_rows, *feature_shape), per-row F(x), F(x'), completeness errors and steps.

    Raises
    ------
    AttributionError
        One line naming the problem and what to do: bad steps, method, baseline shape, target index, dtype,
        device or budget; a model that fails on the inputs, is not deterministic (dropout in train mode), or
        couples rows over more than :data:`COUPLED_MAX_ROW_EVALS` rows of exact-path work.
    """
    check_steps(method, n_steps, max_steps)
    x = as_inputs(x)  # (n, *fs), floating-point
    dev = check_options(
        delta_floor=delta_floor, tolerance=tolerance, device=device, bf16=bf16, memory_budget_mb=memory_budget_mb,
        chunk_rows=chunk_rows, points_per_pass=points_per_pass,
    )  # fmt: skip
    work_dtype = compute_dtype(x.dtype, dtype)
    # a model without parameters has nothing to convert: it is taken as it is
    has_params = next(iter(model.parameters()), None) is not None
    model_dtype, model_device = model_dtype_device(model) if has_params else (torch.float32, dev)
    callers_model = model
    if work_dtype != model_dtype or model_device != dev:
        with warnings.catch_warnings():  # ScriptModule copies warn about .grad of non-leaf parameters
            warnings.simplefilter("ignore")
            model = copy.deepcopy(model).to(dev, work_dtype)  # a copy: the caller's model stays as it was
    x = x.detach().to("cpu", work_dtype)
    n = x.shape[0]
    refs = as_baseline(baselines, x, references).to(work_dtype)  # (1 or n, *fs); (n_refs, *fs) with references
    tgt = as_target(target, n, torch.device("cpu"))
    notes: list[str] = []

    with buffers_restored(model):
        xp = x[: min(n, 4)].to(dev)  # (k, *fs)
        out_p = probe_outputs(model, xp, tgt)
        independent, alone = True, None  # alone: the model's output on x[:1] (1, ...)
        if check_independence:
            independent, alone = probe_independence(model, xp, with_neighbours=out_p)
            if not independent:
                notes.append(
                    "the model's output for a row depends on the other rows of its batch (BatchNorm in train mode "
                    "or cross-row attention?); each row was attributed with the other rows held at their values, "
                    "one forward and backward per path point, which is exact but slow"
                )

        steps_list = auto_schedule(max_steps) if n_steps == "auto" else [int(n_steps)]
        most_points = steps_list[0] + 2  # per row, at most (the end points included)
        evals = n * n * most_points * len(refs if references else [refs])  # rows through the model, exact path
        if not independent and evals > COUPLED_MAX_ROW_EVALS:
            k_max = int(math.sqrt(COUPLED_MAX_ROW_EVALS / (evals / (n * n))))
            raise AttributionError(
                f"the model's output for a row depends on the other rows of its batch (BatchNorm in train mode?) "
                f"and the exact path for {n} rows would push {evals:,} rows through it; call model.eval() if the "
                f"model is used that way, or explain at most {k_max} rows at a time"
            )
        sizes = None  # the exact path for coupled rows takes one point of one row at a time
        if independent:
            sizes = plan_passes(
                callers_model, model, x, dev, work_dtype, memory_budget_mb, chunk_rows, points_per_pass, alone
            )

        def run(
            rows: torch.Tensor | None, b: torch.Tensor, steps: int, k: int, report: bool
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """IG for x[rows] (all rows when None) against baselines b (1 or len(rows), *fs)."""
            t = tgt if tgt is None or rows is None else tgt[rows]
            prog = dict(progress=progress if report else None, progress_offset=k * n, progress_total=n * n_refs)
            if sizes is not None:
                xs = x if rows is None else x[rows]
                return run_fixed(
                    model, xs, b, t, method, steps, device=dev, sizes=sizes, autocast=bf16, notes=notes, **prog
                )
            idx = torch.arange(n) if rows is None else rows
            return run_coupled(model, x, idx, b, t, method, steps, device=dev, autocast=bf16, **prog)

        # Step counts outermost, references inside: every reference of a row uses the same steps.
        ref_rows = list(refs) if references else [refs]
        n_refs = len(ref_rows)
        attributions = torch.zeros_like(x)
        fx = torch.zeros(n, dtype=work_dtype)
        fb = torch.zeros(n, dtype=work_dtype)
        steps_used = torch.full((n,), steps_list[0], dtype=torch.long)
        todo: torch.Tensor | None = None  # rows still to refine; None = all
        for level, s in enumerate(steps_list):
            m = n if todo is None else todo.numel()
            attr_s = torch.zeros((m, *x.shape[1:]), dtype=work_dtype)
            fb_s = torch.zeros(m, dtype=work_dtype)
            abs_delta_s = torch.zeros(m, dtype=work_dtype)  # sum over references of |delta_k|
            abs_span_s = torch.zeros(m, dtype=work_dtype)  # sum over references of |F(x) - F(ref_k)|
            for k, ref in enumerate(ref_rows):
                b = ref.unsqueeze(0) if references else ref  # (1 or n, *fs)
                b = b if todo is None or b.shape[0] == 1 else b[todo]
                a, fx_k, fb_k = run(todo, b, s, k, level == 0)
                attr_s += a
                fb_s += fb_k
                abs_delta_s += (a.sum(dim=tuple(range(1, a.dim()))) - (fx_k - fb_k)).abs()
                abs_span_s += (fx_k - fb_k).abs()
            rows = slice(None) if todo is None else todo
            attributions[rows] = attr_s / n_refs
            fx[rows] = fx_k
            fb[rows] = fb_s / n_refs
            steps_used[rows] = s
            # a row is done when the averaged completeness error is within tolerance and so is the error
            # without cancellation between references (sum |delta_k| / sum |span_k|; the same for one reference)
            avg_delta = attributions[rows].sum(dim=tuple(range(1, x.dim()))) - (fx[rows] - fb[rows])
            no_cancel = _rel(abs_delta_s, abs_span_s, torch.zeros_like(abs_span_s), delta_floor * n_refs)
            worst = torch.maximum(_rel(avg_delta, fx[rows], fb[rows], delta_floor), no_cancel)
            left = torch.nonzero(worst > tolerance).flatten()  # positions within this level's rows
            if left.numel() == 0:
                break
            todo = left if todo is None else todo[left]
    delta = attributions.sum(dim=tuple(range(1, attributions.dim()))) - (fx - fb)
    first_rule = points_per_row(method, steps_list[0])  # points per row at the first step count
    chunk, per_row = sizes.shape(first_rule) if sizes is not None else (1, 1)
    return IGResult(
        attributions=attributions,
        f_x=fx,
        f_baseline=fb,
        delta=delta,
        rel_delta=_rel(delta, fx, fb, delta_floor),
        steps=steps_used,
        method=method,
        n_steps=n_steps,
        batch_independent=independent,
        chunk_rows=min(chunk, n),
        points_per_pass=per_row,
        notes=tuple(dict.fromkeys(notes)),
    )
