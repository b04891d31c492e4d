"""How well each feature alone predicts the target: a chance-corrected score in [0, 1], 1 for a perfect predictor.

Rows are sorted by the feature and each row's target is compared with the next row's. With ``d`` the squared
difference (regression) or a label mismatch (classification) and ``S = sum_i d(y_(i), y_(i+1))`` in feature
order, the score is

    1 - (S - S_min) / (E0[S] - S_min),

where ``E0[S]`` is the exact expectation of ``S`` when the feature is unrelated to the target (the rows in a
random order: ``2 SST`` for regression, ``(n^2 - sum_c n_c^2) / n`` label changes for classification) and
``S_min`` the smallest ``S`` any order of the rows can give (the rows sorted by the target: the sum of squared
gaps of the sorted target; ``n_classes - 1`` label changes). It is adjusted for chance the way the adjusted
Rand index is (Hubert & Arabie, 1985): ``(index - expected) / (best - expected)``. So:

- a feature that orders the target perfectly scores exactly 1, at any sample size and on any scale: a binary
  label plus a little noise, ``y`` itself, any increasing or decreasing function of ``y``;
- a feature that determines the target without ordering it (``label = |x| > 1``, ``y = sin(3x)``) scores
  ``1 - O(1 / n)``: a classification with ``m`` label switches along the feature scores
  ``1 - (m - n_classes + 1) / (E0 - n_classes + 1)``; ``|x| > 1`` on 200 normal rows (``m = 2``): about 0.99;
- an unrelated feature scores 0 in expectation at any sample size (the null expectation is exact, with ties
  too), with a spread of about ``1 / sqrt(n)`` (normal target, or two balanced classes); measured on 200 rows,
  20 draws of 30 unrelated standard-normal features: the largest of the 30 is on average 0.14 against a normal
  target, 0.16 against a balanced binary label and 0.09 against 4 classes, at worst 0.20, 0.27 and 0.14;
- in between it is an R^2: half the mean squared successive difference estimates the residual variance
  ``E[Var(Y | X)]`` left by the best function of the feature (von Neumann, 1941; Rice, 1984), so the score
  estimates the correlation ratio ``eta^2 = Var(E[Y | X]) / Var(Y)`` (Pearson, 1905), the R^2 of the best
  predictor built from the feature alone, without fitting one: ``y = x + noise`` with R^2 0.5 scores about 0.5.
  For class labels (``d`` is half the squared distance of one-hot vectors) it estimates Goodman & Kruskal's
  (1954) tau, the share of the label's Gini impurity that the feature explains; for two classes the unadjusted
  ``1 - S / E0`` is exactly Chatterjee's (2021) xi.

Each row is predicted by another row only, which is what leave-one-out did for the binned score this replaces
(whose boundary bins kept a perfect separator at 0.82-0.97). Rows tied on the feature have no order among
themselves: ``S`` is averaged over all orders of each tie group, in closed form (``2 SS_g`` inside a group,
``var_g + var_h + (mean_g - mean_h)^2`` across the boundary of groups ``g`` and ``h``; the same with class
counts), so the score is deterministic and ``E0`` stays exact.

Why not ``2 |AUC - 1/2|`` (Gini coefficient, Somers' D) for classes, alone or as the larger of two: it is 1 for
a perfect monotone separator, as this score is, but it measures how well the feature ranks the classes, not how
much of the label it determines, so legitimate features reach a leak bar: 'worst perimeter' of scikit-learn's
breast-cancer set has AUC 0.975, Gini 0.951, and explains 0.74 of the diagnosis by this score. (Iris' petal
width, which separates setosa but not the other two classes, has a prevalence-weighted one-vs-rest Gini of
about 0.67 and this score 0.90.) This score is on one R^2 scale for every task, so one threshold means one thing.

References: J. von Neumann (1941), Ann. Math. Statist. 12, 367-395; J. Rice (1984), Ann. Statist. 12,
1215-1230; K. Pearson (1905), Drapers' Company Research Memoirs; L. A. Goodman & W. H. Kruskal (1954), JASA 49,
732-764; S. Chatterjee (2021), "A new coefficient of correlation", JASA 116, 2009-2022; L. Hubert & P. Arabie
(1985), J. Classification 2, 193-218.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.analysis._checks import _as_matrix, _check_finite
from audit.errors import UsageError

__all__ = [
    "univariate_power",
    "univariate_lower_bound",
    "univariate_null_quantile",
    "target_explains",
    "univariate_measure",
    "canonical_task",
    "TASKS",
    "MEASURES",
]

# canonical task names; _ALIASES maps the other accepted names (the CLI's --task words) onto them
TASKS = ("regression", "multioutput_regression", "binary_classification", "classification")
_ALIASES = {
    "multioutput": "multioutput_regression",
    "binary": "binary_classification",
    "multiclass": "classification",
    "multiclass_classification": "classification",
    "image_classification": "classification",
}

# what the score is called, per task, for messages and evidence
MEASURES = {
    "regression": "neighbour R^2",
    "multioutput_regression": "best-output neighbour R^2",
    "binary_classification": "neighbour tau",
    "classification": "neighbour tau",
}


def canonical_task(task: str) -> str:
    """The canonical name of a task, one of :data:`TASKS`.

    Parameters
    ----------
    task : str
        A name of :data:`TASKS` or an alias: ``"binary"``, ``"multiclass"``, ``"multiclass_classification"``,
        ``"multioutput"``, ``"image_classification"`` (the names of :data:`audit.analysis.task.TASK_NAMES` and
        of ``--task``).

    Returns
    -------
    str
    """
    if isinstance(task, str):
        if task in TASKS:
            return task
        if task in _ALIASES:
            return _ALIASES[task]
    raise UsageError(f"unknown task {task!r}; use one of {', '.join(TASKS + tuple(_ALIASES))}")


def univariate_measure(task: str) -> str:
    """Name of the score :func:`univariate_power` computes for ``task``, for messages.

    Parameters
    ----------
    task : str
        As for :func:`univariate_power`.

    Returns
    -------
    str
        ``"neighbour R^2"`` (regression; ``"best-output neighbour R^2"`` with several outputs) or
        ``"neighbour tau"`` (classification).
    """
    return MEASURES[canonical_task(task)]


def univariate_power(X: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """Score of each feature alone as a predictor of the target: 1 when it determines it, ~0 when unrelated.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Feature matrix. Must be finite.
    y : ndarray of shape (n_rows,), or (n_rows, n_outputs) for ``multioutput_regression``
        Target: numbers for regression, any labels (numbers, strings, booleans) for classification.
    task : {"regression", "multioutput_regression", "binary_classification", "classification"}
        Also accepted: ``"binary"``, ``"multiclass"``, ``"multiclass_classification"``, ``"multioutput"``.
        ``classification`` takes any number of classes (with two it is ``binary_classification``);
        ``binary_classification`` refuses more than two. ``multioutput_regression`` scores each output
        separately and keeps each feature's best.

    Returns
    -------
    ndarray of shape (n_features,)
        Scores in [0, 1] (module docstring): exactly 1 for a feature that orders the target perfectly, about 1
        for one that determines it in any other way, about 0 for an unrelated one, 0 for a constant one. All
        zeros when the target is constant (nothing to predict) or there are fewer than 3 rows.

    Notes
    -----
    One sort per feature and a few linear passes over it: 200,000 rows times 100 features take seconds.
    """
    task = canonical_task(task)
    X = _as_matrix(X, "feature matrix", finite="data")
    n, n_features = X.shape
    y = np.asarray(y)
    regression = task in ("regression", "multioutput_regression")
    if task == "multioutput_regression":
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[0] != n or y.shape[1] == 0:
            raise UsageError(f"a multi-output target must have shape ({n}, n_outputs), got shape {y.shape}")
    elif y.shape != (n,):
        hint = "; use task 'multioutput_regression'" if regression and y.ndim == 2 else ""
        raise UsageError(f"target must have one value per row ({n}), got shape {y.shape}{hint}")
    if regression:
        if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
            raise UsageError(f"a regression target must be numeric, got dtype {y.dtype}")
        y = y.astype(np.float64)
        _check_finite(y, "target", "data")
    elif y.dtype.kind == "f":
        _check_finite(y, "target", "data")
    out = np.zeros(n_features)
    if n < 3:
        return out
    if regression:
        Y = y.reshape(n, -1)
        Y = Y[:, np.ptp(Y, axis=0) > 0]  # (n_rows, n_outputs): constant outputs have nothing to predict
        if Y.shape[1] == 0:
            return out
        Y = Y - Y.mean(axis=0)  # centred: sums of squares without cancellation
        s_min = np.sum(np.diff(np.sort(Y, axis=0), axis=0) ** 2, axis=0)  # (n_outputs,) rows sorted by y
        span = 2.0 * np.einsum("ij,ij->j", Y, Y) - s_min  # E0[S] - S_min, E0[S] = 2 SST
        keep = span > 0
        if not keep.any():
            return out
        Y, s_min, span = Y[:, keep], s_min[keep], span[keep]
        for j in range(n_features):
            out[j] = np.max(1.0 - (_succ_sq(X[:, j], Y) - s_min) / span)
    else:
        _, codes = np.unique(y, return_inverse=True)  # codes: (n_rows,) in 0..n_classes-1
        codes = codes.reshape(-1)
        counts = np.bincount(codes).astype(np.float64)  # (n_classes,)
        k = len(counts)
        if task == "binary_classification" and k > 2:
            raise UsageError(f"a binary target has at most 2 classes, got {k}; use task 'classification'")
        span = (n * n - float(counts @ counts)) / n - (k - 1)  # E0[changes] - min changes
        if k < 2 or span <= 0:
            return out  # one class, or every row its own class: nothing a feature could predict
        for j in range(n_features):
            out[j] = 1.0 - (_changes(X[:, j], codes, k) - (k - 1)) / span
    return np.clip(out, 0.0, 1.0)


def univariate_lower_bound(
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    columns: Sequence[int],
    *,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    max_rows: int = 20_000,
) -> np.ndarray:
    """Lower end of a subsampling interval of :func:`univariate_power` for some columns: the ``(1 - level) / 2``
    quantile of the score on random halves of the rows, drawn without replacement.

    A feature that truly determines the target keeps its score of 1 in every subsample (the rows stay perfectly
    ordered), while a strong real feature scored on a few dozen rows (iris petal length on 45 rows: 0.96) falls
    well below it in many; the lower bound tells the two apart where the point score cannot. Halves, not a
    bootstrap: a bootstrap resample repeats rows, each copy sorts beside itself with the same target, and the
    score of a resample then sits above the score of the data (iris petal width on 150 rows: 0.896, bootstrap
    2.5% quantile 0.848 but wine's flavanoids 0.61 -> 0.67), so its "lower bound" was no bound. A half-sample has
    the spread of a sample half the size, which makes the bound conservative.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,) or (n_rows, n_outputs)
    task : str
        As for :func:`univariate_power`.
    columns : sequence of int
        The columns to resample (the others get NaN): the bootstrap costs ``n_boot`` scores per column.
    n_boot, seed, level
        Resamples, their seed and the interval's coverage.
    max_rows : int
        Resamples draw this many rows at most (from a uniform subsample): beyond it the score barely varies and
        the bootstrap would only cost time.

    Returns
    -------
    ndarray of shape (n_features,)
        The ``(1 - level) / 2`` quantile of the resampled scores; NaN for columns not asked for.
    """
    return _resampled_quantile(
        X, y, task, columns, draws=n_boot, q=(1.0 - level) / 2.0, shuffle_target=False, seed=seed,
        max_rows=max_rows,
    )


def univariate_null_quantile(
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    columns: Sequence[int],
    *,
    n_perm: int = 200,
    q: float = 0.99,
    seed: int = 0,
    max_rows: int = 20_000,
) -> np.ndarray:
    """The ``q`` quantile of :func:`univariate_power` when the target is shuffled: what a column that carries no
    information about the target scores by chance on these rows (a permutation test's critical value).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,) or (n_rows, n_outputs)
    task : str
        As for :func:`univariate_power`.
    columns : sequence of int
        The columns to test (the others get NaN).
    n_perm, q, seed
        Shuffles of the target, the quantile and the seed.
    max_rows : int
        At most this many rows (a uniform subsample) take part.

    Returns
    -------
    ndarray of shape (n_features,)
        A column scoring above its value is informative at level ``1 - q``; NaN for columns not asked for.
    """
    return _resampled_quantile(
        X, y, task, columns, draws=n_perm, q=q, shuffle_target=True, seed=seed, max_rows=max_rows
    )


def _resampled_quantile(
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    columns: Sequence[int],
    *,
    draws: int,
    q: float,
    shuffle_target: bool,
    seed: int,
    max_rows: int,
) -> np.ndarray:
    """The ``q`` quantile of :func:`univariate_power` over ``draws`` resamples of the rows (a bootstrap) or
    shuffles of the target (a permutation null), for ``columns``; NaN elsewhere."""
    X = np.asarray(X)
    y = np.asarray(y)
    out = np.full(X.shape[1], np.nan)
    cols = [int(c) for c in columns]
    if not cols or X.shape[0] < 3:
        return out
    rng = np.random.default_rng(seed)
    if X.shape[0] > max_rows:
        keep = rng.choice(X.shape[0], size=max_rows, replace=False)
        X, y = X[keep], y[keep]
    Xc = X[:, cols]  # (n, len(cols))
    half = max(Xc.shape[0] // 2, 3)
    scores = np.empty((draws, len(cols)))
    for b in range(draws):
        if shuffle_target:
            scores[b] = univariate_power(Xc, y[rng.permutation(y.shape[0])], task)
        else:  # half the rows without replacement: a resample with repeats puts each copy beside itself
            idx = rng.choice(Xc.shape[0], size=half, replace=False)
            scores[b] = univariate_power(Xc[idx], y[idx], task)
    out[cols] = np.quantile(scores, q, axis=0)
    return out


def target_explains(X: np.ndarray, y: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """The reverse of :func:`univariate_power`: how much of each column the target explains (the neighbour R^2
    of the column sorted by the target; for class labels the correlation ratio, the share of the column's variance
    between the classes).

    A column derived from the target (the label plus a little noise, a copy of the price) is nearly a function of
    it and scores about 1; a real feature that happens to separate the classes still varies within each class
    (iris petal length: 0.92-0.93 on 45 rows, against 0.998 for the label plus N(0, 0.01)).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,) or (n_rows, n_outputs)
        Numbers or class codes; with several outputs the best output counts.
    columns : sequence of int
        The columns to score (the others get NaN).

    Returns
    -------
    ndarray of shape (n_features,)
    """
    X = np.asarray(X, dtype=np.float64)
    out = np.full(X.shape[1], np.nan)
    cols = [int(c) for c in columns]
    if not cols:
        return out
    Y = np.asarray(y)
    if Y.ndim == 1:
        Y = Y[:, None]
    if not np.issubdtype(Y.dtype, np.number):
        Y = np.unique(Y, return_inverse=True)[1].reshape(-1, 1)
    Y = Y.astype(np.float64)
    for c in cols:
        out[c] = univariate_power(Y, X[:, c], "regression").max()
    return out


def _sorted_groups(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order of x (n,), and the starts (G,) and sizes (G,) of its tie groups in sorted order."""
    x = np.ascontiguousarray(x)  # a column of a C-ordered matrix sorts twice as fast once contiguous
    order = np.argsort(x)  # ties need no stable order: the statistics average over their orders
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    sizes = np.diff(np.r_[starts, len(x)])
    return order, starts, sizes


