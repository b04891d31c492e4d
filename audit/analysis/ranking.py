"""Global feature rankings from per-row attributions, with bootstrap confidence intervals.

Per feature: the mean absolute attribution (the ranking key), the signed mean and standard deviation, the share
of total mean |attribution|, a 95% percentile bootstrap interval of the mean |attribution| and of the rank
(Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13).

Large inputs use the rescaled m-out-of-n bootstrap (Bickel, Götze & van Zwet, *Statistica Sinica* 7, 1997):
see :func:`global_ranking`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.analysis._checks import _as_matrix, _as_rng, _check_finite, _check_names
from audit.errors import UsageError
from audit.results import FeatureStat

__all__ = ["global_ranking", "class_rankings", "MIN_BOOT_ROWS"]

MIN_BOOT_ROWS = 2  # below this many rows the bootstrap resamples one row: no interval (NaN) is given

_ROW_CHUNK = 65_536  # rows per pass when summing, bounds temporaries to _ROW_CHUNK * n_features floats
_BOOT_CELLS = 1 << 22  # replicates drawn at a time: about this many (replicate, row) counts, 32 MiB per copy
_BOOT_CHUNK_MAX = 64  # ... and at most this many replicates (a wide count matrix keeps the product BLAS-efficient)
_ALPHA = 0.05  # 95% intervals


def global_ranking(
    A: np.ndarray,
    names: Sequence[str],
    *,
    n_boot: int = 200,
    seed: int | np.random.Generator = 0,
    max_boot_rows: int = 200_000,
) -> tuple[FeatureStat, ...]:
    """Rank features by mean absolute attribution, with bootstrap 95% intervals of the mean and the rank.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_features)
        Per-row attributions. Must be finite.
    names : sequence of str of length n_features
        Unique feature names, in column order.
    n_boot : int, default=200
        Bootstrap replicates. ``0`` skips the bootstrap: every interval equals its point estimate. With fewer
        than :data:`MIN_BOOT_ROWS` (2) rows there is nothing to resample: the intervals are NaN (no interval) and
        the rank interval is 0 (not computed), whatever ``n_boot`` is.
    seed : int or numpy.random.Generator, default=0
        Seed of the bootstrap draws (a Generator is used as is and advanced).
    max_boot_rows : int, default=200_000
        Rows the bootstrap resamples. Up to this many rows the bootstrap is the ordinary one. Above it, a random
        subsample of ``m = max_boot_rows`` rows (without replacement) is resampled and each replicate's deviation
        from the subsample mean is shrunk by ``sqrt(m / n_rows)`` around the full-data estimate: the rescaled
        m-out-of-n bootstrap, whose spread matches the ``1 / sqrt(n_rows)`` spread of the full-data mean.

    Returns
    -------
    tuple of FeatureStat
        One per feature, ordered by rank (1 = largest mean |attribution|; ties go to the earlier column).
        ``share`` sums to 1 over features (all zeros when every attribution is zero). ``std`` is the
        population standard deviation (``ddof=0``) of the signed attribution. Intervals always contain
        their point estimate, except below :data:`MIN_BOOT_ROWS` rows, where they are NaN (a "95% interval"
        from one row would be its point estimate, a statement about nothing).

    Notes
    -----
    Each replicate is a vector of multinomial counts over the resampled rows (how often each row is drawn), and
    all features' replicate means come from one matrix product ``counts @ |A|``, so the cost is
    ``n_boot * m * n_features`` multiply-adds plus ``n_boot * m`` random integers. Multinomial counts on a
    subsample were chosen over Poisson(1) weights on every row because they are exact bootstrap draws and
    their cost does not grow with ``n_rows``: on 2 cores, 1,000,000 x 20 with 200 replicates takes about
    0.6 s this way against about 7 s with Poisson weights on all rows. Memory: ``m * n_features`` float64 for
    the resampled |A| plus about 100 MiB of counts while drawing.
    """
    A = _as_matrix(A, "attributions")
    n, n_features = A.shape
    names = _check_names(names, n_features, "attributions")
    _check_finite(A, "attributions", "attribution", names)
    n_boot = _check_int(n_boot, "n_boot", minimum=0)
    max_boot_rows = _check_int(max_boot_rows, "max_boot_rows", minimum=1)
    rng = _as_rng(seed)

    mean_abs, mean, std = _column_stats(A)  # each (n_features,)
    total = float(mean_abs.sum())
    share = mean_abs / total if total > 0 else np.zeros(n_features)
    rank = _ranks(mean_abs[None, :])[0]  # (n_features,)

    if n < MIN_BOOT_ROWS:
        ci_low, ci_high = np.full(n_features, np.nan), np.full(n_features, np.nan)
        rank_low, rank_high = np.zeros(n_features, np.int64), np.zeros(n_features, np.int64)
    elif n_boot == 0:
        ci_low, ci_high = mean_abs.copy(), mean_abs.copy()
        rank_low, rank_high = rank.copy(), rank.copy()
    else:
        boot = _bootstrap_mean_abs(A, mean_abs, n_boot=n_boot, rng=rng, max_rows=max_boot_rows)  # (n_boot, F)
        ci_low, ci_high = np.quantile(boot, [_ALPHA / 2, 1 - _ALPHA / 2], axis=0)  # each (F,)
        ci_low, ci_high = np.minimum(ci_low, mean_abs), np.maximum(ci_high, mean_abs)
        boot_rank = _ranks(boot)  # (n_boot, F)
        r_low, r_high = np.quantile(boot_rank, [_ALPHA / 2, 1 - _ALPHA / 2], axis=0)
        rank_low = np.minimum(np.floor(r_low).astype(np.int64), rank)
        rank_high = np.maximum(np.ceil(r_high).astype(np.int64), rank)

    order = np.argsort(rank)
    return tuple(
        FeatureStat(
            name=names[j],
            rank=int(rank[j]),
            mean_abs=float(mean_abs[j]),
            mean=float(mean[j]),
            std=float(std[j]),
            share=float(share[j]),
            ci_low=float(ci_low[j]),
            ci_high=float(ci_high[j]),
            rank_ci_low=int(rank_low[j]),
            rank_ci_high=int(rank_high[j]),
        )
        for j in order
    )


def class_rankings(
    A: np.ndarray,
    names: Sequence[str],
    classes: np.ndarray,
    *,
    n_boot: int = 200,
    seed: int | np.random.Generator = 0,
    max_boot_rows: int = 200_000,
) -> dict[str, tuple[FeatureStat, ...]]:
    """:func:`global_ranking` within each explained class.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_features)
        Per-row attributions (each row explains the class given in ``classes``).
    names : sequence of str of length n_features
        Unique feature names.
    classes : ndarray of shape (n_rows,)
        The class each row's attribution explains (any labels; keys are ``str(label)``).
    n_boot, seed, max_boot_rows
        As in :func:`global_ranking`. Each class gets its own independent stream spawned from ``seed``.

    Returns
    -------
    dict of str to tuple of FeatureStat
        Keyed by class label in sorted label order.
    """
    A = _as_matrix(A, "attributions")  # finiteness is checked per class, with names
    classes = np.asarray(classes)
    if classes.shape != (A.shape[0],):
        raise UsageError(f"classes must have one label per attribution row ({A.shape[0]}), got shape {classes.shape}")
    labels, inverse = np.unique(classes, return_inverse=True)  # labels: (n_classes,), inverse: (n_rows,)
    streams = _as_rng(seed).spawn(len(labels))
    out: dict[str, tuple[FeatureStat, ...]] = {}
    for k, label in enumerate(labels):
        key = str(label.item() if hasattr(label, "item") else label)
        if key in out:
            raise UsageError(f"two class labels both read as '{key}'; use distinct class labels")
        out[key] = global_ranking(A[inverse == k], names, n_boot=n_boot, seed=streams[k], max_boot_rows=max_boot_rows)
    return out


def _check_int(value: object, what: str, *, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UsageError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _column_stats(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean |a|, mean a and population std of a per column, in float64, in row chunks (two passes)."""
    n, n_features = A.shape
    sum_abs = np.zeros(n_features)
    total = np.zeros(n_features)
    for r0 in range(0, n, _ROW_CHUNK):
        block = A[r0 : r0 + _ROW_CHUNK].astype(np.float64, copy=False)  # (chunk, F)
        sum_abs += np.abs(block).sum(axis=0)
        total += block.sum(axis=0)
    mean = total / n
    sq = np.zeros(n_features)
    for r0 in range(0, n, _ROW_CHUNK):
        dev = A[r0 : r0 + _ROW_CHUNK].astype(np.float64, copy=False) - mean  # (chunk, F)
        sq += np.einsum("ij,ij->j", dev, dev)
    return sum_abs / n, mean, np.sqrt(sq / n)


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, largest first, ties to the earlier column.

    values : (n_sets, n_features) -> ranks : (n_sets, n_features) int64
    """
    order = np.argsort(-values, axis=1, kind="stable")  # (n_sets, F): column index at each rank
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, values.shape[1] + 1)[None, :], axis=1)
    return ranks


def _bootstrap_mean_abs(
    A: np.ndarray, mean_abs: np.ndarray, *, n_boot: int, rng: np.random.Generator, max_rows: int
) -> np.ndarray:
    """Bootstrap replicates of mean |A| per column: (n_boot, n_features). See :func:`global_ranking`."""
    n = A.shape[0]
    m = min(n, max_rows)
    if m < n:
        rows = np.sort(rng.choice(n, size=m, replace=False))  # (m,), sorted for memory locality
        sub = np.abs(A[rows].astype(np.float64))  # (m, F)
    else:
        sub = np.abs(A.astype(np.float64))  # (n, F)
    boot = np.empty((n_boot, A.shape[1]))
    chunk = int(np.clip(_BOOT_CELLS // m, 1, _BOOT_CHUNK_MAX))
    for b0 in range(0, n_boot, chunk):
        k = min(chunk, n_boot - b0)
        draws = rng.integers(0, m, size=(k, m))  # (k, m): row drawn at each of m positions
        draws += (np.arange(k) * m)[:, None]  # offset each replicate so one bincount counts all
        counts = np.bincount(draws.ravel(), minlength=k * m).reshape(k, m)  # (k, m) multinomial counts
        boot[b0 : b0 + k] = (counts.astype(np.float64) @ sub) / m  # (k, F)
    if m < n:
        # rescaled m-out-of-n bootstrap: centre on the full-data estimate, shrink the spread to n rows
        boot = mean_abs + np.sqrt(m / n) * (boot - sub.mean(axis=0))
        np.maximum(boot, 0.0, out=boot)
    return boot
