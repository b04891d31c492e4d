"""Cross-check of our IG engine against Captum on a sample of rows, with Captum's own known bias understood.

Both engines explain the same rows, baselines, targets, method and steps. Per row the largest absolute difference
is normalised by the row's largest |attribution| (native), so rows with big and small outputs weigh the same; a
row agrees when ``max|native - captum| <= tol_abs + tol_rel * max|native|``. Rank agreement is the Spearman
correlation between the two global rankings (mean |attribution| per feature over the compared rows).

Captum's ``riemann_trapezoid`` weights are the textbook trapezoid weights times ``(n - 1) / n`` (same nodes,
see :func:`audit.attribution.quadrature.captum_rule`), so Captum's attributions are ours scaled by that factor
and its completeness error is off by about ``1 / n``. When the engines disagree and Captum's rule is a scaled
copy of ours, the cross-check predicts Captum's attributions and completeness error from our result; if Captum
matches the prediction, the disagreement is reported in ``captum_bias`` as a Captum-side bias with the numbers,
and ``passed`` stays False (a failed cross-check with ``captum_bias`` set is understood as Captum-side).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from audit.attribution.arguments import as_baseline, as_target
from audit.attribution.base import IGResult
from audit.attribution.captum_ig import best_internal_batch_size, captum_attribute, captum_version
from audit.attribution.probes import buffers_restored
from audit.attribution.quadrature import captum_rule, rule
from audit.errors import AttributionError
from audit.results import Crosscheck

__all__ = [
    "crosscheck", "compare_attributions", "skipped_crosscheck", "check_crosscheck_arguments", "sample_rows", "spearman",
]


def sample_rows(n_rows: int, k: int | str, seed: int) -> np.ndarray:
    """Row indices to cross-check: ``k`` distinct rows drawn with ``seed`` (sorted), or all rows.

    Parameters
    ----------
    n_rows : int
    k : int or "all"
        Number of rows; ``"all"`` or ``k >= n_rows`` gives every row.
    seed : int

    Returns
    -------
    ndarray of shape (min(k, n_rows),), int64, sorted
    """
    if isinstance(k, str):
        if k != "all":
            raise AttributionError(f"cross-check rows must be a whole number or 'all', got '{k}'")
        return np.arange(n_rows, dtype=np.int64)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise AttributionError(f"cross-check rows must be a whole number >= 1 or 'all', got {k!r}")
    if k >= n_rows:
        return np.arange(n_rows, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=int(k), replace=False)).astype(np.int64)


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of ``v`` (n,), ties sharing their average rank."""
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(v.shape[0], dtype=np.float64)
    ranks[order] = np.arange(v.shape[0], dtype=np.float64)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two score vectors of shape (n_features,), ties averaged.

    Two constant vectors (or a single feature) agree trivially: 1.0; one constant against a varying one: 0.0.
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise AttributionError(f"rankings have {a.size} and {b.size} features; compare rankings of the same features")
    ra, rb = _average_ranks(a), _average_ranks(b)
    sa, sb = ra.std(), rb.std()
    if sa == 0.0 or sb == 0.0:
        return 1.0 if sa == sb else 0.0
    return float(np.mean((ra - ra.mean()) * (rb - rb.mean())) / (sa * sb))


def _row_diffs(native: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """native, other : (k, F). Returns per row max |diff| (k,), max |native| (k,) and the relative diff (k,)."""
    abs_diff = np.abs(native - other).max(axis=1)
    scale = np.abs(native).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, abs_diff / np.where(scale > 0, scale, 1.0), np.where(abs_diff > 0, np.inf, 0.0))
    return abs_diff, scale, rel


