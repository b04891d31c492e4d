"""The tabular audit's baseline checks, run on bounded samples of the analysis rows after attribution:

- :func:`sensitivity`: the ranking under a second reasonable baseline (expected gradients over data rows when the
  run's baseline is the data mean, else the data mean), compared by
  :func:`audit.analysis.baseline_sensitivity.baseline_sensitivity`; read by ``baseline_sensitive``;
- :func:`diagnose_convergence`: the rows that missed the completeness tolerance re-run against the data mean and
  with more steps, and the share of the output change their attributions capture, so ``not_converged`` can name
  the cause and give advice that is known to work (:mod:`audit.analysis.convergence_cause`).

Both take the :class:`audit.modalities.tabular.TabularModality` after ``finish`` has its sample (``mod``): its
``sample``, ``explained`` module, ``categories``, ``engine``, ``baseline`` and configuration.

Expected gradients (Erion, Janizek, Sturmfels, Lundberg & Lee, "Improving performance of deep learning models
with axiomatic attribution priors and expected gradients", Nature Machine Intelligence 2021): IG averaged over
reference rows drawn from the data; each row gets its own :data:`EG_REFERENCES` references, so no one draw of
references tilts the global ranking (completeness holds against the mean of ``F(x) - F(x'_k)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audit import probes
from audit.analysis.baseline_sensitivity import baseline_sensitivity
from audit.analysis.convergence_cause import ConvergenceCause, classify_cause
from audit.attribution.native import IGResult, integrated_gradients
from audit.attribution.quadrature import MAX_STEPS
from audit.results import BaselineSensitivity, Convergence

__all__ = ["sensitivity", "diagnose_convergence", "EG_REFERENCES", "DIAGNOSE_ROWS", "FLOOR_ROWS"]

EG_REFERENCES = 8  # data rows each row's expected gradients average over
DIAGNOSE_ROWS = 32  # unconverged rows re-run to find the cause
FLOOR_ROWS = 64  # rows that set the completeness floor of the data-mean re-run
_TOP_OUTSIDE = 5


def _targets(mod: Any, idx: np.ndarray) -> torch.Tensor | None:
    if mod.task != "classification":
        return None
    return torch.as_tensor(mod.sample.get("cls")[idx], dtype=torch.long)


def _inputs(
    mod: Any, X: np.ndarray, base: np.ndarray, vectors: torch.Tensor | None = None
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The module the engine explains, the rows and their baselines: ``base`` (F,) or (n, F) numeric baseline rows;
    with category columns (``mod.categories``) the rows extended into embedding space, the category ids held at
    each row's values and ``vectors`` (S,) or (n, S) as the baseline's embedding vectors (the run's when None)."""
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))  # (n, F)
    b = torch.as_tensor(np.asarray(base, dtype=np.float32))
    b = b.reshape(1, -1).expand(x.shape[0], -1) if b.dim() == 1 else b  # (n, F)
    cats, module = mod.categories, mod.explained
    if cats is None:
        return module, x, b.contiguous()
    z, zb = cats.expand(module, x, torch.as_tensor(mod.baseline), mod.category_baseline)  # (n, width) each
    F = x.shape[1]
    numeric = [j for j in range(F) if j not in set(cats.columns)]
    zb[:, numeric] = b[:, numeric].to(zb.dtype)
    if vectors is not None:
        zb[:, F:] = vectors.to(zb.dtype).reshape(-1, zb.shape[1] - F).expand(x.shape[0], -1)
    return cats.wrap(module), z, zb


def _run(mod: Any, X: np.ndarray, target: Any, base: np.ndarray, vectors=None, engine=None) -> IGResult:
    module, x, b = _inputs(mod, X, base, vectors)
    res = integrated_gradients(module, x, baselines=b, target=target, **(engine or mod.engine).kwargs())
    if mod.categories is not None:
        res = _collapse(mod, res)
    return res


def _collapse(mod: Any, res: IGResult) -> IGResult:
    import dataclasses

    return dataclasses.replace(res, attributions=mod.categories.collapse(res.attributions))


def _mean_row(X: np.ndarray) -> np.ndarray:
    return X.astype(np.float64).mean(axis=0).astype(np.float32)  # (F,)


def _mean_vectors(mod: Any, X: np.ndarray, mean: np.ndarray) -> torch.Tensor | None:
    if mod.categories is None:
        return None
    return mod.categories.baseline_vectors(mod.model.module, "mean", X[:4096], mean)


