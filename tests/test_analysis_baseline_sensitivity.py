"""baseline_sensitivity: known answers for the rank comparison of two attribution matrices."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis.baseline_sensitivity import baseline_sensitivity, compared_features
from audit.errors import UsageError

NAMES = [f"f{j}" for j in range(6)]
SCALE = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.01])


def _A(scale, n=200, seed=0):
    return np.random.default_rng(seed).normal(size=(n, scale.size)) * scale


def test_the_same_ranking_agrees_fully_and_the_tiny_feature_is_not_compared():
    A = _A(SCALE)
    s = baseline_sensitivity(A, A * 1.7, NAMES, chosen="a", second="b", min_share=0.25 / 6, seed=1)
    assert s.spearman == pytest.approx(1.0) and s.ci_low == pytest.approx(1.0) and not s.top_changed
    assert s.features_compared == 5 and s.top_chosen == ("f0", "f1", "f2", "f3", "f4") == s.top_second
    assert sum(s.shares_chosen) == pytest.approx(1 - 0.01 / SCALE.sum(), abs=0.01)


def test_a_reversed_ranking_and_a_clear_change_of_top_feature():
    s = baseline_sensitivity(_A(SCALE), _A(SCALE[::-1].copy(), seed=1), NAMES, chosen="a", second="b",
                             min_share=0.25 / 6)  # fmt: skip
    assert s.spearman < -0.8 and s.ci_high < 0 and s.top_changed
    assert (s.top_chosen[0], s.top_second[0]) == ("f0", "f5")


def test_a_near_tie_at_the_top_is_not_a_change():
    tie = np.array([5.0, 4.95, 3.0, 2.0, 1.0, 0.5])
    swapped = tie[[1, 0, 2, 3, 4, 5]]
    s = baseline_sensitivity(_A(tie, n=100), _A(swapped, n=100, seed=1), NAMES, chosen="a", second="b",
                             min_share=0.25 / 6)  # fmt: skip
    assert not s.top_changed


def test_compared_features_falls_back_to_the_top_three_of_each():
    a = np.array([0.97, 0.01, 0.01, 0.01])
    b = np.array([0.01, 0.97, 0.01, 0.01])
    assert compared_features(a, b, 0.1).tolist() == [0, 1, 2]  # only two above the bar: the top 3 of each
    assert compared_features(np.full(4, 0.25), np.full(4, 0.25), 0.1).tolist() == [0, 1, 2, 3]


def test_bad_input_is_one_clear_error():
    with pytest.raises(UsageError, match="same shape"):
        baseline_sensitivity(np.ones((3, 6)), np.ones((4, 6)), NAMES, chosen="a", second="b", min_share=0.1)
    with pytest.raises(UsageError, match="finite"):
        baseline_sensitivity(np.full((3, 6), np.nan), np.ones((3, 6)), NAMES, chosen="a", second="b", min_share=0.1)
