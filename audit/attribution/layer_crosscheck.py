"""Cross-check of layer mode (:func:`audit.attribution.layer.layer_integrated_gradients`) against Captum's
``LayerIntegratedGradients`` on a sample of rows.

Both explain the same rows, baselines, targets, method and steps (per row the step count our engine used with
``n_steps="auto"``), with the additional arguments (the attention mask) passed to every forward. Captum's layer
attributions of shape (rows, seq_len, ...) are summed over the embedding dimensions, as ours are. The numbers
mean what they mean in :func:`audit.attribution.crosscheck.crosscheck`: per row the largest absolute difference
divided by the row's largest |attribution|, a row agrees when ``max|native - captum| <= tol_abs + tol_rel *
max|native|``, the Spearman correlation of the two rankings of positions (mean |attribution| over the compared
rows), and a Captum-side explanation when Captum's quadrature weights are a scaled copy of ours.

Baselines: Captum takes baselines in the input space and computes the layer's output at them with a forward;
``baseline_ids`` are passed as they are. The zero embedding (``baseline_ids=None``) has no ids, so Captum gets
ids of -1 and a forward that, for a batch of such ids, runs the model on ids 0 with the layer's output set to
zeros (a hook that runs before Captum's own, removed after the forward).

This module imports Captum (as :mod:`audit.attribution.captum_ig` does for inputs).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients

from audit.attribution.arguments import as_target, check_target_range
from audit.attribution.base import IGResult, model_dtype_device, select_output
from audit.attribution.captum_ig import POINTS_PER_FORWARD, captum_version
from audit.attribution.crosscheck import (
    check_crosscheck_arguments,
    compare_attributions,
    sample_rows,
    skipped_crosscheck,
)
from audit.attribution.layer import layer_name, logits_of, per_row_args
from audit.attribution.memory import bytes_per_point
from audit.attribution.quadrature import captum_rule
from audit.errors import AttributionError
from audit.results import Crosscheck

__all__ = ["layer_crosscheck", "captum_layer_attribute", "best_layer_batch_size"]


class _Forward(torch.nn.Module):
    """What Captum runs: ``model(ids, *args)`` as 2-D logits; with ``zero_baseline`` a batch of ids that are all
    negative is the zero embedding (the model runs on ids 0 with the layer's output zeroed)."""

    def __init__(self, model: torch.nn.Module, layer: torch.nn.Module | None, zero_baseline: bool) -> None:
        super().__init__()
        self.model = model
        self.layer = layer
        self.zero_baseline = zero_baseline

    def forward(self, ids: torch.Tensor, *args: object) -> torch.Tensor:
        handle = None
        if self.zero_baseline and self.layer is not None and bool((ids < 0).all()):
            handle = self.layer.register_forward_hook(lambda _m, _i, out: torch.zeros_like(out), prepend=True)
            ids = torch.zeros_like(ids)
        try:
            out = logits_of(self.model(ids, *args))
        finally:
            if handle is not None:
                handle.remove()
        return out.unsqueeze(1) if out.dim() == 1 else out


class _Bound(torch.nn.Module):
    """``forward(ids, *args)`` with ``args`` fixed: a one-input module for the memory estimate."""

    def __init__(self, forward: torch.nn.Module, args: list) -> None:
        super().__init__()
        self.inner = forward
        self.args = args

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.inner(ids, *self.args)


def _on(args: tuple, rows: object, device: torch.device) -> list:
    return [a[rows].to(device) if isinstance(a, torch.Tensor) else a for a in args]


def best_layer_batch_size(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    *,
    additional_forward_args: object = (),
    n_steps: int,
    memory_budget_mb: float = 256,
) -> int:
    """Path points per Captum forward: :data:`audit.attribution.captum_ig.POINTS_PER_FORWARD`, fewer when a
    point's activations would exceed the budget, never more than ``n_rows * n_steps``.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(input_ids, *additional_forward_args)``.
    input_ids : LongTensor of shape (n_rows, seq_len)
    additional_forward_args : tuple, default ()
    n_steps : int
    memory_budget_mb : float, default 256

    Returns
    -------
    int, at least 1
    """
    dtype, device = model_dtype_device(model)
    n = input_ids.shape[0]
    args = per_row_args(additional_forward_args, n)
    probe = _Bound(_Forward(model, None, False), _on(args, slice(0, 2), device))
    per_point = bytes_per_point(probe, input_ids[:2].to(device), torch.finfo(dtype).bits // 8)
    by_memory = max(1, int(memory_budget_mb * 2**20 // per_point))
    return max(1, min(POINTS_PER_FORWARD, by_memory, n * n_steps))


def captum_layer_attribute(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    *,
    layer: torch.nn.Module,
    baseline_ids: torch.Tensor | None = None,
    additional_forward_args: object = (),
    target: object = None,
    method: str = "gausslegendre",
    n_steps: int = 50,
    internal_batch_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``captum.attr.LayerIntegratedGradients(forward, layer).attribute(...)`` with our conventions.

    Parameters
    ----------
    model, input_ids, layer, baseline_ids, additional_forward_args, target
        As :func:`audit.attribution.layer.layer_integrated_gradients` takes them (``baseline_ids=None``: the
        zero embedding). The model runs in its own dtype and on its own device.
    method : str, default "gausslegendre"
        Captum's own rule (:func:`audit.attribution.quadrature.captum_rule`).
    n_steps : int, default 50
    internal_batch_size : int, optional
        Path points per forward; None is Captum's default (all points of all rows at once). Below ``n_rows``
        the rows are handed to Captum in groups of that many rows, one step per forward.

    Returns
    -------
    attributions : Tensor of shape (n_rows, seq_len), on the CPU
        Captum's layer attributions summed over the dimensions after the sequence.
    delta : Tensor of shape (n_rows,), on the CPU
        Captum's completeness error ``sum(attributions) - (F(x) - F(x'))``.
    """
    captum_rule(method, n_steps)  # unknown method, Captum's minimum steps: one clear error
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.dtype.is_floating_point:
        raise AttributionError("input_ids must be an integer torch.Tensor of shape (rows, seq_len)")
    if internal_batch_size is not None and (isinstance(internal_batch_size, bool) or internal_batch_size < 1):
        raise AttributionError(f"internal_batch_size must be a positive whole number, got {internal_batch_size!r}")
    layer_name(model, layer)
    n, L = input_ids.shape
    dtype, device = model_dtype_device(model)
    args = per_row_args(additional_forward_args, n)
    ids = input_ids.detach().to(device, torch.long)
    if baseline_ids is None:
        bids = torch.full_like(ids, -1)
    else:
        bids = torch.as_tensor(baseline_ids).to(device, torch.long)
        bids = (bids.unsqueeze(0) if bids.dim() == 1 else bids).expand(n, L)
    tgt = as_target(target, n, device)
    forward = _Forward(model, layer, baseline_ids is None)
    with torch.no_grad():
        probe = forward(ids[:2], *_on(args, slice(0, 2), device))  # (1 or 2, k)
    check_target_range(tgt, int(probe.shape[-1]))
    select_output(probe, None if tgt is None else tgt[: probe.shape[0]])  # k > 1 outputs and no target: fails
    lig = LayerIntegratedGradients(forward, layer)

    group = n if internal_batch_size is None or internal_batch_size >= n else int(internal_batch_size)
    attrs, deltas = [], []
    for start in range(0, n, group):
        rows = slice(start, min(n, start + group))
        ibs = None if internal_batch_size is None else max(int(internal_batch_size), rows.stop - start)
        with warnings.catch_warnings():  # Captum warns when asked for fewer points than rows; we never do
            warnings.simplefilter("ignore", UserWarning)
            a, d = lig.attribute(
                ids[rows],
                baselines=bids[rows].contiguous(),
                additional_forward_args=tuple(_on(args, rows, device)),
                target=tgt[rows] if tgt is not None else 0,
                method=method,
                n_steps=int(n_steps),
                internal_batch_size=ibs,
                return_convergence_delta=True,
            )
        a = a.detach()  # (g, L, ...)
        attrs.append((a.sum(dim=tuple(range(2, a.dim()))) if a.dim() > 2 else a).cpu())
        deltas.append(d.detach().reshape(-1).cpu())
    return torch.cat(attrs), torch.cat(deltas)


def layer_crosscheck(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    *,
    layer: torch.nn.Module,
    native: IGResult,
    baseline_ids: torch.Tensor | None = None,
    additional_forward_args: object = (),
    target: object = None,
    method: str | None = None,
    n_steps: int | str | None = None,
    tol_abs: float = 1e-4,
    tol_rel: float = 1e-3,
    internal_batch_size: int | None = None,
    feature_names: Sequence[str] | None = None,
    rows: int | str = "all",
    seed: int = 0,
) -> Crosscheck:
    """Compare ``native`` (layer mode on all rows of ``input_ids``) with Captum's ``LayerIntegratedGradients`` on
    a sample of those rows.

    Parameters
    ----------
    model, input_ids, layer, baseline_ids, additional_forward_args, target
        Exactly as passed to :func:`audit.attribution.layer.layer_integrated_gradients`. Captum runs the model in
        the precision of ``native.attributions`` (a converted copy when that differs).
    native : IGResult
        Its result: attributions of shape (n_rows, seq_len).
    method, n_steps : optional
        Default to ``native``'s; if given they must match. With ``n_steps="auto"`` each row is compared at the
        step count it used (``native.steps``).
    tol_abs, tol_rel : float, default 1e-4 and 1e-3
        A row agrees when ``max|native - captum| <= tol_abs + tol_rel * max|native|``.
    internal_batch_size : int, optional
        Path points per Captum forward; by default :func:`best_layer_batch_size`.
    feature_names : sequence of str, optional
        One name per position (the tokens of a row, say), used to say where the largest difference is.
    rows : int or "all", default "all"
        How many rows to compare (a seeded sample, :func:`audit.attribution.crosscheck.sample_rows`).
    seed : int, default 0

    Returns
    -------
    Crosscheck
        As :func:`audit.attribution.crosscheck.crosscheck` returns it; skipped (``rows == 0``, the reason in
        ``skipped_reason``) for a model that couples rows or a Riemann rule with 1 step.
    """
    method, n_steps = check_crosscheck_arguments(native, input_ids, method, n_steps, tol_abs, tol_rel,
                                                 engine="layer_integrated_gradients", what="input_ids")
    n, L = input_ids.shape
    if feature_names is not None and len(feature_names) != L:
        raise AttributionError(f"{len(feature_names)} names for {L} positions; pass one per position")
    idx = sample_rows(n, rows, seed)
    k = idx.shape[0]
    skipped = skipped_crosscheck(native, method, tol_abs, tol_rel)
    if skipped is not None:
        return skipped

    name = layer_name(model, layer)
    dtype = native.attributions.dtype
    if model_dtype_device(model)[0] != dtype:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = copy.deepcopy(model).to(dtype)  # Captum in the precision our engine used
        layer = model.get_submodule(name)
    args = per_row_args(additional_forward_args, n)
    sel = torch.as_tensor(idx)
    ids = input_ids.detach()[sel]  # (k, L)
    sub_args = tuple(a[sel] if isinstance(a, torch.Tensor) else a for a in args)
    bids = None
    if baseline_ids is not None:
        b = torch.as_tensor(baseline_ids)
        b = (b.unsqueeze(0) if b.dim() == 1 else b).expand(n, L)
        bids = b[sel]
    tgt = as_target(target, n, torch.device("cpu"))
    tgt = None if tgt is None else tgt[sel]
    steps = native.steps[sel].numpy()
    ibs = internal_batch_size or best_layer_batch_size(
        model, ids, additional_forward_args=sub_args, n_steps=int(steps.max())
    )

    cap = np.zeros((k, L))
    cap_delta = np.zeros(k)
    for s in np.unique(steps):
        pos = np.nonzero(steps == s)[0]
        p = torch.as_tensor(pos)
        a, d = captum_layer_attribute(
            model, ids[p], layer=layer, baseline_ids=None if bids is None else bids[p],
            additional_forward_args=tuple(x[p] if isinstance(x, torch.Tensor) else x for x in sub_args),
            target=None if tgt is None else tgt[p], method=method, n_steps=int(s), internal_batch_size=ibs,
        )  # fmt: skip
        cap[pos] = a.double().numpy()
        cap_delta[pos] = d.double().numpy()

    nat = native.attributions[sel].double().numpy()  # (k, L)
    steps_txt = f"{int(steps[0])} steps" if native.n_steps != "auto" else "the steps each row used (n_steps='auto')"
    base_txt = "the zero embedding" if baseline_ids is None else "the embedding of the baseline ids"

    def describe(agree: int, worst: int, where: int, worst_rel: float, rho: float, nat_rd: float,
                 cap_rd: float) -> str:
        where_txt = f"'{feature_names[where]}'" if feature_names is not None else f"position {where}"
        return (
            f"Captum {captum_version()} LayerIntegratedGradients and our layer mode explained the same {k} of {n} "
            f"rows ({method}, {steps_txt}, baseline {base_txt}), attributions summed over the embedding. Differences "
            f"are per row, divided by the row's largest |attribution|; a row agrees when max|diff| <= {tol_abs:g} + "
            f"{tol_rel:g} * max|attribution|. {agree} of {k} rows agree; the largest relative difference is "
            f"{worst_rel:.3g} (row {int(idx[worst])}, {where_txt}). Spearman of the two rankings of positions: "
            f"{rho:.4f}. Median relative completeness error: ours {nat_rd:.3g}, Captum {cap_rd:.3g}."
        )

    return compare_attributions(
        nat, cap, cap_delta, native_rel_delta=native.rel_delta[sel].double().numpy(),
        fx=native.f_x[sel].double().numpy(), fb=native.f_baseline[sel].double().numpy(), method=method,
        steps=steps, fixed_steps=native.n_steps != "auto", tol_abs=tol_abs, tol_rel=tol_rel, describe=describe,
    )
