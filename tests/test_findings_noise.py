"""noise_leakage: a model that puts weight on a pure-noise column is flagged by both routes; one that ignores it,
or whose features all help, is quiet."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from findings_planted import linear_case, stats_from_shares
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings import noise
from audit.results import Severity, to_dict

T = Thresholds()
NAMES = ["x0", "x1", "x2"]


def _data(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = x0 + x1; x2 is pure noise."""
    X = np.random.default_rng(seed).standard_normal((n, 3))
    return X, X[:, 0] + X[:, 1]


def test_declared_noise_with_weight_is_flagged_route_1():
    X, y = _data()
    case = linear_case(X, y, [1.0, 1.0, 0.8], NAMES)
    out = noise.detect(stats=case.stats, thresholds=T, declared_noise=["x2"])
    assert len(out) == 1
    f = out[0]
    assert (f.code, f.features, f.evidence["route"]) == ("noise_leakage", ("x2",), "declared")
    share = next(s.share for s in case.stats if s.name == "x2")
    assert share == pytest.approx(0.8 / 2.8, rel=0.05)
    assert f.severity is Severity.WARN  # 28.6% < the uniform 33.3%
    assert "'x2'" in f.message and f"{100 * share:.1f}%" in f.message
    json.dumps(to_dict(f), allow_nan=False)


def test_noise_carrying_more_than_an_average_feature_fails():
    X, y = _data()
    case = linear_case(X, y, [1.0, 1.0, 2.0], NAMES)
    (f,) = noise.detect(stats=case.stats, thresholds=T, declared_noise=["x2"])
    assert f.severity is Severity.FAIL


def test_undeclared_noise_is_flagged_by_neutralisation_route_2():
    X, y = _data()
    case = linear_case(X, y, [1.0, 1.0, 1.2], NAMES)  # x2 carries 1.2 / 3.2 = 37.5%, above the uniform 33%
    assert case.neutralised_loss["x2"] < case.base_loss  # zeroing the noise weight makes the model exact
    out = noise.detect(stats=case.stats, thresholds=T, neutralisation=case.neutralisation)
    assert [f.features for f in out] == [("x2",)]
    ev = out[0].evidence
    assert ev["route"] == "neutralisation" and ev["loss_rel_change"] == pytest.approx(-1.0)
    assert ev["base_loss"] == pytest.approx(1.44, rel=0.1)  # 1.2^2 * var(x2)
    assert ev["univariate_power"] <= ev["univariate_null_99"]  # x2 says nothing about y on its own
    assert out[0].severity is Severity.WARN  # 37.5% < twice the uniform share
    # removing the noise takes away exactly the loss its influence adds: benefit -1, the opposite of a real feature
    assert ev["benefit"] == pytest.approx(-1.0) and ev["benefit_ci_high"] == pytest.approx(-1.0)
    # the message says the loss went down, and never that it "does not worsen" next to a positive change
    assert "lowers the model's loss" in out[0].message and "-100.0%" in out[0].message


def test_declared_and_neutralisation_do_not_double_count():
    X, y = _data()
    case = linear_case(X, y, [1.0, 1.0, 1.2], NAMES)
    out = noise.detect(
        stats=case.stats,
        thresholds=T,
        declared_noise=["x2"],
        neutralisation=case.neutralisation,
    )
    assert [(f.features, f.evidence["route"]) for f in out] == [(("x2",), "declared")]


def test_model_that_ignores_noise_is_quiet():
    X, y = _data()
    case = linear_case(X, y, [1.0, 1.0, 0.001], NAMES)
    assert case.neutralised_loss["x2"] < case.base_loss  # removing it still helps a little ...
    out = noise.detect(
        stats=case.stats,
        thresholds=T,
        declared_noise=["x2"],
        neutralisation=case.neutralisation,
    )
    assert out == []  # ... but its share is far below the real-attribution bar


