"""Planted cases for the detector tests: linear models with closed-form IG and losses, built with numpy only.

For a linear model ``F(x) = w . x`` and baseline ``x' = 0``, Integrated Gradients is exactly ``w * (x - 0)``
(Sundararajan et al., 2017); the loss with feature j neutralised (set to its baseline 0) is the squared error of
``F`` with column j zeroed, row by row, and the change a correct model would expect is the squared output change
``(w_j x_j)^2``. Nothing here decides a detector's outcome: the tests compare against thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.analysis import global_ranking
from audit.analysis.neutralisation import NeutralisationStat, benefit_interval
from audit.analysis.univariate import univariate_null_quantile, univariate_power
from audit.results import FeatureStat


@dataclass(frozen=True)
class LinearCase:
    X: np.ndarray  # (n, F) features
    y: np.ndarray  # (n,) target
    w: np.ndarray  # (F,) model weights
    names: tuple[str, ...]
    A: np.ndarray  # (n, F) IG attributions w * (x - 0)
    stats: tuple[FeatureStat, ...]
    base_loss: float
    neutralised_loss: dict[str, float]
    neutralisation: tuple[NeutralisationStat, ...]  # one per feature, each its own group


def linear_case(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, names: list[str] | tuple[str, ...], *, n_boot: int = 50
) -> LinearCase:
    """IG, ranking and neutralised MSE losses of the linear model ``w`` on ``(X, y)``, baseline 0."""
    w = np.asarray(w, dtype=float)
    A = X * w  # (n, F): IG of a linear model, baseline 0
    pred = X @ w
    row_loss = (pred - y) ** 2  # (n,)
    base = float(np.mean(row_loss))
    stats = global_ranking(A, names, n_boot=n_boot, seed=0)
    share = {s.name: s.share for s in stats}
    neutral = {}
    evidence = []
    u = univariate_power(X, y, "regression")  # what each column says about the target alone
    null = univariate_null_quantile(X, y, "regression", range(X.shape[1]), seed=0)
    for j, name in enumerate(names):
        pred_j = pred - X[:, j] * w[j]  # column j set to its baseline value 0
        d = (pred_j - y) ** 2 - row_loss  # per-row loss change
        r = (pred_j - pred) ** 2  # what a correct model would lose
        neutral[name] = float(np.mean(row_loss + d))
        b, lo, hi = benefit_interval(d, r, n_boot=max(n_boot, 20), seed=j)
        evidence.append(NeutralisationStat(
            (name,), share[name], base, neutral[name], b, lo, hi, len(y), "baseline", float(u[j]), float(null[j])
        ))
    return LinearCase(X, y, w, tuple(names), A, stats, base, neutral, tuple(evidence))


def stats_from_shares(shares: list[float], names: list[str] | None = None) -> tuple[FeatureStat, ...]:
    """A ranking whose mean |attribution| equals the given shares (column order), intervals at the point."""
    names = names or [f"x{j}" for j in range(len(shares))]
    s = np.asarray(shares, dtype=float)
    s = s / s.sum()
    A = np.tile(s, (2, 1))  # two identical rows: mean |A| = s exactly
    return global_ranking(A, names, n_boot=0)
