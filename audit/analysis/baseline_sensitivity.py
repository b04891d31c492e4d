"""Does the global ranking depend on the baseline? The rankings of two attribution matrices of the same rows.

Integrated Gradients explains ``F(x) - F(x')``: a different reference point ``x'`` can give a different ranking
(Sundararajan, Taly & Yan, ICML 2017, section 3.2; Sturmfels, Lundberg & Lee, "Visualizing the Impact of Feature
Attribution Baselines", Distill 2020). :func:`baseline_sensitivity` compares the mean-|attribution| ranking under
the run's baseline with the one under a second, also reasonable, baseline on the same rows: the Spearman
correlation of the two rankings with a bootstrap interval over rows (both rankings from the same resampled rows),
and whether the top feature changes beyond its intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.analysis.agreement import spearman
from audit.errors import UsageError
from audit.results import BaselineSensitivity

__all__ = ["baseline_sensitivity", "compared_features", "TOP_K", "MIN_COMPARED"]

TOP_K = 5  # features listed per ranking
MIN_COMPARED = 3  # fewest features a rank correlation is computed over


def compared_features(share_a: np.ndarray, share_b: np.ndarray, min_share: float) -> np.ndarray:
    """Columns whose ranks are compared: those with real attribution under either baseline.

    Parameters
    ----------
    share_a, share_b : ndarray of shape (n_features,)
        Shares of mean |attribution| under the two baselines (each sums to 1).
    min_share : float
        A feature has real attribution from this share on (``real_share_factor / n_features``).

    Returns
    -------
    ndarray of int
        Sorted column indices: the features at or above ``min_share`` under either baseline; when fewer than
        :data:`MIN_COMPARED` (or all features when there are fewer), the union of the top 3 of each ranking.
        The ranks of features neither ranking relies on are noise and would drag the correlation down on a
        healthy model.
    """
    F = share_a.size
    keep = np.flatnonzero((share_a >= min_share) | (share_b >= min_share))
    if keep.size >= min(MIN_COMPARED, F):
        return keep
    top_a = np.argsort(-share_a, kind="stable")[:MIN_COMPARED]
    return np.union1d(top_a, np.argsort(-share_b, kind="stable")[:MIN_COMPARED])  # sorted


def _shares(A: np.ndarray) -> np.ndarray:
    m = np.abs(A).mean(axis=0)  # (F,)
    total = m.sum()
    return m / total if total > 0 else np.full(m.shape, 1.0 / m.size)


def _spearman_or_nan(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return spearman(a, b)


def baseline_sensitivity(
    A_chosen: np.ndarray,
    A_second: np.ndarray,
    names: Sequence[str],
    *,
    chosen: str,
    second: str,
    min_share: float,
    n_boot: int = 200,
    seed: int = 0,
) -> BaselineSensitivity:
    """Compare the global rankings of two attribution matrices of the same rows.

    Parameters
    ----------
    A_chosen, A_second : ndarray of shape (n_rows, n_features)
        Attributions of the same rows (same explained outputs) under the run's baseline and the second one.
    names : sequence of str
        Feature names, column order.
    chosen, second : str
        The two baselines, for the record.
    min_share : float
        Real-attribution share (see :func:`compared_features`).
    n_boot : int, default=200
        Bootstrap resamples of the rows (at least 1 gives an interval; 0: the interval is the point).
    seed : int, default=0

    Returns
    -------
    BaselineSensitivity
        ``spearman`` of the two mean-|attribution| vectors over the compared features, its percentile 95%
        bootstrap interval, the top :data:`TOP_K` of each ranking with their shares, and ``top_changed``: the top
        features differ and, over the same resamples, the chosen top leads the second top under the chosen
        baseline *and* trails it under the second baseline in at least 97.5% of resamples each (both paired
        95% intervals of the share difference exclude 0).
    """
    Ac = np.asarray(A_chosen, dtype=np.float64)
    As = np.asarray(A_second, dtype=np.float64)
    if Ac.ndim != 2 or Ac.shape != As.shape or Ac.shape[1] != len(names):
        raise UsageError(
            f"attributions must be two (n_rows, {len(names)}) arrays of the same shape, got {Ac.shape} and {As.shape}"
        )
    if Ac.shape[0] < 2:
        raise UsageError(f"the baseline sensitivity check needs at least 2 rows, got {Ac.shape[0]}")
    if not (np.isfinite(Ac).all() and np.isfinite(As).all()):
        raise UsageError("attributions hold NaN or infinite values; the baseline sensitivity check needs finite ones")
    n = Ac.shape[0]
    sc, ss = _shares(Ac), _shares(As)
    cols = compared_features(sc, ss, min_share)
    rho = _spearman_or_nan(sc[cols], ss[cols])
    top_c, top_s = int(np.argmax(sc)), int(np.argmax(ss))
    rng = np.random.default_rng(seed)
    boots, lead_c, lead_s = [], [], []
    absc, abss = np.abs(Ac), np.abs(As)
    for _ in range(max(int(n_boot), 0)):
        idx = rng.integers(0, n, n)
        bc, bs = absc[idx].mean(0), abss[idx].mean(0)  # (F,) each
        boots.append(_spearman_or_nan(bc[cols], bs[cols]))
        lead_c.append(bc[top_c] - bc[top_s])  # > 0: the chosen top leads under the chosen baseline
        lead_s.append(bs[top_s] - bs[top_c])  # > 0: the second top leads under the second baseline
    b = np.asarray(boots, dtype=np.float64)
    b = b[np.isfinite(b)]
    lo, hi = (float(np.quantile(b, 0.025)), float(np.quantile(b, 0.975))) if b.size else (rho, rho)
    changed = top_c != top_s
    if changed and lead_c:  # without resamples a changed top counts as changed
        changed = bool(np.quantile(lead_c, 0.025) > 0 and np.quantile(lead_s, 0.025) > 0)
    oc, os_ = np.argsort(-sc, kind="stable")[:TOP_K], np.argsort(-ss, kind="stable")[:TOP_K]
    return BaselineSensitivity(
        chosen=str(chosen), second=str(second), spearman=float(rho), ci_low=lo, ci_high=hi, rows=int(n),
        features_compared=int(cols.size), top_chosen=tuple(str(names[j]) for j in oc),
        top_second=tuple(str(names[j]) for j in os_), shares_chosen=tuple(float(sc[j]) for j in oc),
        shares_second=tuple(float(ss[j]) for j in os_), top_changed=changed,
    )  # fmt: skip