def test_zero_interval_is_not_clearly_above_zero():
    stats = stats_from_shares([1.0, 1.0, 1.0])
    x2 = next(s for s in stats if s.name == "x2")
    assert noise.detect(stats=stats, thresholds=T, declared_noise=["x2"])  # share 1/3 with ci_low > 0
    zero_ci = tuple(s if s.name != "x2" else dataclasses.replace(s, ci_low=0.0) for s in stats)
    assert x2.ci_low > 0 and noise.detect(stats=zero_ci, thresholds=T, declared_noise=["x2"]) == []


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 8), st.floats(0.0, 0.5))
def test_features_whose_neutralisation_hurts_are_never_flagged(seed, k, noise_sd):
    """y = X w + e with every weight away from 0: zeroing any feature raises the MSE by w_j^2 var(x_j)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((500, k))
    w = rng.choice([-1, 1], k) * rng.uniform(0.3, 3, k)
    y = X @ w + noise_sd * rng.standard_normal(500)
    names = [f"f{j}" for j in range(k)]
    case = linear_case(X, y, w, names, n_boot=20)
    assert all(case.neutralised_loss[nm] > case.base_loss for nm in names)
    assert noise.detect(stats=case.stats, thresholds=T, neutralisation=case.neutralisation) == []


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.5, 3.0), st.floats(0.05, 0.3))
def test_small_real_feature_under_large_residual_error_is_not_noise(seed, residual_sd, w_small):
    """y = x0 + w x1 + e with a large residual e: removing x1 raises the loss by only w^2 against a loss of
    sd^2 (a 1% threshold on the loss calls it useless), but its benefit ratio is 1 in expectation."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2_000, 2))
    w = np.array([1.0, w_small])
    y = X @ w + residual_sd * rng.standard_normal(2_000)
    case = linear_case(X, y, w, ["x0", "x1"], n_boot=50)
    assert noise.detect(stats=case.stats, thresholds=T, neutralisation=case.neutralisation) == []


def test_small_reliance_on_a_noise_column_is_not_material():
    """Every flexible model leans a little on its noise columns; below the uniform share it is not flagged."""
    X, y = _data()
    case = linear_case(X, y, [1.0, 1.0, 0.3], NAMES)  # x2: 0.3 / 2.3 = 13% of attribution, benefit -1
    assert next(g for g in case.neutralisation if g.features == ("x2",)).ci_high < T.noise_max_benefit
    assert noise.detect(stats=case.stats, thresholds=T, neutralisation=case.neutralisation) == []


def test_a_feature_that_predicts_the_target_alone_is_never_noise():
    """y = x0 + x1 but the model uses x1 wrongly (weight -1): taking x1 away helps, yet x1 predicts y by itself,
    so it is a real feature the model misuses, not noise."""
    X, y = _data()
    case = linear_case(X, y, [1.0, -1.0, 0.0], NAMES)
    g = next(g for g in case.neutralisation if g.features == ("x1",))
    assert g.ci_high < T.noise_max_benefit and g.informative
    assert noise.detect(stats=case.stats, thresholds=T, neutralisation=case.neutralisation) == []


def test_correlated_copies_are_neutralised_as_one_group():
    """x1 is x0 plus a little noise: the ranking splits the signal between them, and only the group says
    whether it helps."""
    from audit.analysis.neutralisation import correlated_groups

    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(1_000)
    X = np.column_stack([x0, x0 + 0.05 * rng.standard_normal(1_000), rng.standard_normal(1_000)])
    assert correlated_groups(X, 0.7) == [[0, 1], [2]]
    assert correlated_groups(X, 1.01) == [[0], [1], [2]]  # a threshold above 1 never groups


def test_bad_input():
    stats = stats_from_shares([1.0, 1.0])
    with pytest.raises(UsageError, match="'zz' is not among"):
        noise.detect(stats=stats, thresholds=T, declared_noise=["zz"])
    from audit.analysis.neutralisation import NeutralisationStat

    bad = NeutralisationStat(("zz",), 0.5, 1.0, 1.0, 0.0, -0.1, 0.1, 10, "permute")
    with pytest.raises(UsageError, match="names 'zz', which is not among"):
        noise.detect(stats=stats, thresholds=T, neutralisation=[bad])
    with pytest.raises(UsageError, match="global ranking"):
        noise.detect(stats=(), thresholds=T)
