"""Spearman, rank agreement, slice profiles and drift: known answers, brute-force references, planted slices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.analysis import drift, global_ranking, ks_statistic, rank_agreement, slice_profiles, spearman
from audit.errors import AttributionError, DataError, UsageError


def _brute_average_ranks(x: np.ndarray) -> np.ndarray:
    """Rank of x_i = 1 + #(x_j < x_i) + (#(x_j == x_i) - 1) / 2, straight from the definition."""
    return np.array([1 + (x < v).sum() + ((x == v).sum() - 1) / 2 for v in x])


def test_spearman_known_answers():
    assert spearman(np.arange(10.0), np.arange(10.0) ** 3) == pytest.approx(1.0)
    assert spearman(np.arange(10.0), -np.exp(np.arange(10.0))) == pytest.approx(-1.0)
    # ties: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): Pearson of those = 0.9486832980505138
    assert spearman(np.array([1.0, 2, 2, 3]), np.array([1.0, 2, 3, 4])) == pytest.approx(0.9486832980505138)
    assert math.isnan(spearman(np.ones(5), np.arange(5.0)))


@settings(derandomize=True, max_examples=50, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 40))
def test_spearman_is_pearson_of_average_ranks(seed, n):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, n).astype(float)  # many ties
    b = rng.standard_normal(n)
    ra, rb = _brute_average_ranks(a), _brute_average_ranks(b)
    got = spearman(a, b)
    if ra.std() == 0 or rb.std() == 0:
        assert math.isnan(got)
    else:
        assert got == pytest.approx(np.corrcoef(ra, rb)[0, 1], abs=1e-12)
        assert spearman(np.exp(a), b**3) == pytest.approx(got, abs=1e-12)  # invariant to monotone maps


def test_spearman_bad_input():
    with pytest.raises(UsageError, match="equal length"):
        spearman(np.ones(3), np.ones(4))
    with pytest.raises(UsageError, match="at least 2"):
        spearman(np.ones(1), np.ones(1))
    with pytest.raises(DataError, match="first sample"):
        spearman(np.array([1.0, np.nan]), np.ones(2))


def test_rank_agreement_matches_by_name():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((500, 5)) * np.array([5.0, 4, 3, 2, 1])
    names = ["a", "b", "c", "d", "e"]
    s1 = global_ranking(A, names, n_boot=0)
    s2 = global_ranking(A[:, ::-1], names[::-1], n_boot=0)  # same features, other column order
    assert rank_agreement(s1, s2) == pytest.approx(1.0)
    s3 = global_ranking(A[:, ::-1], names, n_boot=0)  # names swapped: reversed importance
    assert rank_agreement(s1, s3) == pytest.approx(-1.0)
    with pytest.raises(UsageError, match="at least 2 features"):
        rank_agreement(s1, global_ranking(A[:, :1], ["z"], n_boot=0))


def test_slice_profiles_find_a_planted_group():
    rng = np.random.default_rng(1)
    n = 3_000
    groups = np.array(["north", "south", "east"])[rng.integers(0, 3, n)]
    groups[:10] = "tiny"  # below min_rows: left out
    A = rng.standard_normal((n, 6)) * np.array([6.0, 5, 4, 3, 2, 1])
    north = groups == "north"
    A[north] = A[north][:, ::-1]  # the north group uses the features in reverse order of importance
    names = [f"x{j}" for j in range(6)]
    prof = {p.group: p for p in slice_profiles(A, names, groups, min_rows=30, column="region")}
    assert sorted(prof) == ["east", "north", "south"]
    assert prof["north"].spearman_vs_all < 0 and prof["north"].top_features[0] == "x5"
    assert prof["south"].spearman_vs_all > 0.9 and prof["south"].top_features == ("x0", "x1", "x2", "x3", "x4")
    for p in prof.values():
        assert p.column == "region" and p.rows == (groups == p.group).sum()
        assert sum(p.shares.values()) == pytest.approx(1.0)
        assert list(p.shares) == names
    exact = np.abs(A[groups == "east"]).mean(axis=0)
    assert prof["east"].shares["x2"] == pytest.approx(exact[2] / exact.sum())


def test_slice_profiles_numeric_and_mixed_labels():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((100, 2))
    prof = slice_profiles(A, ["a", "b"], np.repeat([2, 1], 50), min_rows=10)
    assert [p.group for p in prof] == ["1", "2"]
    mixed = np.array(["x"] * 50 + [None] * 50, dtype=object)
    assert sorted(p.group for p in slice_profiles(A, ["a", "b"], mixed, min_rows=10)) == ["None", "x"]
    with pytest.raises(UsageError, match="one label per row"):
        slice_profiles(A, ["a", "b"], np.ones(99))
    with pytest.raises(AttributionError, match="feature 'b'"):
        slice_profiles(np.array([[0.0, np.inf]]), ["a", "b"], np.ones(1))


def test_ks_known_answers():
    assert ks_statistic(np.arange(5.0), np.arange(5.0)) == 0.0
    assert ks_statistic(np.arange(5.0), np.arange(5.0) + 10) == 1.0
    assert ks_statistic(np.array([1.0, 2, 3]), np.array([2.0, 3, 4])) == pytest.approx(1 / 3)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 30), st.integers(1, 30))
def test_ks_matches_brute_force_supremum(seed, n, m):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, n).astype(float)
    b = rng.integers(0, 6, m).astype(float) + rng.integers(0, 2)
    grid = np.union1d(a, b)
    brute = max(abs((a <= t).mean() - (b <= t).mean()) for t in grid)
    assert ks_statistic(a, b) == pytest.approx(brute, abs=1e-12)
    assert ks_statistic(a, b) == pytest.approx(ks_statistic(b, a), abs=1e-12)


def test_drift_weights_ks_by_share_and_orders_by_weighted():
    rng = np.random.default_rng(3)
    X_ref = rng.standard_normal((2_000, 3))
    X = rng.standard_normal((1_500, 3))
    X[:, 1] += 1.0  # planted shift in x1
    out = drift(X, X_ref, {"x0": 0.2, "x1": 0.5, "x2": 0.3}, ["x0", "x1", "x2"])
    assert out[0].name == "x1" and out[0].ks > 0.3
    for d in out:
        assert d.weighted == pytest.approx(d.ks * d.share)
    assert all(a.weighted >= b.weighted for a, b in zip(out, out[1:], strict=False))
    same = drift(X, X_ref, np.array([0.2, 0.5, 0.3]), ["x0", "x1", "x2"])
    assert same == out  # an array in column order means the same as the mapping
    with pytest.raises(UsageError, match="share for every feature"):
        drift(X, X_ref, {"x0": 1.0}, ["x0", "x1", "x2"])
    with pytest.raises(UsageError, match="same columns"):
        drift(X, X_ref[:, :2], np.ones(3), ["x0", "x1", "x2"])
    with pytest.raises(DataError, match="feature 'x2'"):
        drift(X, np.column_stack([X_ref[:, :2], np.full(2_000, np.nan)]), np.ones(3), ["x0", "x1", "x2"])
