"""How well each feature alone predicts the target: a binned, leave-one-out score in [0, 1].

Each feature is cut into (at most) ``n_bins`` quantile bins and the target is predicted by the bin's mean
(regression) or majority class (classification). Scores are leave-one-out, computed in closed form from the
bin counts, so a feature unrelated to the target scores about 0 at any sample size instead of the upward bias
of in-sample binned fits (the correlation ratio of Pearson, 1905, is biased by about ``n_bins / n_rows``).
Binning captures any relation, monotone or not, that varies slower than the bin width.
"""

from __future__ import annotations

import numpy as np

from audit.analysis._checks import _as_matrix, _check_finite
from audit.errors import UsageError

__all__ = ["univariate_power"]

TASKS = ("regression", "classification")
_ROWS_PER_BIN = 100  # default bins: about this many rows each ...
_MIN_BINS = 20  # ... but at least this many bins ...
_MAX_BINS = 1_000  # ... and at most this many


def univariate_power(X: np.ndarray, y: np.ndarray, task: str, *, n_bins: int | None = None) -> np.ndarray:
    """Score of each feature alone as a predictor of the target.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Feature matrix. Must be finite.
    y : ndarray of shape (n_rows,)
        Target: numbers for regression, any labels for classification.
    task : {"regression", "classification"}
        ``regression``: leave-one-out R^2 of the bin-mean predictor, ``1 - PRESS / SST_loo`` where the
        baseline predicts each row by the mean of the other rows. ``classification``: leave-one-out accuracy
        of the bin-majority predictor, normalised as ``(acc - base) / (1 - base)`` with ``base`` the
        frequency of the most common class. Ties of the majority count as a fractional hit.
    n_bins : int, optional
        Quantile bins per feature (fewer when the feature has fewer distinct quantiles; a binary feature gets
        two bins). Default: ``n_rows // 100`` clipped to [20, 1000]. Finer bins resolve a sharp relation
        better (a class boundary costs at most half a bin of errors, which the base-rate normalisation
        magnifies for rare classes); leave-one-out keeps unrelated features at ~0 however many bins.

    Returns
    -------
    ndarray of shape (n_features,)
        Scores clipped to [0, 1]: ~1 when the feature determines the target, ~0 when it says nothing about it.
        All zeros when the target is constant (there is nothing to predict) or there are fewer than 3 rows.
    """
    X = _as_matrix(X, "feature matrix", finite="data")
    n, n_features = X.shape
    y = np.asarray(y)
    if y.shape != (n,):
        raise UsageError(f"target must have one value per row ({n}), got shape {y.shape}")
    if task not in TASKS:
        raise UsageError(f"unknown task '{task}'; use one of {', '.join(TASKS)}")
    if n_bins is None:
        n_bins = int(np.clip(n // _ROWS_PER_BIN, _MIN_BINS, _MAX_BINS))
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise UsageError(f"n_bins must be a whole number >= 2, got {n_bins!r}")
    if task == "regression":
        if not np.issubdtype(y.dtype, np.number):
            raise UsageError(f"a regression target must be numeric, got dtype {y.dtype}")
        y = y.astype(np.float64)
        _check_finite(y, "target", "data")
    out = np.zeros(n_features)
    if n < 3:
        return out
    qs = np.linspace(0.0, 1.0, int(n_bins) + 1)[1:-1]  # (n_bins - 1,) inner quantile levels
    if task == "regression":
        yc = y - y.mean()
        sst = float(yc @ yc)
        if sst <= 0.0:
            return out
        sst_loo = sst * (n / (n - 1)) ** 2  # PRESS of the leave-one-out global mean
        for j in range(n_features):
            bins = _bin_index(X[:, j], qs)
            if bins.min() != bins.max():  # a single bin predicts the global mean: exactly 0
                out[j] = 1.0 - _press_bin_mean(bins, y, n) / sst_loo
    else:
        _, codes = np.unique(y, return_inverse=True)  # codes: (n_rows,) in 0..n_classes-1
        codes = codes.reshape(-1)
        class_counts = np.bincount(codes)
        base = class_counts.max() / n
        if base >= 1.0:
            return out
        for j in range(n_features):
            bins = _bin_index(X[:, j], qs)
            if bins.min() != bins.max():
                acc = _loo_majority_hits(bins, codes, len(class_counts)) / n
                out[j] = (acc - base) / (1.0 - base)
    return np.clip(out, 0.0, 1.0)


def _bin_index(x: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantile-bin index of each value: (n_rows,) int in 0..len(unique edges)."""
    edges = np.unique(np.quantile(x, qs))  # (<= n_bins - 1,)
    return np.searchsorted(edges, x, side="right")


def _press_bin_mean(bins: np.ndarray, y: np.ndarray, n: int) -> float:
    """Leave-one-out squared error of predicting y by its bin mean (rows alone in a bin use the global mean).

    For a bin of size k >= 2, the left-out residual is ``k / (k - 1)`` times the in-sample residual.
    """
    counts = np.bincount(bins).astype(np.float64)  # (n_bins_used,)
    sums = np.bincount(bins, weights=y)
    sq = np.bincount(bins, weights=y * y)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = sq - sums * sums / counts  # within-bin sum of squares, (n_bins_used,)
        press = np.where(counts >= 2, within * (counts / (counts - 1)) ** 2, 0.0)
    alone = counts[bins] == 1  # (n_rows,)
    if alone.any():
        others_mean = (y.sum() - y[alone]) / (n - 1)
        press_alone = float(((y[alone] - others_mean) ** 2).sum())
    else:
        press_alone = 0.0
    return float(np.nansum(np.maximum(press, 0.0))) + press_alone


def _loo_majority_hits(bins: np.ndarray, codes: np.ndarray, n_classes: int) -> float:
    """Expected number of rows whose class is the majority of the other rows in their bin (ties split evenly).

    Leaving out a row of class c only helps c if c was the unique top class of the bin: then the row is a hit
    when ``top - 1`` still beats the runner-up count, a 1 / (1 + n_runners_up) hit on a tie, a miss otherwise.
    Rows alone in their bin have no neighbour to vote and count as misses.
    """
    n_used = int(bins.max()) + 1
    table = np.bincount(bins * n_classes + codes, minlength=n_used * n_classes).reshape(n_used, n_classes)
    ordered = np.sort(table, axis=1)  # (n_used, n_classes)
    top = ordered[:, -1]  # (n_used,)
    second = ordered[:, -2]  # n_classes >= 2 here (base rate < 1)
    n_top = (table == top[:, None]).sum(axis=1)
    n_second = (table == second[:, None]).sum(axis=1)
    unique_top = (n_top == 1) & (table.sum(axis=1) >= 2)
    frac = np.where(top - 1 > second, 1.0, np.where(top - 1 == second, 1.0 / (1 + n_second), 0.0))
    return float((top * frac)[unique_top].sum())
