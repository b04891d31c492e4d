"""univariate_power: known answers, leave-one-out closed forms against brute force, noise scores ~0."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.analysis import univariate_power
from audit.errors import DataError, UsageError


def _bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    """The same quantile bins the module documents, rebuilt here for the brute-force references."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, x, side="right")


def _brute_regression(x: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    """Leave-one-out R^2 by literally leaving each row out."""
    b = _bins(x, n_bins)
    n = len(y)
    press = base = 0.0
    for i in range(n):
        keep = np.arange(n) != i
        same = keep & (b == b[i])
        pred = y[same].mean() if same.any() else y[keep].mean()
        press += (y[i] - pred) ** 2
        base += (y[i] - y[keep].mean()) ** 2
    return float(np.clip(1 - press / base, 0, 1))


def _brute_classification(x: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    """Leave-one-out bin-majority accuracy (ties split evenly, lone rows miss), normalised by the base rate."""
    b = _bins(x, n_bins)
    n = len(y)
    hits = 0.0
    for i in range(n):
        others = y[(np.arange(n) != i) & (b == b[i])]
        if others.size == 0:
            continue
        labels, counts = np.unique(others, return_counts=True)
        winners = labels[counts == counts.max()]
        hits += (y[i] in winners) / len(winners)
    base = np.unique(y, return_counts=True)[1].max() / n
    return float(np.clip((hits / n - base) / (1 - base), 0, 1))


def test_exact_copy_of_target_scores_about_one():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5_000, 3))
    y = X[:, 0].copy()
    u = univariate_power(X, y, "regression")
    assert u[0] > 0.99  # 50 quantile bins of a normal: what is left is the within-bin spread
    assert u[1] < 0.01 and u[2] < 0.01
    assert 0.95 < univariate_power(X, y, "regression", n_bins=20)[0] < u[0]  # coarser bins resolve less


def test_nonmonotone_relation_is_captured():
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, (5_000, 2))
    y = np.sin(3 * X[:, 0])  # not monotone: a linear correlation would be ~0 here
    u = univariate_power(X, y, "regression")
    assert abs(np.corrcoef(X[:, 0], y)[0, 1]) < 0.4
    assert u[0] > 0.95 and u[1] < 0.01


def test_classification_known_answers():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4_000, 3))
    y = np.where(X[:, 1] > 0.3, "yes", "no")  # decided by x1 alone, unbalanced
    u = univariate_power(X, y, "classification")
    assert u[1] > 0.97
    rare = np.where(X[:, 1] > 1.9, "fraud", "ok")  # ~3% positives, the boundary inside a quantile bin
    assert univariate_power(X, rare, "classification")[1] > 0.9
    assert u[0] < 0.02 and u[2] < 0.02
    assert np.all(univariate_power(X, np.zeros(4_000), "classification") == 0)  # one class: nothing to predict


def test_noise_scores_near_zero_at_small_n():
    """Leave-one-out removes the in-sample bias of binned fits (~n_bins / n = 0.1 here)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 8))
    assert univariate_power(X, rng.standard_normal(200), "regression").max() < 0.05
    assert univariate_power(X, rng.integers(0, 2, 200), "classification").max() < 0.1


@settings(derandomize=True, max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.integers(5, 60), st.integers(2, 8))
def test_closed_forms_match_brute_force_leave_one_out(seed, n, n_bins):
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(n), 1)  # rounding creates ties and duplicate quantiles
    y_reg = x**2 + rng.standard_normal(n)
    y_cls = rng.integers(0, 3, n) + (x > 0)
    X = x[:, None]
    assert univariate_power(X, y_reg, "regression", n_bins=n_bins)[0] == pytest.approx(
        _brute_regression(x, y_reg, n_bins), abs=1e-9
    )
    if len(np.unique(y_cls)) > 1:
        assert univariate_power(X, y_cls, "classification", n_bins=n_bins)[0] == pytest.approx(
            _brute_classification(x, y_cls, n_bins), abs=1e-9
        )


def test_binary_and_constant_features():
    rng = np.random.default_rng(4)
    b = rng.integers(0, 2, 1_000).astype(float)
    X = np.column_stack([b, np.full(1_000, 3.0)])
    y = 5 * b + 0.01 * rng.standard_normal(1_000)
    u = univariate_power(X, y, "regression")
    assert u[0] > 0.99 and u[1] == 0.0


def test_values_in_unit_interval_and_constant_target():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((50, 4))
    u = univariate_power(X, -3 * X[:, 2] + rng.standard_normal(50), "regression")
    assert np.all((u >= 0) & (u <= 1)) and u.shape == (4,)
    assert np.all(univariate_power(X, np.ones(50), "regression") == 0)


@pytest.mark.parametrize(
    ("X", "y", "task", "kw", "exc", "text"),
    [
        (np.ones((3, 2)), np.ones(4), "regression", {}, UsageError, "one value per row"),
        (np.ones((3, 2)), np.ones(3), "ranking", {}, UsageError, "unknown task"),
        (np.ones((3, 2)), np.ones(3), "regression", {"n_bins": 1}, UsageError, "n_bins"),
        (np.ones((3, 2)), np.array(["a", "b", "c"]), "regression", {}, UsageError, "numeric"),
        (np.ones((3, 2)), np.array([1.0, np.nan, 2.0]), "regression", {}, DataError, "target"),
        (np.array([[1.0], [np.inf], [2.0]]), np.ones(3), "regression", {}, DataError, "row 1"),
    ],
)
def test_bad_input(X, y, task, kw, exc, text):
    with pytest.raises(exc, match=text):
        univariate_power(X, y, task, **kw)
