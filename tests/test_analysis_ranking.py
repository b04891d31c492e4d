"""Global ranking and bootstrap intervals: planted known answers, coverage and invariance properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from audit.analysis import class_rankings, global_ranking
from audit.errors import AttributionError, UsageError

HALF_NORMAL_MEAN = math.sqrt(2 / math.pi)  # E|Z| for Z ~ N(0, 1)


def _planted(n: int, scales: list[float], seed: int = 0) -> np.ndarray:
    """A: (n, F) with column j ~ N(0, scales[j]^2), so E|A_j| = scales[j] * sqrt(2 / pi)."""
    return np.random.default_rng(seed).standard_normal((n, len(scales))) * np.asarray(scales)


def _names(k: int) -> list[str]:
    return [f"f{j}" for j in range(k)]


def test_planted_order_and_point_estimates():
    scales = [0.5, 3.0, 1.0, 0.1]
    A = _planted(20_000, scales)
    stats = global_ranking(A, _names(4), n_boot=100, seed=1)
    assert [s.name for s in stats] == ["f1", "f2", "f0", "f3"]
    assert [s.rank for s in stats] == [1, 2, 3, 4]
    by = {s.name: s for s in stats}
    for j, sc in enumerate(scales):
        s = by[f"f{j}"]
        assert s.mean_abs == pytest.approx(np.abs(A[:, j]).mean(), rel=1e-12)
        assert s.mean == pytest.approx(A[:, j].mean(), abs=1e-12)
        assert s.std == pytest.approx(A[:, j].std(), rel=1e-12)
        assert s.ci_low <= s.mean_abs <= s.ci_high
        assert s.ci_low <= sc * HALF_NORMAL_MEAN <= s.ci_high  # the truth is inside (fixed seed)
    assert by["f1"].share == pytest.approx(3.0 / 4.6, rel=0.02)
    assert (by["f1"].rank_ci_low, by["f1"].rank_ci_high) == (1, 1)  # clearly dominant


def test_interval_covers_truth_about_95_percent():
    """Percentile bootstrap of a mean: over 60 independent data sets the truth is inside ~95% of the time."""
    truth = 2.0 * HALF_NORMAL_MEAN
    hits = 0
    for rep in range(60):
        A = _planted(300, [2.0, 1.0], seed=100 + rep)
        s = next(s for s in global_ranking(A, _names(2), n_boot=300, seed=rep) if s.name == "f0")
        hits += s.ci_low <= truth <= s.ci_high
    assert 51 <= hits <= 60  # binomial(60, 0.95): P(hits < 51) < 0.3%


def test_interval_narrows_with_more_rows():
    widths = []
    for n in (400, 40_000):
        s = global_ranking(_planted(n, [1.0, 0.5], seed=3), _names(2), n_boot=200, seed=0)[0]
        widths.append(s.ci_high - s.ci_low)
    assert widths[1] < widths[0] / 5  # expected ratio sqrt(100) = 10


def test_subsampled_bootstrap_matches_full_bootstrap_width_and_covers():
    """Above max_boot_rows the rescaled m-out-of-n bootstrap keeps the 1/sqrt(n) width of the full bootstrap."""
    n = 20_000
    A = _planted(n, [1.0, 0.7, 0.3], seed=7)
    full = global_ranking(A, _names(3), n_boot=400, seed=0)[0]
    sub = global_ranking(A, _names(3), n_boot=400, seed=0, max_boot_rows=1_000)[0]
    w_full, w_sub = full.ci_high - full.ci_low, sub.ci_high - sub.ci_low
    assert 0.75 < w_sub / w_full < 1.33  # without the sqrt(m/n) shrink it would be sqrt(20) ~ 4.5x wider
    assert sub.mean_abs == full.mean_abs  # the point estimate always uses every row
    hits = 0
    for rep in range(40):
        B = _planted(n, [1.0, 0.7], seed=500 + rep)
        s = global_ranking(B, _names(2), n_boot=200, seed=rep, max_boot_rows=1_000)[0]
        hits += s.ci_low <= HALF_NORMAL_MEAN <= s.ci_high
    assert hits >= 33  # binomial(40, 0.95): P(hits < 33) < 0.1%


def test_no_bootstrap_gives_point_intervals():
    stats = global_ranking(_planted(500, [1.0, 2.0, 3.0]), _names(3), n_boot=0)
    for s in stats:
        assert s.ci_low == s.ci_high == s.mean_abs
        assert s.rank_ci_low == s.rank_ci_high == s.rank


def test_near_tie_gives_wide_rank_interval_and_ties_go_to_earlier_column():
    A = _planted(400, [1.0, 1.0, 0.01], seed=11)
    stats = {s.name: s for s in global_ranking(A, _names(3), n_boot=200, seed=0)}
    assert (stats["f0"].rank_ci_low, stats["f0"].rank_ci_high) == (1, 2)
    assert (stats["f2"].rank_ci_low, stats["f2"].rank_ci_high) == (3, 3)
    same = np.repeat(_planted(50, [1.0]), 3, axis=1)  # three identical columns
    assert [s.name for s in global_ranking(same, ["c", "a", "b"], n_boot=0)] == ["c", "a", "b"]


def test_all_zero_attributions_have_zero_shares():
    stats = global_ranking(np.zeros((10, 3)), _names(3), n_boot=20)
    assert [s.share for s in stats] == [0.0, 0.0, 0.0]
    assert [s.name for s in stats] == ["f0", "f1", "f2"]


def test_same_seed_same_result_and_generator_accepted():
    A = _planted(300, [1.0, 0.5])
    assert global_ranking(A, _names(2), seed=5) == global_ranking(A, _names(2), seed=5)
    assert global_ranking(A, _names(2), seed=np.random.default_rng(5)) == global_ranking(A, _names(2), seed=5)


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"A": np.ones(3)}, UsageError, "2-D"),
        ({"A": np.ones((0, 2))}, UsageError, "no rows"),
        ({"A": np.array([[1.0, np.nan]])}, AttributionError, "feature 'f1'"),
        ({"names": ["a"]}, UsageError, "2 features but 1 names"),
        ({"names": ["a", "a"]}, UsageError, "more than once"),
        ({"n_boot": -1}, UsageError, "n_boot"),
        ({"max_boot_rows": 0}, UsageError, "max_boot_rows"),
        ({"seed": -3}, UsageError, "seed"),
    ],
)
def test_bad_input_is_one_clear_error(kwargs, exc, text):
    args = {"A": np.ones((4, 2)), "names": _names(2)} | kwargs
    A, names = args.pop("A"), args.pop("names")
    with pytest.raises(exc, match=text):
        global_ranking(A, names, **args)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 6)), elements=finite))
def test_shares_sum_to_one_and_ranks_are_a_permutation(A):
    stats = global_ranking(A, _names(A.shape[1]), n_boot=20, seed=0)
    if np.abs(A).sum() > 0:
        assert sum(s.share for s in stats) == pytest.approx(1.0)
    assert sorted(s.rank for s in stats) == list(range(1, A.shape[1] + 1))
    if A.shape[0] >= 2:
        assert all(s.rank_ci_low <= s.rank <= s.rank_ci_high for s in stats)
        assert all(s.ci_low <= s.mean_abs <= s.ci_high for s in stats)
    else:  # one row: nothing to resample, no interval
        assert all(np.isnan(s.ci_low) and np.isnan(s.ci_high) and s.rank_ci_low == s.rank_ci_high == 0 for s in stats)
    assert all(a.mean_abs >= b.mean_abs for a, b in zip(stats, stats[1:], strict=False))


@pytest.mark.parametrize("n_boot", [0, 200])
def test_one_row_gives_no_interval_two_rows_do(n_boot):
    # a "95% CI [39, 39]" from one row was printed before: one row says nothing about how the mean varies
    one = global_ranking(np.array([[39.0, -2.0]]), ["a", "b"], n_boot=n_boot, seed=0)
    assert [s.mean_abs for s in one] == [39.0, 2.0]
    assert all(np.isnan(s.ci_low) and np.isnan(s.ci_high) for s in one)
    assert all(s.rank_ci_low == s.rank_ci_high == 0 for s in one)
    two = global_ranking(np.array([[39.0, -2.0], [41.0, 1.0]]), ["a", "b"], n_boot=n_boot, seed=0)
    assert all(np.isfinite(s.ci_low) and s.ci_low <= s.mean_abs <= s.ci_high for s in two)


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 40), st.integers(2, 6))
def test_row_order_does_not_change_point_estimates(seed, n, k):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, k)) * rng.uniform(0.1, 3, k)
    a = global_ranking(A, _names(k), n_boot=0)
    b = global_ranking(A[rng.permutation(n)], _names(k), n_boot=0)
    assert [s.name for s in a] == [s.name for s in b]
    for x, y in zip(a, b, strict=True):
        assert x.mean_abs == pytest.approx(y.mean_abs, rel=1e-12)
        assert x.std == pytest.approx(y.std, rel=1e-9)


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(5, 60), st.integers(2, 6))
def test_permuting_columns_permutes_results(seed, n, k):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, k)) * rng.uniform(0.1, 3, k)
    perm = rng.permutation(k)
    names = _names(k)
    a = {s.name: s for s in global_ranking(A, names, n_boot=50, seed=9)}
    b = {s.name: s for s in global_ranking(A[:, perm], [names[j] for j in perm], n_boot=50, seed=9)}
    for name, s in a.items():
        t = b[name]
        assert (s.rank, s.rank_ci_low, s.rank_ci_high) == (t.rank, t.rank_ci_low, t.rank_ci_high)
        assert t.ci_low == pytest.approx(s.ci_low, rel=1e-12)
        assert t.ci_high == pytest.approx(s.ci_high, rel=1e-12)


def test_class_rankings_plant_a_different_top_feature_per_class():
    rng = np.random.default_rng(0)
    n = 600
    classes = np.repeat(np.array(["cat", "dog"]), n // 2)
    A = rng.standard_normal((n, 3)) * 0.1
    A[: n // 2, 0] *= 30  # rows explaining "cat" lean on f0
    A[n // 2 :, 2] *= 30  # rows explaining "dog" lean on f2
    out = class_rankings(A, _names(3), classes, n_boot=50, seed=0)
    assert list(out) == ["cat", "dog"]
    assert out["cat"][0].name == "f0" and out["dog"][0].name == "f2"
    alone = global_ranking(A[: n // 2], _names(3), n_boot=0)  # same rows, ranked on their own
    assert [(s.name, s.mean_abs) for s in out["cat"]] == [(s.name, s.mean_abs) for s in alone]
    ints = class_rankings(A, _names(3), np.repeat([1, 0], n // 2), n_boot=0)
    assert list(ints) == ["0", "1"] and ints["1"][0].name == "f0"
    with pytest.raises(UsageError, match="one label per attribution row"):
        class_rankings(A, _names(3), classes[:-1])
