"""How completely one feature alone separates the classes: the best single-feature rule and how sure we are of it.

A target leak in a classification table is a column that, on its own, tells the class: a follow-up time that is 0
for one class and 1-120 days for the other, a record number assigned after the rows were sorted by outcome, a
category whose levels map onto the classes, the label plus noise. Such a column need not be a near-copy of the
label (a follow-up time varies a lot within its class), so the question asked here is only "how well does the
best rule on this column alone classify the rows", on its own terms:

- the **rule** cuts the column's sorted values into at most ``n_classes + 1`` intervals and gives each the class
  most of its rows have (the weights make it maximise *balanced* accuracy, so a majority class is no free win);
  one more interval than classes admits a class in the middle or at both ends (``label = |x| > 1``). A column
  with few distinct values (at most :data:`MAX_LEVELS`, with at least :data:`MIN_ROWS_PER_LEVEL` rows per value
  on average) may instead give every value its own class: a label-encoded or one-hot category whose levels map
  onto the classes in any order;
- its **balanced accuracy** (the mean over classes of the share of the class's rows the rule gets right) is 1 for
  a perfect separator and ``1 - v`` for a rule that fails on a share ``v`` of each class;
- the score is the rule's **worst-class recall** (a column that separates one class of three perfectly and
  mixes the other two is no leak), and its **lower bound** the smallest over classes of the one-sided 95% Wilson
  lower bound of each class's recall: a perfect separator with ``m`` rows in its smallest class scores
  ``m / (m + 2.706)``, so 15 rows give 0.847, 36 give 0.930 and 200 give 0.987. A perfect split of a small sample
  (on some 45-row iris splits petal width separates all three classes) is no proof that the column determines
  the class.

The rule is chosen on the rows it is scored on, an optimistic choice but a mild one: it has at most
``n_classes`` cut points (or ``MAX_LEVELS`` labels on a discrete column with ``MIN_ROWS_PER_LEVEL`` rows per
label).

Measured on scikit-learn's bundled sets at raw scale (every feature, the whole set and random subsets of 171, 60
and 45 rows): the largest lower bound is breast cancer 0.892 ('worst concave points' on 171 rows; worst-class
recall 0.94), iris 0.833 (petal length, 150 rows; 0.92), wine 0.52, digits 0.05, so the detectors' bar of 0.93 on
the lower bound (``Thresholds.leak_separation``) keeps them out; one-vs-rest, iris setosa against the rest (truly
separable by petal size) reaches 0.949. A follow-up time that is 0 for one class, the label plus N(0, 0.15^2), a
shuffled record number of rows sorted by the label and a category mapped onto the classes score 1, with lower
bounds 0.899 on 60 rows, 0.957 on 120 and 0.982 on 300; a rule that fails on 3% of the rows scores 0.95-0.96,
with lower bounds 0.881 (120 rows), 0.907 (300) and 0.944 (1,000).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

__all__ = ["rule_separation", "MAX_LEVELS", "MIN_ROWS_PER_LEVEL", "MAX_GROUPS"]

MAX_LEVELS = 32  # a column with at most this many distinct values may label each value on its own ...
MIN_ROWS_PER_LEVEL = 10  # ... when it has at least this many rows per value on average
MAX_GROUPS = 512  # sorted values are merged into at most this many consecutive bins before the interval search


def rule_separation(
    X: np.ndarray,
    y: np.ndarray,
    columns: Sequence[int] | None = None,
    *,
    level: float = 0.95,
    max_rows: int = 50_000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced accuracy of the best single-feature rule per column, and its lower confidence bound.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Feature matrix (finite).
    y : ndarray of shape (n_rows,)
        Class labels (any values).
    columns : sequence of int, optional
        The columns to score (default all); the others get NaN.
    level : float, default=0.95
        Coverage of each class's lower bound (one-sided).
    max_rows : int, default=50_000
        At most this many rows (a uniform subsample) take part.
    seed : int, default=0
        Seed of that subsample.

    Returns
    -------
    point : ndarray of shape (n_features,)
        The smallest per-class recall of the best rule, in [0, 1]: 1 for a perfect separator, ``1 - v`` for a rule
        that fails on a share ``v`` of its worst class. NaN for columns not scored, and everywhere with fewer
        than two classes.
    low : ndarray of shape (n_features,)
        The smallest over classes of the one-sided ``level`` Wilson lower bound of each class's recall under
        that rule.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).reshape(-1)
    n, n_features = X.shape
    point = np.full(n_features, np.nan)
    low = np.full(n_features, np.nan)
    cols = range(n_features) if columns is None else [int(c) for c in columns]
    if n > max_rows:
        keep = np.random.default_rng(seed).choice(n, size=max_rows, replace=False)
        X, y, n = X[keep], y[keep], max_rows
    _, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1)
    class_n = np.bincount(codes).astype(np.float64)  # (k,)
    k = class_n.size
    if k < 2 or n < 2:
        return point, low
    z = NormalDist().inv_cdf(level)  # one-sided, per class
    weight = 1.0 / (k * class_n)  # a correct row of class c adds this to the balanced accuracy
    for j in cols:
        counts = _group_counts(X[:, j], codes, k)  # (G, k) class counts per distinct value, in value order
        correct = _best_rule(counts, weight, k)  # (k,) rows of each class the rule gets right
        point[j] = float(np.min(correct / class_n))
        low[j] = float(np.min(_wilson_low(correct, class_n, z)))
    return point, low


def _group_counts(x: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Class counts per distinct value of x, in increasing value order: (G, k)."""
    values, inv = np.unique(x, return_inverse=True)
    counts = np.zeros((values.size, k))
    np.add.at(counts, (inv.reshape(-1), codes), 1.0)
    return counts