def _succ_sq(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Sum of squared successive differences of each column of Y (n, n_outputs) in x order, averaged over the
    orders of tied x: (n_outputs,)."""
    order, starts, sizes = _sorted_groups(x)
    Ys = Y[order]  # (n, n_outputs) in feature order
    if len(starts) == len(x):  # no ties
        d = np.diff(Ys, axis=0)
        return np.einsum("ij,ij->j", d, d)
    s1 = np.add.reduceat(Ys, starts, axis=0)  # (n_groups, n_outputs) group sums
    s2 = np.add.reduceat(Ys * Ys, starts, axis=0)
    g = sizes[:, None].astype(np.float64)
    mean = s1 / g
    ss = np.maximum(s2 - s1 * mean, 0.0)  # within-group sums of squares
    var = ss / g
    # inside a group of g rows: (g - 1) pairs of two random members, 2 ss / (g - 1) each; across the boundary of
    # two groups: a random member of each
    return 2.0 * ss.sum(axis=0) + (var[:-1] + var[1:] + (mean[1:] - mean[:-1]) ** 2).sum(axis=0)


def _changes(x: np.ndarray, codes: np.ndarray, k: int) -> float:
    """Number of label changes between successive rows in x order, averaged over the orders of tied x."""
    order, starts, sizes = _sorted_groups(x)
    cs = codes[order]  # (n,) labels in feature order
    n_groups = len(starts)
    if n_groups == len(x):  # no ties
        return float(np.count_nonzero(cs[1:] != cs[:-1]))
    group = np.repeat(np.arange(n_groups, dtype=np.int64), sizes)  # (n,)
    keys, t = np.unique(group * k + cs, return_counts=True)  # (n_pairs,): each (group, class) present, its count
    g_of = keys // k
    t = t.astype(np.float64)
    g = sizes.astype(np.float64)
    sq = np.bincount(g_of, weights=t * t, minlength=n_groups)  # sum_c t_c^2 per group
    within = float(np.sum(g - sq / g))  # (g - 1) P(two random members differ), summed over groups
    nxt = np.minimum(np.searchsorted(keys, keys + k), len(keys) - 1)  # the same class in the next group?
    hit = keys[nxt] == keys + k
    cross = np.bincount(g_of[hit], weights=t[hit] * t[nxt[hit]], minlength=n_groups)[:-1]  # (n_groups - 1,)
    return within + float(np.sum(1.0 - cross / (g[:-1] * g[1:])))
