"""Agreement between rankings: Spearman's rank correlation, per-slice profiles, and attribution-weighted drift.

- :func:`spearman`: Spearman (1904) rank correlation with average ranks for ties.
- :func:`slice_profiles`: does the model use the same features in every group of a column, and do they push the
  output the same way there (the sign of a feature's average local effect, in the group and in the other rows,
  with bootstrap intervals)?
- :func:`drift`: two-sample Kolmogorov-Smirnov statistic (Smirnov, 1948) per feature between a reference data
  set and the audited one, weighted by the feature's attribution share: drift matters where the model looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from audit.analysis._checks import _as_matrix, _check_finite, _check_names
from audit.errors import UsageError
from audit.results import DriftStat, FeatureStat, SliceDirection, SliceProfile

__all__ = ["spearman", "rank_agreement", "slice_profiles", "ks_statistic", "drift", "TOP_K", "DIRECTION_ROWS"]

TOP_K = 5  # features listed per slice, and global top features whose direction is measured per slice
DIRECTION_ROWS = 4000  # rows per side a direction interval resamples at most (a uniform subset beyond that)
_ALPHA = 0.05  # 95% intervals


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two paired samples, ties given their average rank.

    Parameters
    ----------
    a, b : ndarray of shape (n,)
        Paired finite values, ``n >= 2``.

    Returns
    -------
    float
        In [-1, 1]; NaN when either sample is constant (the correlation is undefined).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise UsageError(f"spearman needs two 1-D samples of equal length, got shapes {a.shape} and {b.shape}")
    if a.size < 2:
        raise UsageError(f"spearman needs at least 2 pairs, got {a.size}")
    _check_finite(a, "first sample", "data")
    _check_finite(b, "second sample", "data")
    ra = _average_ranks(a) - (a.size + 1) / 2  # centred ranks, (n,)
    rb = _average_ranks(b) - (b.size + 1) / 2
    denom = np.sqrt((ra @ ra) * (rb @ rb))
    if denom == 0.0:
        return float("nan")
    return float(np.clip((ra @ rb) / denom, -1.0, 1.0))


def rank_agreement(stats_a: Sequence[FeatureStat], stats_b: Sequence[FeatureStat]) -> float:
    """Spearman correlation of two rankings' mean |attribution|, over the features both contain (matched by name).

    Parameters
    ----------
    stats_a, stats_b : sequence of FeatureStat
        Two rankings, e.g. our engine's and Captum's, or one class's and the global one.

    Returns
    -------
    float
        In [-1, 1]; NaN when either side's mean |attribution| is constant over the shared features.
    """
    b_by_name = {s.name: s.mean_abs for s in stats_b}
    shared = [(s.mean_abs, b_by_name[s.name]) for s in stats_a if s.name in b_by_name]
    if len(shared) < 2:
        raise UsageError(f"rank agreement needs at least 2 features present in both rankings, got {len(shared)}")
    pairs = np.asarray(shared)  # (n_shared, 2)
    return spearman(pairs[:, 0], pairs[:, 1])


def slice_profiles(
    A: np.ndarray,
    names: Sequence[str],
    groups: np.ndarray,
    *,
    min_rows: int = 30,
    column: str = "",
    X: np.ndarray | None = None,
    G: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[SliceProfile, ...]:
    """Attribution profile of each group of a slicing column, compared with the global profile.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_features)
        Per-row attributions.
    names : sequence of str of length n_features
        Unique feature names.
    groups : ndarray of shape (n_rows,)
        Group label of each row (any values; a group is named ``str(label)``).
    min_rows : int, default=30
        Groups with fewer rows are left out (their profile is too noisy to compare).
    column : str, default=""
        Name of the slicing column, copied into each profile.
    X : ndarray of shape (n_rows, n_features), optional
        The feature values behind ``A``; with ``G`` each profile gets ``directions``.
    G : ndarray of shape (n_rows, n_features), optional
        The gradient of the explained output at each row. For each of the global top :data:`TOP_K` features (by
        mean |attribution|), the average local effect ``mean(G[:, j]) * std(X[:, j])`` in the group and in the
        other rows, each with a 95% percentile bootstrap interval. Why gradients and not attributions: an
        attribution is measured from the baseline, so in a segment where a feature's slope is reversed, a baseline
        that sits in another segment (a zero baseline of a 0/1 segment input) mixes both slopes along the path
        and the attribution can keep its sign; the local slope cannot.
    classes : ndarray of shape (n_rows,), optional
        The output each row explains (a classifier explaining each row's predicted class). The two sides of a
        direction are then compared within one class: the gradients of different classes' scores can point
        opposite ways without any change in the model. Each direction uses the class whose rows give both sides
        at least ``min_rows`` rows and the two intervals farthest apart (the clearest contrast); None (or one
        value): every row explains the same output.
    n_boot : int, default=200
        Bootstrap replicates of each direction interval (0: the interval is the point estimate).
    seed : int, default=0
        Seed of those replicates.

    Returns
    -------
    tuple of SliceProfile
        One per group with at least ``min_rows`` rows, in sorted label order: ``shares`` (feature -> share of
        the group's mean |attribution|, in column order), ``top_features`` (up to 5, largest first, ties to the
        earlier column), ``spearman_vs_all`` (Spearman of the group's mean |attribution| against the
        global one; NaN when either is constant) and ``directions`` (with ``X`` and ``G``; a side with fewer than
        ``min_rows`` rows gives none, nor does a feature constant within the group, such as the slicing column
        itself when it is a model input: "more of it" does not happen there).
    """
    A = _as_matrix(A, "attributions")
    n, n_features = A.shape
    names = _check_names(names, n_features, "attributions")
    _check_finite(A, "attributions", "attribution", names)
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise UsageError(f"groups must have one label per row ({n}), got shape {groups.shape}")
    if isinstance(min_rows, bool) or not isinstance(min_rows, (int, np.integer)) or min_rows < 1:
        raise UsageError(f"min_rows must be a whole number >= 1, got {min_rows!r}")
    try:
        labels, inverse = np.unique(groups, return_inverse=True)  # (n_groups,), (n_rows,)
    except TypeError:  # mixed types (e.g. strings and None): compare as text
        labels, inverse = np.unique(groups.astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    n_groups = len(labels)
    abs_a = np.abs(A.astype(np.float64, copy=False))  # (n_rows, F)
    counts = np.bincount(inverse, minlength=n_groups)  # (n_groups,)
    global_mean = abs_a.mean(axis=0)  # (F,)
    direction_of = None
    if X is not None and G is not None:
        X = _as_matrix(X, "feature values")
        G = _as_matrix(G, "gradients")
        if X.shape != A.shape or G.shape != A.shape:
            raise UsageError(f"feature values and gradients must have the attributions' shape {A.shape}, got "
                             f"{X.shape} and {G.shape}")
        _check_finite(X, "feature values", "data", names)
        _check_finite(G, "gradients", "gradient", names)
        cls = np.zeros(n, dtype=np.int64) if classes is None else np.asarray(classes)
        if cls.shape != (n,):
            raise UsageError(f"classes must have one label per row ({n}), got shape {cls.shape}")
        top = [int(j) for j in np.argsort(-global_mean, kind="stable")[: min(TOP_K, n_features)]]
        # local effect per row: the output's change per standard deviation of the feature, (n_rows, F)
        effect = G.astype(np.float64) * X.astype(np.float64).std(axis=0)
        rng = np.random.default_rng(seed)
        direction_of = lambda g: _directions(  # noqa: E731
            effect, inverse == g, cls, [j for j in top if np.ptp(X[inverse == g, j]) > 0], names,
            min_rows=min_rows, n_boot=n_boot, rng=rng,
        )
    out: list[SliceProfile] = []
    for g in np.flatnonzero(counts >= min_rows):
        group_mean = abs_a[inverse == g].mean(axis=0)  # (F,)
        total = float(group_mean.sum())
        share = group_mean / total if total > 0 else np.zeros(n_features)
        order = np.argsort(-group_mean, kind="stable")[: min(TOP_K, n_features)]
        rho = spearman(group_mean, global_mean) if n_features >= 2 else float("nan")
        label = labels[g]
        out.append(
            SliceProfile(
                column=str(column),
                group=str(label.item() if hasattr(label, "item") else label),
                rows=int(counts[g]),
                top_features=tuple(names[j] for j in order),
                shares={names[j]: float(share[j]) for j in range(n_features)},
                spearman_vs_all=rho,
                directions=direction_of(g) if direction_of is not None else (),
            )
        )
    return tuple(out)


def _directions(
    effect: np.ndarray, inside: np.ndarray, cls: np.ndarray, top: list[int], names: Sequence[str], *,
    min_rows: int, n_boot: int, rng: np.random.Generator,
) -> tuple[SliceDirection, ...]:
    """Average local effect of each feature in ``top`` inside the group (``inside``: (n,) bool) and in the other
    rows, per explained class; for each feature the class with the clearest contrast (see :func:`slice_profiles`)."""
    labels = np.unique(cls)
    out = []
    for j in top:
        best: SliceDirection | None = None
        best_gap = -np.inf
        for k in labels:
            same = cls == k
            a_rows, b_rows = np.flatnonzero(inside & same), np.flatnonzero(~inside & same)
            if a_rows.size < min_rows or b_rows.size < min_rows:
                continue
            a = _mean_interval(effect[a_rows, j], n_boot, rng)
            b = _mean_interval(effect[b_rows, j], n_boot, rng)
            gap = max(a[1] - b[2], b[1] - a[2])  # > 0 when the two intervals do not overlap
            if gap > best_gap:
                best_gap = gap
                label = "" if labels.size == 1 else str(k.item() if hasattr(k, "item") else k)
                best = SliceDirection(
                    feature=names[j], effect=a[0], low=a[1], high=a[2], rows=int(a_rows.size),
                    rest_effect=b[0], rest_low=b[1], rest_high=b[2], rest_rows=int(b_rows.size), explained=label,
                )
        if best is not None:
            out.append(best)
    return tuple(out)


def _mean_interval(v: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean of ``v`` (n,) and its 95% percentile bootstrap interval (at most :data:`DIRECTION_ROWS` rows
    resampled, the spread rescaled to all ``n`` as in :func:`audit.analysis.global_ranking`)."""
    mean = float(v.mean())
    if n_boot == 0 or v.size < 2:
        return mean, mean, mean
    sub = v if v.size <= DIRECTION_ROWS else v[rng.choice(v.size, size=DIRECTION_ROWS, replace=False)]
    m = sub.size
    counts = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot)  # (B, m)
    boot = counts @ sub / m  # (B,)
    if m < v.size:
        boot = mean + np.sqrt(m / v.size) * (boot - sub.mean())
    low, high = np.quantile(boot, [_ALPHA / 2, 1 - _ALPHA / 2])
    return mean, float(min(low, mean)), float(max(high, mean))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``sup_t |F_a(t) - F_b(t)|`` of two finite samples.

    Parameters
    ----------
    a : ndarray of shape (n,)
    b : ndarray of shape (m,)

    Returns
    -------
    float
        In [0, 1]: 0 for identical empirical distributions, 1 for samples that do not overlap.
    """
    a = np.sort(np.asarray(a, dtype=np.float64).ravel())
    b = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if a.size == 0 or b.size == 0:
        raise UsageError("the KS statistic needs two non-empty samples")
    points = np.concatenate([a, b])  # (n + m,): the empirical CDFs only jump here
    cdf_a = np.searchsorted(a, points, side="right") / a.size
    cdf_b = np.searchsorted(b, points, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())


def drift(
    X: np.ndarray,
    X_ref: np.ndarray,
    shares: Mapping[str, float] | Sequence[float] | np.ndarray,
    names: Sequence[str],
) -> tuple[DriftStat, ...]:
    """Per-feature drift between reference and audited data, weighted by where the model looks.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Audited data.
    X_ref : ndarray of shape (n_ref_rows, n_features)
        Reference data (e.g. the training set), same columns.
    shares : mapping of name to float, or array-like of shape (n_features,)
        Attribution share of each feature (``FeatureStat.share``); an array is in column order, a mapping
        must name every feature.
    names : sequence of str of length n_features
        Unique feature names.

    Returns
    -------
    tuple of DriftStat
        One per feature with ``ks`` (two-sample KS statistic), ``share`` and ``weighted = ks * share``,
        ordered by ``weighted`` (largest first, ties to the earlier column).
    """
    X = _as_matrix(X, "audited data")
    X_ref = _as_matrix(X_ref, "reference data")
    n_features = X.shape[1]
    names = _check_names(names, n_features, "audited data")
    if X_ref.shape[1] != n_features:
        raise UsageError(
            f"reference data has {X_ref.shape[1]} columns, the audited data {n_features}; pass the same columns"
        )
    _check_finite(X, "audited data", "data", names)
    _check_finite(X_ref, "reference data", "data", names)
    if isinstance(shares, Mapping):
        missing = [nm for nm in names if nm not in shares]
        if missing:
            raise UsageError(f"no attribution share for feature '{missing[0]}'; pass a share for every feature")
        share = np.array([float(shares[nm]) for nm in names])
    else:
        share = np.asarray(shares, dtype=np.float64)
        if share.shape != (n_features,):
            raise UsageError(f"shares must have one value per feature ({n_features}), got shape {share.shape}")
    ks = np.array([ks_statistic(X[:, j], X_ref[:, j]) for j in range(n_features)])  # (F,)
    weighted = ks * share
    order = np.argsort(-weighted, kind="stable")
    return tuple(
        DriftStat(name=names[j], ks=float(ks[j]), share=float(share[j]), weighted=float(weighted[j])) for j in order
    )


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x, tied values sharing their average rank: (n,) -> (n,) float."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts_mask = np.r_[True, xs[1:] != xs[:-1]]  # (n,): first element of each run of equal values
    run_id = np.cumsum(starts_mask) - 1
    starts = np.flatnonzero(starts_mask)
    ends = np.r_[starts[1:], x.size]  # exclusive
    ranks = np.empty(x.size)
    ranks[order] = ((starts + ends - 1) / 2 + 1)[run_id]
    return ranks