def _best_rule(counts: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Correct rows per class, (k,), of the rule with the highest balanced accuracy (module notes)."""
    n = counts.sum()
    best = _best_intervals(counts, weight, k + 1)
    if counts.shape[0] <= MAX_LEVELS and n >= MIN_ROWS_PER_LEVEL * counts.shape[0]:
        levels = counts.shape[0]
        label = np.argmax(counts * weight, axis=1)  # each value its own class
        by_level = counts[np.arange(levels), label]
        discrete = np.bincount(label, weights=by_level, minlength=k)
        if discrete @ weight > best @ weight:
            best = discrete
    return best


def _best_intervals(counts: np.ndarray, weight: np.ndarray, max_segments: int) -> np.ndarray:
    """Correct rows per class of the best rule that labels at most ``max_segments`` consecutive runs of values.

    Dynamic programme over the (at most :data:`MAX_GROUPS`) value bins: ``score[s, i]`` is the best weighted
    number of correct rows of bins ``0..i-1`` cut into ``s`` runs, each labelled with its best class."""
    counts = _merge_bins(counts, MAX_GROUPS)
    G, k = counts.shape
    prefix = np.vstack([np.zeros((1, k)), np.cumsum(counts, axis=0)])  # (G + 1, k)
    wprefix = prefix * weight  # weighted counts
    S = min(max_segments, G)
    score = np.full((S + 1, G + 1), -np.inf)
    score[0, 0] = 0.0
    back = np.zeros((S + 1, G + 1), dtype=np.int64)
    label = np.zeros((S + 1, G + 1), dtype=np.int64)
    for s in range(1, S + 1):
        for i in range(1, G + 1):
            # a run of bins j..i-1 appended to the best s-1 runs of bins 0..j-1, for every j < i
            seg = wprefix[i] - wprefix[:i]  # (i, k)
            cls = seg.argmax(axis=1)  # (i,)
            total = score[s - 1, :i] + seg[np.arange(i), cls]
            j = int(np.argmax(total))
            score[s, i], back[s, i], label[s, i] = total[j], j, cls[j]
    s = int(np.argmax(score[:, G]))
    correct = np.zeros(k)
    i = G
    while s > 0 and i > 0:  # walk the chosen runs back
        j, c = back[s, i], label[s, i]
        correct[c] += prefix[i, c] - prefix[j, c]
        i, s = j, s - 1
    return correct


def _merge_bins(counts: np.ndarray, max_groups: int) -> np.ndarray:
    """Consecutive value groups merged into at most ``max_groups`` bins.

    First, losslessly, runs of consecutive groups that hold one class only (an optimal rule never cuts inside
    such a run: moving the cut to either end of it loses nothing); then, if still too many, into bins of about
    equal row counts (a cut inside a bin is then not available, so the score can only come out lower)."""
    pure = np.count_nonzero(counts, axis=1) == 1  # (G,)
    cls = np.where(pure, counts.argmax(axis=1), -1)
    new_run = np.r_[True, (cls[1:] != cls[:-1]) | (cls[1:] < 0)]  # a mixed group always starts its own bin
    counts = np.add.reduceat(counts, np.flatnonzero(new_run), axis=0)
    G = counts.shape[0]
    if max_groups >= G:
        return counts
    rows = np.cumsum(counts.sum(axis=1))
    edges = np.searchsorted(rows, np.linspace(0, rows[-1], max_groups + 1)[1:-1], side="left")
    starts = np.unique(np.r_[0, edges + 1])
    starts = starts[starts < G]
    return np.add.reduceat(counts, starts, axis=0)


def _wilson_low(correct: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """Wilson score lower bound of a proportion ``correct / n`` at normal quantile ``z``: (k,)."""
    p = correct / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(np.maximum(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / denom
    return np.clip(centre - half, 0.0, 1.0)