def _expected_gradients(mod: Any, X: np.ndarray, target: Any, pool: np.ndarray, seed: int) -> np.ndarray:
    """Expected gradients of rows ``X`` (n, F) over references drawn from ``pool`` (m, F): (n, F)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(X.shape, dtype=np.float64)
    for _ in range(EG_REFERENCES):
        refs = pool[rng.integers(0, pool.shape[0], X.shape[0])]  # (n, F): one reference per row
        vec = None
        if mod.categories is not None:  # the references' own embedding vectors
            vec = mod.categories.vectors(mod.model.module, torch.from_numpy(np.ascontiguousarray(refs, np.float32)))
        total += _run(mod, X, target, refs, vec).attributions.numpy().astype(np.float64)
    return total / EG_REFERENCES


def sensitivity(mod: Any) -> BaselineSensitivity | None:
    """The ranking under the run's baseline against a second one on a bounded sample of the analysis rows.

    The second baseline is expected gradients over :data:`EG_REFERENCES` rows of the audited data per row when the
    run's baseline is the data mean, else the data mean (of the analysis sample). None when the check is off
    (``baseline_sensitivity_rows = 0``) or there are fewer than 10 rows.
    """
    cfg = mod.cfg
    want = int(cfg.thresholds.baseline_sensitivity_rows)
    X_all = mod.sample.get("X")
    n = X_all.shape[0]
    if want <= 0 or n < 10:
        return None
    rng = np.random.default_rng(cfg.seed + 17)
    idx = np.sort(rng.choice(n, size=min(want, n), replace=False))
    X, target = X_all[idx], _targets(mod, idx)
    A_chosen = mod.sample.get("A")[idx].astype(np.float64)  # (R, F): what the ranking was made of
    kind = cfg.baseline or "mean"
    mod.step("baseline sensitivity")
    if kind == "mean":
        second = f"expected gradients ({EG_REFERENCES} data rows per row)"
        A_second = _expected_gradients(mod, X, target, X_all, cfg.seed + 18)
    else:
        second = "data mean"
        mean = _mean_row(X_all)
        A_second = _run(mod, X, target, mean, _mean_vectors(mod, X_all, mean)).attributions.numpy()
    F = len(mod.names)
    return baseline_sensitivity(
        A_chosen, A_second, mod.names, chosen=mod.baseline_label, second=second,
        min_share=cfg.thresholds.real_share_factor / F, n_boot=max(int(cfg.n_boot), 100), seed=cfg.seed,
    )  # fmt: skip


def _outside(X: np.ndarray, base: np.ndarray, names: list[str]) -> tuple[tuple[str, ...], tuple[float, ...], int]:
    """Columns where ``base`` lies outside the range of ``X``, farthest (in sd from the mean) first."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    sd = X.astype(np.float64).std(axis=0)
    dist = np.abs(base.astype(np.float64) - X.astype(np.float64).mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    out = np.flatnonzero((base < lo) | (base > hi))
    out = out[np.argsort(-dist[out], kind="stable")]
    top = out[:_TOP_OUTSIDE]
    return tuple(names[j] for j in top), tuple(float(dist[j]) for j in top), int(out.size)


def diagnose_convergence(mod: Any, convergence: Convergence) -> ConvergenceCause | None:
    """Re-run up to :data:`DIAGNOSE_ROWS` rows of the sample that missed the tolerance: with ``n_steps="auto"``
    up to ``MAX_STEPS`` (the share they capture of the output change, and how many that fixes), and against the
    data mean at the run's settings (how many that fixes). None when every row converged."""
    if convergence.n_not_converged <= 0:
        return None
    cfg = mod.cfg
    tol = cfg.thresholds.convergence_tol
    rel = mod.sample.get("rel_delta").astype(np.float64)
    bad = np.flatnonzero(rel > tol)
    if bad.size == 0:
        return None
    mod.step("convergence diagnosis")
    rng = np.random.default_rng(cfg.seed + 19)
    bad = np.sort(rng.choice(bad, size=min(DIAGNOSE_ROWS, bad.size), replace=False))
    X_all = mod.sample.get("X")
    X, target = X_all[bad], _targets(mod, bad)
    base = np.asarray(mod.baseline, dtype=np.float32)
    outside, outside_sd, n_outside = _outside(X_all, base, mod.names)

    # more steps, the run's baseline
    at_limit = cfg.n_steps == "auto" and cfg.max_steps >= MAX_STEPS
    steps_engine = mod.engine.replace(n_steps="auto", max_steps=MAX_STEPS)
    res = _run(mod, X, target, base, mod.category_baseline, steps_engine)
    span = (res.f_x - res.f_baseline).numpy().astype(np.float64)
    total = res.attributions.numpy().astype(np.float64).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.abs(span) > 0, total / span, np.nan)
    captured = float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else float("nan")
    fixed_by_steps = None if at_limit else float((res.rel_delta.numpy() <= tol).mean())

    # the data mean, the run's steps
    fixed_by_mean = None
    if (cfg.baseline or "mean") != "mean":
        mean = _mean_row(X_all)
        vec = _mean_vectors(mod, X_all, mean)
        floor_idx = np.sort(rng.choice(X_all.shape[0], size=min(FLOOR_ROWS, X_all.shape[0]), replace=False))
        module, xf, bf = _inputs(mod, X_all[floor_idx], mean, vec)
        t = _targets(mod, floor_idx)
        fx = _explained(module, xf, t, cfg.device)
        fb = _explained(module, bf, t, cfg.device)
        floor = cfg.thresholds.convergence_floor * float(np.median(np.abs(fx - fb)))
        res_m = _run(mod, X, target, mean, vec, mod.engine.replace(delta_floor=floor))
        fixed_by_mean = float((res_m.rel_delta.numpy() <= tol).mean())

    cause = classify_cause(
        n_outside=n_outside, captured=captured, fixed_by_mean=fixed_by_mean, fixed_by_steps=fixed_by_steps
    )
    return ConvergenceCause(
        cause=cause, rows=int(bad.size), baseline=mod.baseline_label, outside=outside, outside_sd=outside_sd,
        n_outside=n_outside, captured=captured, fixed_by_mean=fixed_by_mean, fixed_by_steps=fixed_by_steps,
        steps_tried=None if at_limit else MAX_STEPS,
    )  # fmt: skip


def _explained(module: torch.nn.Module, x: torch.Tensor, target: torch.Tensor | None, device: str) -> np.ndarray:
    """The explained output per row: (n,)."""
    out = np.asarray(probes.predict(module, x.numpy(), device=device)).reshape(x.shape[0], -1)
    return out[:, 0] if target is None else out[np.arange(x.shape[0]), target.numpy()]
