"""The evidence ``target_leakage`` reads: how completely each feature, or feature group, alone determines the target.

One function of the audited rows, their labels and the grouped view of the features, so the tabular modality and
the tests compute it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.analysis.groups import Units, unit_values
from audit.analysis.separation import rule_separation
from audit.analysis.univariate import canonical_task, target_explains, univariate_lower_bound, univariate_power

__all__ = ["LeakScores", "leak_scores", "SEPARATION_PREFILTER"]

# classifiers: the rule search runs only on units whose neighbour tau reaches this (a perfect separator scores
# about 1 - n_classes / n there; 0.5 is a rule that fails on about an eighth of the rows)
SEPARATION_PREFILTER = 0.5


@dataclass(frozen=True, eq=False)
class LeakScores:
    """Per-unit arrays in the order of ``Units.names`` (NaN where not computed).

    Attributes
    ----------
    univariate : ndarray of shape (n_units,)
        :func:`audit.analysis.univariate_power`.
    univariate_low : ndarray of shape (n_units,)
        Its subsampling lower bound where the point score reaches the regression bar.
    reverse : ndarray of shape (n_units,)
        :func:`audit.analysis.univariate.target_explains` where a score is near a bar (evidence only).
    separation, separation_low : ndarray of shape (n_units,), optional
        Classifiers: :func:`audit.analysis.separation.rule_separation`; None for regressors.
    """

    univariate: np.ndarray
    univariate_low: np.ndarray
    reverse: np.ndarray
    separation: np.ndarray | None
    separation_low: np.ndarray | None


def leak_scores(X: np.ndarray, y: np.ndarray, task: str, units: Units, *, univariate_bar: float,
                seed: int = 0) -> LeakScores:
    """Leak scores of every unit (a group or an ungrouped column).

    A group is scored on the code of its members' joint value (which one-hot level is set); a group of members
    that are not all few-valued, whose code then says little, also gets each member's own score and keeps the
    best.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,) or (n_rows, n_outputs)
    task : str
        A task name of :func:`audit.analysis.univariate.canonical_task`.
    units : Units
    univariate_bar : float
        Regressors: the lower bound is computed for units whose point score reaches this.
    seed : int
    """
    V = unit_values(X, units)  # (n, U)
    u = univariate_power(V, y, task)
    classes = "classification" in canonical_task(task)
    sep = sep_low = None
    if classes:
        cand = np.flatnonzero(u >= SEPARATION_PREFILTER)
        sep, sep_low = rule_separation(V, y, cand, seed=seed)
        for k, members in enumerate(units.members):  # continuous members: the best member speaks for the group
            if len(members) > 1:
                m_u = univariate_power(X[:, list(members)], y, task)
                m_cand = [i for i, v in enumerate(m_u) if v >= SEPARATION_PREFILTER]
                if m_cand:
                    p, lo = rule_separation(X[:, list(members)], y, m_cand, seed=seed)
                    best = int(np.nanargmax(np.where(np.isfinite(lo), lo, -1.0)))
                    if not np.isfinite(sep_low[k]) or lo[best] > sep_low[k]:
                        sep[k], sep_low[k] = p[best], lo[best]
        near = np.flatnonzero(np.isfinite(sep) & (sep >= SEPARATION_PREFILTER))
        low = np.full(u.shape, np.nan)
    else:
        near = np.flatnonzero(u >= univariate_bar)
        low = univariate_lower_bound(V, y, task, near, seed=seed)
    y_rev = y if not classes else np.unique(np.asarray(y), return_inverse=True)[1].reshape(-1)
    rev = target_explains(V, y_rev, near)
    return LeakScores(univariate=u, univariate_low=low, reverse=rev, separation=sep, separation_low=sep_low)
