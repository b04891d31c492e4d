"""concentration_skew, slice_skew and drift_skew: planted skews are flagged, balanced or small ones are quiet."""

from __future__ import annotations

import numpy as np
import pytest
from findings_planted import stats_from_shares
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.analysis import drift, global_ranking, slice_profiles
from audit.config import Thresholds
from audit.findings import skew
from audit.results import Severity

T = Thresholds()


# --- concentration ---------------------------------------------------------------------------------------


def test_gini_known_answers():
    assert skew.gini(np.ones(5)) == 0.0
    assert skew.gini(np.array([0, 0, 0, 1.0])) == pytest.approx(3 / 4)
    assert skew.gini(np.array([1.0, 2, 3, 4])) == pytest.approx(0.25)  # sum |xi - xj| / (2 n^2 mean) = 20 / 80


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=2, max_size=20))
def test_gini_matches_mean_absolute_difference(values):
    x = np.array(values)
    expected = 0.0 if x.sum() == 0 else np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert skew.gini(x) == pytest.approx(expected, abs=1e-12)


def test_one_dominant_feature_warns():
    (f,) = skew.detect_concentration(stats=stats_from_shares([0.6, 0.1, 0.1, 0.1, 0.1]), thresholds=T)
    assert (f.code, f.severity, f.features) == ("concentration_skew", Severity.INFO, ("x0",))
    assert f.evidence["top1_share"] == pytest.approx(0.6) and "60.0%" in f.message
    assert f.evidence["gini"] == pytest.approx(skew.gini(np.array([0.6, 0.1, 0.1, 0.1, 0.1])), rel=1e-3)


def test_top_three_rule_warns_with_many_features():
    shares = [0.35, 0.3, 0.2] + [0.15 / 7] * 7  # top1 35% (quiet), top3 85%
    (f,) = skew.detect_concentration(stats=stats_from_shares(shares), thresholds=T)
    assert f.features == ("x0", "x1", "x2") and "85.0%" in f.message


@pytest.mark.parametrize(
    "shares",
    [
        [0.9, 0.1],  # two features: a 50% top-1 threshold is the uniform share, no contrast
        [0.45, 0.45, 0.1],  # three features: top-3 carries everything by arithmetic
        [0.4, 0.3, 0.2, 0.1, 0.0, 0.0],  # top-3 90% of 6 features: rule needs >= 8 features at 0.8
        [1.0] * 10,  # uniform
    ],
)
def test_no_warning_without_contrast(shares):
    assert skew.detect_concentration(stats=stats_from_shares(shares), thresholds=T) == []


# --- slices ----------------------------------------------------------------------------------------------


