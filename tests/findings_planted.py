"""Planted cases for the detector tests: linear models with closed-form IG and losses, built with numpy only.

For a linear model ``F(x) = w . x`` and baseline ``x' = 0``, Integrated Gradients is exactly ``w * (x - 0)``
(Sundararajan et al., 2017); the loss with feature j neutralised (set to its baseline 0) is the MSE of
``F`` with column j zeroed. Nothing here decides a detector's outcome: the tests compare against thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.analysis import global_ranking
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


def linear_case(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, names: list[str] | tuple[str, ...], *, n_boot: int = 50
) -> LinearCase:
    """IG, ranking and neutralised MSE losses of the linear model ``w`` on ``(X, y)``, baseline 0."""
    w = np.asarray(w, dtype=float)
    A = X * w  # (n, F): IG of a linear model, baseline 0
    pred = X @ w
    base = float(np.mean((pred - y) ** 2))
    neutral = {}
    for j, name in enumerate(names):
        pred_j = pred - X[:, j] * w[j]  # column j set to its baseline value 0
        neutral[name] = float(np.mean((pred_j - y) ** 2))
    return LinearCase(X, y, w, tuple(names), A, global_ranking(A, names, n_boot=n_boot, seed=0), base, neutral)


def stats_from_shares(shares: list[float], names: list[str] | None = None) -> tuple[FeatureStat, ...]:
    """A ranking whose mean |attribution| equals the given shares (column order), intervals at the point."""
    names = names or [f"x{j}" for j in range(len(shares))]
    s = np.asarray(shares, dtype=float)
    s = s / s.sum()
    A = np.tile(s, (2, 1))  # two identical rows: mean |A| = s exactly
    return global_ranking(A, names, n_boot=0)
