"""Does a feature the model relies on help it predict? Paired per-row loss changes and their interval.

Taking a feature's information away (permuting it within its column, as scikit-learn's
``permutation_importance`` does after Breiman, 2001, or setting it to the baseline) changes each row's loss by
``d_i``. How much change to expect depends on how far the output moved, so each row's change is compared with
``r_i``, the change expected if the model's own predictions were right (:func:`audit.analysis.task.
expected_loss_change`: the squared output change for squared error, ``KL(p || p')`` for a classifier). The
*benefit ratio* ``sum(d) / sum(r)`` is about 1 for a feature that carries the signal the model draws from it and
about -1 for a feature the model follows although it carries none (taking it away then helps). Its interval
comes from a bootstrap over rows, so a feature is called useless only when the interval says so.

Correlated features are judged as groups (single linkage on ``|Spearman| >= threshold``): with radius,
perimeter and area in the data, taking one away costs nothing because the others carry the same signal, which
proves nothing about any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NeutralisationStat", "correlated_groups", "benefit_interval"]


@dataclass(frozen=True)
class NeutralisationStat:
    """The evidence for one feature or group of correlated features.

    Attributes
    ----------
    features : tuple of str
        The group, in column order (one name for an uncorrelated feature).
    share : float
        Summed attribution share of the group.
    base_loss, neutralised_loss : float
        Mean loss over the rows before and after taking the group's information away.
    benefit : float
        ``sum(d) / sum(r)`` (see the module notes); NaN when the output did not move.
    ci_low, ci_high : float
        Bootstrap 95% interval of ``benefit``.
    n_rows : int
    method : {"permute", "baseline"}
    univariate : float
        The :func:`audit.analysis.univariate_power` of the member that says most about the target on its own.
    univariate_null : float
        The 99% quantile of that member's score under a shuffled target; a member above it carries information
        about the target by itself, so the group is not noise, whatever the model makes of it.
    """

    features: tuple[str, ...]
    share: float
    base_loss: float
    neutralised_loss: float
    benefit: float
    ci_low: float
    ci_high: float
    n_rows: int
    method: str
    univariate: float = float("nan")
    univariate_null: float = float("nan")

    @property
    def informative(self) -> bool:
        """True when a member alone tells about the target beyond chance (permutation test at 1%)."""
        return bool(self.univariate > self.univariate_null)


def _ranks(X: np.ndarray) -> np.ndarray:
    """Column-wise average ranks (ties share their mean rank): (n, F) float64."""
    order = np.argsort(X, axis=0, kind="stable")
    ranks = np.empty_like(X, dtype=np.float64)
    for j in range(X.shape[1]):
        col = X[order[:, j], j]
        # average the ranks of tied values
        _, start, counts = np.unique(col, return_index=True, return_counts=True)
        mean_rank = start + (counts - 1) / 2.0
        r = np.repeat(mean_rank, counts)
        ranks[order[:, j], j] = r
    return ranks


def correlated_groups(X: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of columns linked by ``|Spearman correlation| >= threshold`` (connected components).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    threshold : float in [0, 1]
        1 or more never groups; a constant column is alone.

    Returns
    -------
    list of list of int
        Every column in exactly one group; groups and their members in column order.
    """
    X = np.asarray(X, dtype=np.float64)
    n, F = X.shape
    parent = list(range(F))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n >= 3 and F > 1 and threshold <= 1.0:
        R = _ranks(X)
        R -= R.mean(axis=0)
        norm = np.sqrt((R * R).sum(axis=0))  # (F,)
        ok = norm > 0
        Rn = np.where(ok, R / np.where(ok, norm, 1.0), 0.0)
        rho = Rn.T @ Rn  # (F, F) Spearman correlations
        ii, jj = np.nonzero(np.triu(np.abs(rho) >= threshold, k=1) & ok[:, None] & ok[None, :])
        for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for j in range(F):
        groups.setdefault(find(j), []).append(j)
    return sorted(groups.values(), key=lambda g: g[0])


def benefit_interval(
    d: np.ndarray, r: np.ndarray, *, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """The benefit ratio ``sum(d) / sum(r)`` and its percentile bootstrap interval over rows.

    Parameters
    ----------
    d : ndarray of shape (n_rows,)
        Per-row loss change when the feature's information is taken away (positive: the loss grew).
    r : ndarray of shape (n_rows,), >= 0
        Per-row expected change if the model's predictions were right.
    n_boot : int
    seed : int
    level : float

    Returns
    -------
    (benefit, low, high)
        NaN for all three when ``sum(r)`` is 0 (the output did not move).
    """
    d = np.asarray(d, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    total_r = float(r.sum())
    if d.size == 0 or total_r <= 0.0:
        return float("nan"), float("nan"), float("nan")
    point = float(d.sum() / total_r)
    if n_boot < 1:
        return point, point, point
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))  # (n_boot, n_rows)
    num = d[idx].sum(axis=1)
    den = r[idx].sum(axis=1)
    ratios = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return point, float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ratios, [alpha, 1.0 - alpha])
    return point, float(lo), float(hi)