def _rel_delta(delta: np.ndarray, fx: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """|delta| / |F(x) - F(x')| with the same floor as the native engine."""
    floor = 1e-6 * (1.0 + np.maximum(np.abs(fx), np.abs(fb)))
    return np.abs(delta) / np.maximum(np.abs(fx - fb), floor)


def _captum_scale(method: str, n_steps: int) -> float | None:
    """c when Captum's rule has our nodes and weights ``c * ours`` (so Captum's IG is ``c`` times ours)."""
    a_ours, w_ours = rule(method, n_steps)
    a_cap, w_cap = captum_rule(method, n_steps)
    if not np.allclose(a_ours, a_cap, rtol=0, atol=1e-6):
        return None
    c = float(w_cap.sum() / w_ours.sum())
    return c if np.allclose(w_cap, c * w_ours, rtol=1e-6, atol=0) else None  # Captum's weights are float32


def _where(flat_index: int, feature_shape: tuple[int, ...], feature_names: Sequence[str] | None) -> str:
    if feature_names is not None:
        return f"'{feature_names[flat_index]}'"
    if len(feature_shape) == 1:
        return f"feature {flat_index}"
    return f"element {tuple(int(i) for i in np.unravel_index(flat_index, feature_shape))}"


def crosscheck(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    native: IGResult,
    baselines: object = "zero",
    target: object = None,
    method: str | None = None,
    n_steps: int | str | None = None,
    tol_abs: float = 1e-4,
    tol_rel: float = 1e-3,
    internal_batch_size: int | None = None,
    feature_names: Sequence[str] | None = None,
    rows: int | str = "all",
    seed: int = 0,
    references: bool = False,
) -> Crosscheck:
    """Compare ``native`` (our engine on all rows of ``x``) with Captum on a sample of those rows.

    Parameters
    ----------
    model : torch.nn.Module
        The model ``native`` explained; Captum runs it in the precision of ``native.attributions``.
    x : Tensor of shape (n_rows, *feature_shape)
        The rows ``native`` explained.
    native : IGResult
    baselines, target, references
        Exactly as passed to :func:`audit.attribution.native.integrated_gradients`. With ``references`` Captum
        runs once per reference row and the results are averaged.
    method, n_steps : optional
        Default to ``native``'s; if given they must match it. With ``n_steps="auto"`` each row is compared at
        the step count it used (``native.steps``).
    tol_abs, tol_rel : float, default 1e-4 and 1e-3
        A row agrees when ``max|native - captum| <= tol_abs + tol_rel * max|native|``.
    internal_batch_size : int, optional
        Path points per Captum forward; by default the fastest setting
        (:func:`audit.attribution.captum_ig.best_internal_batch_size`).
    feature_names : sequence of str, optional
        Names of the flattened features, used to say where the largest difference is.
    rows : int or "all", default "all"
        How many of the rows of ``x`` to compare (a seeded sample, :func:`sample_rows`), or all of them. Callers
        that pass a pre-drawn sample keep the default.
    seed : int, default 0

    Returns
    -------
    Crosscheck
        ``passed`` is True when every compared row agrees; ``captum_bias`` explains a Captum-side disagreement.
        For a model that couples rows (``native.batch_independent`` False), or a Riemann rule with 1 step (Captum
        needs 2), nothing is compared: ``rows`` is 0, the differences are NaN and ``skipped_reason`` says why.
    """
    method, n_steps = check_crosscheck_arguments(native, x, method, n_steps, tol_abs, tol_rel,
                                                 engine="integrated_gradients", what="inputs")
    n, fs = x.shape[0], tuple(x.shape[1:])
    n_features = int(np.prod(fs))
    if feature_names is not None and len(feature_names) != n_features:
        raise AttributionError(f"{len(feature_names)} feature names for {n_features} features; pass one per feature")
    idx = sample_rows(n, rows, seed)
    k = idx.shape[0]
    skipped = skipped_crosscheck(native, method, tol_abs, tol_rel)
    if skipped is not None:
        return skipped

    dtype = native.attributions.dtype
    p = next(iter(model.parameters()), None)
    if p is not None and p.dtype != dtype:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = copy.deepcopy(model).to(dtype)  # Captum in the precision our engine used
    xs = x.detach().to("cpu", dtype)[idx]  # (k, *fs)
    refs = as_baseline(baselines, x.detach().to("cpu", dtype), references)  # (n_refs or 1 or n, *fs)
    ref_list = [r.unsqueeze(0) for r in refs] if references else [refs if refs.shape[0] == 1 else refs[idx]]
    tgt = as_target(target, n, torch.device("cpu"))
    tgt = None if tgt is None else tgt[idx]
    steps = native.steps[idx].numpy()
    ibs = internal_batch_size or best_internal_batch_size(model, xs, n_steps=int(steps.max()))

    cap_attr = torch.zeros((k, *fs), dtype=torch.float64)
    cap_delta = torch.zeros(k, dtype=torch.float64)
    with buffers_restored(model):  # Captum in train mode would update BatchNorm statistics
        for s in np.unique(steps):
            pos = np.nonzero(steps == s)[0]
            for ref in ref_list:
                b = ref if ref.shape[0] == 1 else ref[pos]
                a, d = captum_attribute(
                    model, xs[pos], baselines=b, target=None if tgt is None else tgt[pos], method=method,
                    n_steps=int(s), internal_batch_size=ibs,
                )
                cap_attr[pos] += a.double() / len(ref_list)
                cap_delta[pos] += d.double() / len(ref_list)

    nat = native.attributions[idx].double().reshape(k, -1).numpy()  # (k, F)
    cap = cap_attr.reshape(k, -1).numpy()  # (k, F)
    steps_txt = f"{int(steps[0])} steps" if native.n_steps != "auto" else "the steps each row used (n_steps='auto')"

    def describe(agree: int, worst: int, column: int, worst_rel: float, rho: float, nat_rd: float,
                 cap_rd: float) -> str:
        return (
            f"Captum {captum_version()} and our engine explained the same {k} of {n} rows ({method}, {steps_txt}"
            + (f", averaged over {len(ref_list)} references" if references else "")
            + "). Differences are per row, divided by the row's largest |attribution|; a row agrees when "
            f"max|diff| <= {tol_abs:g} + {tol_rel:g} * max|attribution|. {agree} of {k} rows agree; the "
            f"largest relative difference is {worst_rel:.3g} (row {int(idx[worst])}, "
            f"{_where(column, fs, feature_names)}). Spearman of the two global rankings: {rho:.4f}. Median "
            f"relative completeness error: ours {nat_rd:.3g}, Captum {cap_rd:.3g}."
        )

    return compare_attributions(
        nat, cap, cap_delta.numpy(), native_rel_delta=native.rel_delta[idx].double().numpy(),
        fx=native.f_x[idx].double().numpy(), fb=native.f_baseline[idx].double().numpy(), method=method,
        steps=steps, fixed_steps=native.n_steps != "auto", tol_abs=tol_abs, tol_rel=tol_rel, describe=describe,
    )


def check_crosscheck_arguments(
    native: object, x: object, method: str | None, n_steps: int | str | None, tol_abs: float, tol_rel: float, *,
    engine: str, what: str,
) -> tuple[str, int | str]:
    """The method and steps of a cross-check of ``native`` (an :class:`IGResult` of ``engine`` on rows ``x``):
    given ones must be native's own; the tolerances must allow agreement; ``x`` must be the rows it explained.

    Raises
    ------
    AttributionError
        Any of those not so.
    """
    if not isinstance(native, IGResult):
        raise AttributionError(f"native must be the IGResult of {engine} on the same rows")
    method = native.method if method is None else method
    n_steps = native.n_steps if n_steps is None else n_steps
    if method != native.method or n_steps != native.n_steps:
        raise AttributionError(
            f"the native result used {native.method} with n_steps={native.n_steps}, the cross-check was asked for "
            f"{method} with n_steps={n_steps}; cross-check with the same method and steps"
        )
    if not (tol_abs >= 0 and tol_rel >= 0 and tol_abs + tol_rel > 0):
        raise AttributionError(f"tolerances must be >= 0 and not both 0, got tol_abs={tol_abs}, tol_rel={tol_rel}")
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != tuple(native.attributions.shape):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise AttributionError(
            f"{what} {got} do not match the native attributions {tuple(native.attributions.shape)}; pass the rows "
            "the native result explained"
        )
    return method, n_steps


def skipped_crosscheck(native: IGResult, method: str, tol_abs: float, tol_rel: float) -> Crosscheck | None:
    """The record of a cross-check that cannot run, or None when it can: a model that couples rows (Captum
    explains another function then), or a Riemann rule at one step (Captum needs two)."""
    skip = ""
    if not native.batch_independent:
        skip = (
            "the model couples the rows of a batch: our engine explains each row with the other rows held at "
            "their values, Captum batches path points of several rows together and so explains a different "
            "function; there is nothing to compare (put the model in eval mode to cross-check)"
        )
    elif method != "gausslegendre" and int(native.steps.min()) < 2:
        skip = f"Captum's {method} needs at least 2 steps and the native result used 1; cross-check with 2 or more"
    if not skip:
        return None
    return Crosscheck(
        rows=0, max_abs_diff=None, max_rel_diff=None, rank_spearman=None, passed=None, method=method,
        n_steps=int(native.steps.max()), tol_abs=float(tol_abs), tol_rel=float(tol_rel),
        native_median_rel_delta=float(native.rel_delta.median()), captum_version=captum_version(),
        skipped_reason=skip,
    )


def compare_attributions(
    nat: np.ndarray,
    cap: np.ndarray,
    cap_delta: np.ndarray,
    *,
    native_rel_delta: np.ndarray,
    fx: np.ndarray,
    fb: np.ndarray,
    method: str,
    steps: np.ndarray,
    fixed_steps: bool,
    tol_abs: float,
    tol_rel: float,
    describe: Callable[[int, int, int, float, float, float, float], str],
) -> Crosscheck:
    """The cross-check record from both engines' attributions of the same rows (plain or layer IG).

    Parameters
    ----------
    nat, cap : ndarray of shape (k, F)
        Our and Captum's attributions (float64), one row per checked row.
    cap_delta : ndarray of shape (k,)
        Captum's convergence deltas.
    native_rel_delta, fx, fb : ndarray of shape (k,)
        Our relative completeness errors, F(x) and F(x').
    method : str
    steps : ndarray of int, shape (k,)
        The step count each row was compared at.
    fixed_steps : bool
        The run used one fixed step count (then a Captum rule that is a scaled copy of ours is recognised).
    tol_abs, tol_rel : float
        A row agrees when max|diff| <= tol_abs + tol_rel * max|attribution|.
    describe : callable
        ``describe(agree, worst_row, worst_column, worst_rel, rho, native_median_rel, captum_median_rel)``: the
        explanation sentence (what was compared is the caller's business).
    """
    abs_diff, scale, rel = _row_diffs(nat, cap)
    ok = abs_diff <= tol_abs + tol_rel * scale
    passed = bool(ok.all())
    rho = spearman(np.abs(nat).mean(axis=0), np.abs(cap).mean(axis=0))
    nat_rd = float(np.median(native_rel_delta))
    cap_rd = float(np.median(_rel_delta(cap_delta, fx, fb)))
    worst = int(np.argmax(np.where(np.isfinite(rel), rel, np.finfo(np.float64).max)))
    column = int(np.argmax(np.abs(nat[worst] - cap[worst])))
    explanation = describe(int(ok.sum()), worst, column, float(rel[worst]), float(rho), nat_rd, cap_rd)
    bias = ""
    if not passed and fixed_steps:
        n_int = int(steps[0])
        c = _captum_scale(method, n_int)
        if c is not None and c != 1.0:
            pred = c * nat  # Captum's rule is a scaled copy of ours
            p_abs, _, p_rel = _row_diffs(pred, cap)
            pred_rd = float(np.median(_rel_delta(c * nat.sum(axis=1) - (fx - fb), fx, fb)))
            if bool((p_abs <= tol_abs + tol_rel * scale).all()):
                why = f" = ({n_int} - 1) / {n_int}" if method == "riemann_trapezoid" else ""
                bias = (
                    f"Captum's {method} weights sum to {c:.6g}{why}, not 1, so its attributions are ours times "
                    f"{c:.6g}: predicted median relative completeness error {pred_rd:.3g}, Captum's measured "
                    f"{cap_rd:.3g}, ours {nat_rd:.3g}; ours times {c:.6g} matches Captum within tolerance (largest "
                    f"relative difference {float(p_rel.max()):.3g}). The disagreement is Captum's, not our engine's."
                )
    return Crosscheck(
        rows=int(nat.shape[0]),
        max_abs_diff=float(abs_diff.max()),
        max_rel_diff=float(rel.max()),
        rank_spearman=float(rho),
        passed=passed,
        method=method,
        n_steps=int(steps.max()),
        tol_abs=float(tol_abs),
        tol_rel=float(tol_rel),
        native_median_rel_delta=nat_rd,
        captum_median_rel_delta=cap_rd,
        captum_bias=bias,
        captum_version=captum_version(),
        explanation=explanation,
    )