def _sliced(reverse_group: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 2_000
    groups = np.array(["north", "south"])[rng.integers(0, 2, n)]
    A = rng.standard_normal((n, 6)) * np.array([6.0, 5, 4, 3, 2, 1])
    if reverse_group:
        north = groups == "north"
        A[north] = A[north][:, ::-1]
    names = [f"x{j}" for j in range(6)]
    stats = global_ranking(A, names, n_boot=0)
    return slice_profiles(A, names, groups, min_rows=1, column="region"), stats


def test_planted_disagreeing_group_is_flagged():
    profiles, stats = _sliced(reverse_group=True)
    (f,) = skew.detect_slice_skew(slices=profiles, stats=stats, thresholds=T)
    assert (f.code, f.severity) == ("slice_skew", Severity.WARN)
    assert f.evidence["column"] == "region" and [g["group"] for g in f.evidence["flagged"]] == ["north"]
    assert "'north'" in f.message and "'region'" in f.message and "x5" in f.features


def test_agreeing_groups_are_quiet_and_small_groups_ignored():
    profiles, stats = _sliced(reverse_group=False)
    assert skew.detect_slice_skew(slices=profiles, stats=stats, thresholds=T) == []
    flipped, stats2 = _sliced(reverse_group=True)
    strict = Thresholds(slice_min_rows=10_000)
    assert skew.detect_slice_skew(slices=flipped, stats=stats2, thresholds=strict) == []


def test_new_top_feature_flags_only_with_a_clear_global_leader():
    rng = np.random.default_rng(5)
    n = 1_000
    groups = np.repeat(["a", "b"], n // 2)
    names = [f"x{j}" for j in range(6)]
    for lead_scale, flagged in ((8.0, True), (1.2, False)):
        scales = np.array([lead_scale, 1.0, 0.9, 0.8, 0.7, 0.6])
        A = rng.standard_normal((n, 6)) * scales
        A[groups == "b", 0], A[groups == "b", 1] = A[groups == "b", 1], A[groups == "b", 0].copy()
        A[groups == "b", 1] *= 2  # in group b, x1 leads
        stats = global_ranking(A, names, n_boot=0)
        profiles = slice_profiles(A, names, groups, min_rows=1, column="g")
        b = next(p for p in profiles if p.group == "b")
        assert b.top_features[0] == "x1"
        if lead_scale == 1.2:
            assert b.spearman_vs_all >= T.slice_spearman  # only the top-feature rule could fire
        assert bool(skew.detect_slice_skew(slices=profiles, stats=stats, thresholds=T)) is flagged


# --- drift -----------------------------------------------------------------------------------------------


def _drift(shift: np.ndarray, n: int = 2_000, m: int = 2_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X_ref = rng.standard_normal((m, 4))
    X = rng.standard_normal((n, 4)) + shift
    return drift(X, X_ref, np.array([0.64, 0.2, 0.15, 0.01]), ["a", "b", "c", "d"])


def test_drift_in_the_top_feature_warns():
    (f,) = skew.detect_drift_skew(drift=_drift(np.array([1.0, 0, 0, 0])), thresholds=T)
    assert (f.code, f.severity, f.features) == ("drift_skew", Severity.WARN, ("a",))
    assert f.evidence["weighted_ks"] > 0.2 and "'a'" in f.message


def test_drift_in_an_unimportant_feature_or_none_is_quiet():
    assert skew.detect_drift_skew(drift=_drift(np.array([0, 0, 0, 3.0])), thresholds=T) == []
    assert skew.detect_drift_skew(drift=_drift(np.zeros(4)), thresholds=T) == []


def test_sampling_noise_on_small_data_is_not_drift():
    """Two 60-row samples from one distribution: KS ~0.15 by chance, above drift_weighted_ks."""
    stats = _drift(np.zeros(4), n=60, m=60, seed=3)
    assert sum(d.weighted for d in stats) >= T.drift_weighted_ks  # raw statistic alone would warn
    assert skew.detect_drift_skew(drift=stats, thresholds=T, n_rows=60, n_ref_rows=60) == []
    big = _drift(np.array([1.5, 0, 0, 0]), n=60, m=60, seed=3)
    assert skew.detect_drift_skew(drift=big, thresholds=T, n_rows=60, n_ref_rows=60)  # a real shift still warns


def test_a_near_tie_at_the_top_of_a_group_is_not_a_new_profile():
    """Random groups on a breast-cancer model: group B's top was 'mean concave points' by a hair instead of
    'worst perimeter' (Spearman 0.97) and warned. The group's leader must carry 1.5x the global leader's share."""
    rng = np.random.default_rng(2)
    n = 2_000
    groups = np.repeat(["a", "b"], n // 2)
    names = [f"x{j}" for j in range(6)]
    scales = np.array([4.0, 1.0, 0.9, 0.8, 0.7, 0.6])
    A = rng.standard_normal((n, 6)) * scales
    A[groups == "b", 1] *= 4.4  # in group b, x1 edges just past x0 (4.4 vs 4.0)
    stats = global_ranking(A, names, n_boot=0)
    profiles = slice_profiles(A, names, groups, min_rows=1, column="g")
    b = next(p for p in profiles if p.group == "b")
    assert b.top_features[0] == "x1" and b.spearman_vs_all >= T.slice_spearman
    assert skew.detect_slice_skew(slices=profiles, stats=stats, thresholds=T) == []
    A[groups == "b", 1] *= 2.5  # now x1 carries over twice x0's share in group b: a different profile
    stats = global_ranking(A, names, n_boot=0)
    profiles = slice_profiles(A, names, groups, min_rows=1, column="g")
    assert skew.detect_slice_skew(slices=profiles, stats=stats, thresholds=T)
