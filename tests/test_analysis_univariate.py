"""univariate_power: perfect predictors score 1, unrelated features ~0, the closed forms against brute force."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.analysis import univariate_power
from audit.analysis.univariate import MEASURES, TASKS, _changes, _succ_sq, canonical_task, univariate_measure
from audit.errors import DataError, UsageError


def _sklearn_datasets():
    """scikit-learn's bundled data sets (no network; scikit-learn is in the dev extra)."""
    from sklearn import datasets

    return datasets


def _tie_orders(x: np.ndarray):
    """Every order of the rows sorted by x, ties in any order (brute force for the tie averages)."""
    values = np.unique(x)
    groups = [list(itertools.permutations(np.flatnonzero(x == v))) for v in values]
    for combo in itertools.product(*groups):
        yield np.concatenate([np.array(c, dtype=int) for c in combo])


# --- known answers --------------------------------------------------------------------------------------------


def test_binary_label_plus_small_noise_scores_exactly_one():
    """The planted leak of the issue: the binned score gave 0.82-0.97 for it."""
    rng = np.random.default_rng(0)
    n = 3_000
    X = rng.standard_normal((n, 3))
    y = (X[:, 0] + X[:, 1] + rng.standard_normal(n) > 0).astype(int)
    leak = np.column_stack([y + 0.01 * rng.standard_normal(n), y + 0.1 * y.std() * rng.standard_normal(n)])
    u = univariate_power(np.column_stack([X, leak]), y, "binary_classification")
    assert u[3] == pytest.approx(1.0, abs=1e-12) and u[4] == pytest.approx(1.0, abs=1e-12)
    assert u[2] < 0.06  # unrelated: spread 1 / sqrt(n) = 0.018
    rare = (X[:, 1] > 1.9).astype(int)  # ~3% positives
    assert univariate_power(X, rare, "classification")[1] == pytest.approx(1.0, abs=1e-12)


def test_perfectly_ordered_column_scores_exactly_one_on_any_scale():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(500)
    X = np.column_stack([y, -3 * y + 7, np.exp(y), np.argsort(np.argsort(y)) * 1e-9])
    assert univariate_power(X, y, "regression") == pytest.approx(np.ones(4), abs=1e-12)
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, 500)]
    codes = np.searchsorted(["a", "b", "c"], labels).astype(float)
    # the label's own codes: three pure tie groups, two label changes, the fewest three classes can have
    assert univariate_power(codes[:, None], labels, "classification")[0] == pytest.approx(1.0, abs=1e-12)
    assert univariate_power((codes == 1)[:, None] * 1.0, codes == 1, "binary")[0] == pytest.approx(1.0, abs=1e-12)


def test_separator_with_m_switches_closed_form():
    """Labels 0 | 1 | 0 in blocks of 30, 40, 30 along x: 2 changes, E0 = 2 * 60 * 40 / 100 = 48, min 1 change."""
    x = np.arange(100.0)
    y = np.r_[np.zeros(30), np.ones(40), np.zeros(30)]
    assert univariate_power(x[:, None], y, "binary")[0] == pytest.approx(1 - 1 / 47, abs=1e-12)


def test_nonmonotone_separators_and_functions_score_about_one():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3_000, 2))
    assert univariate_power(x, np.abs(x[:, 0]) > 1, "binary")[0] > 0.99  # |x| > 1: AUC says little here
    assert np.all(univariate_power(x, np.zeros(3_000), "regression") == 0)  # constant target
    xs = rng.uniform(-2, 2, (5_000, 2))
    u = univariate_power(xs, np.sin(3 * xs[:, 0]), "regression")
    assert abs(np.corrcoef(xs[:, 0], np.sin(3 * xs[:, 0]))[0, 1]) < 0.5 and u[0] > 0.999 and u[1] < 0.05


def test_independent_by_construction_scores_zero():
    """x splits the rows in two halves with the same target values in each: no information, score exactly 0."""
    x = np.repeat([0.0, 1.0], 50)
    y_cls = np.tile([0, 1], 50)  # 25 / 25 in each half
    y_reg = np.tile(np.arange(50.0), 2)  # the same 50 values in each half
    assert univariate_power(x[:, None], y_cls, "binary")[0] == 0.0
    assert univariate_power(x[:, None], y_reg, "regression")[0] == 0.0
    assert univariate_power(np.c_[x, np.full(100, 2.0)], y_reg, "regression").tolist() == [0.0, 0.0]


def test_noisy_predictor_scores_its_r2():
    """An R^2-scale score: y = x + noise with R^2 0.5 scores ~0.5; Bernoulli(p = x) labels, x ~ U(0, 1), have
    Goodman-Kruskal tau Var(p) / (p (1 - p)) = (1/12) / (1/4) = 1/3; a 3-class label whose class 0 the feature
    separates and classes 1 and 2 not: tau = 1 - (1/3) / (2/3) = 1/2 (iris' petal width, roughly)."""
    rng = np.random.default_rng(3)
    n = 20_000
    x = rng.standard_normal(n)
    assert univariate_power(x[:, None], x + rng.standard_normal(n), "regression")[0] == pytest.approx(0.5, abs=0.03)
    p = rng.uniform(size=n)
    assert univariate_power(p[:, None], rng.uniform(size=n) < p, "binary")[0] == pytest.approx(1 / 3, abs=0.03)
    cls = rng.integers(0, 3, n)
    feat = np.where(cls == 0, -1.0, 1.0) + rng.uniform(0, 0.5, n)  # class 0 apart, 1 and 2 mixed
    assert univariate_power(feat[:, None], cls, "classification")[0] == pytest.approx(0.5, abs=0.03)


def test_noise_scores_near_zero():
    """200 rows, 30 unrelated features, 20 draws: measured worst 0.20 (regression), 0.27 (binary), 0.14
    (4 classes); the null expectation is exactly 0 (the mean of the clipped scores is ~0.03)."""
    worst = {"regression": 0.0, "binary": 0.0, "classification": 0.0}
    means = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((200, 30))
        targets = {
            "regression": rng.standard_normal(200),
            "binary": rng.integers(0, 2, 200),
            "classification": rng.integers(0, 4, 200),
        }
        for task, y in targets.items():
            u = univariate_power(X, y, task)
            worst[task] = max(worst[task], float(u.max()))
            means.append(u.mean())
    assert max(worst.values()) < 0.35, worst
    assert np.mean(means) < 0.05


def test_null_expectation_is_exact_with_ties():
    """Averaged over every permutation of the target, S equals E0[S] (regression: 2 SST; labels: (n^2 - sum n_c^2)
    / n), also when the feature has ties; so the unclipped score is 0 on average."""
    x = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 2.0])
    y = np.array([0.3, -1.0, 2.0, 0.5, 0.5, 4.0])
    labels = np.array([0, 1, 1, 2, 0, 0])
    perms = list(itertools.permutations(range(6)))
    s_reg = np.mean([_succ_sq(x, (y[list(p)] - y.mean())[:, None])[0] for p in perms])
    s_cls = np.mean([_changes(x, labels[list(p)], 3) for p in perms])
    assert s_reg == pytest.approx(2 * np.sum((y - y.mean()) ** 2), rel=1e-12)
    counts = np.bincount(labels)
    assert s_cls == pytest.approx((36 - counts @ counts) / 6, rel=1e-12)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 7))
def test_tie_averages_match_brute_force(seed, n):
    """The closed forms equal the average of the statistic over every order of each tie group."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, n).astype(float)  # heavy ties
    y = np.round(rng.standard_normal(n), 1)
    labels = rng.integers(0, 3, n)
    reg, cls = [], []
    for order in _tie_orders(x):
        reg.append(np.sum(np.diff(y[order]) ** 2))
        cls.append(np.count_nonzero(np.diff(labels[order]) != 0))
    assert _succ_sq(x, y[:, None])[0] == pytest.approx(np.mean(reg), rel=1e-9, abs=1e-9)
    assert _changes(x, labels, 3) == pytest.approx(np.mean(cls), rel=1e-9, abs=1e-9)


def test_multioutput_takes_the_best_output():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1_000, 3))
    Y = np.column_stack([rng.standard_normal(1_000), X[:, 1] ** 3, np.ones(1_000)])  # noise, x1 exactly, constant
    u = univariate_power(X, Y, "multioutput_regression")
    assert u[1] == pytest.approx(1.0, abs=1e-12) and u[0] < 0.1 and u[2] < 0.1
    assert univariate_power(X, Y[:, 1], "multioutput")[1] == pytest.approx(1.0, abs=1e-12)  # (n,) is one output


def test_real_data_sets_stay_below_the_leak_bar():
    """No genuine feature of scikit-learn's bundled sets explains >= 0.95 of its target alone. Measured maxima:
    breast cancer 0.738 ('worst perimeter', AUC 0.975), wine 0.609, iris 0.896 (petal width, which separates
    setosa only), digits 0.108, diabetes 0.372 ('bmi'); label + N(0, 0.01) scores 1.000 on each."""
    ds = _sklearn_datasets()
    cases = {
        "breast_cancer": (ds.load_breast_cancer, "binary_classification", 0.75),
        "wine": (ds.load_wine, "classification", 0.65),
        "iris": (ds.load_iris, "classification", 0.91),
        "digits": (ds.load_digits, "classification", 0.15),
        "diabetes": (ds.load_diabetes, "regression", 0.40),
    }
    rng = np.random.default_rng(5)
    for name, (load, task, bound) in cases.items():
        d = load()
        u = univariate_power(d.data, d.target, task)
        assert u.max() < bound, (name, u.max())
        leak = d.target + 0.01 * rng.standard_normal(len(d.target))
        assert univariate_power(leak[:, None], d.target, task)[0] > 0.999, name


def test_speed_200k_rows():
    """One sort per feature: 200,000 rows x 20 features take well under a second on one core (x 100: ~2.5 s)."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((200_000, 20))
    t0 = time.perf_counter()
    univariate_power(X, rng.integers(0, 2, 200_000), "binary")
    univariate_power(np.round(X, 1), X[:, 0], "regression")  # with ties
    assert time.perf_counter() - t0 < 20  # generous: shared CI machines


# --- task names, measures and errors --------------------------------------------------------------------------


def test_task_names_and_measures():
    for old, new in [("regression", "regression"), ("classification", "classification"),
                     ("binary", "binary_classification"), ("multiclass", "classification"),
                     ("multioutput", "multioutput_regression"), ("image_classification", "classification")]:
        assert canonical_task(old) == new
    assert set(MEASURES) == set(TASKS)
    assert univariate_measure("binary") == "neighbour tau" and "R^2" in univariate_measure("regression")
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 2))
    y = (X[:, 0] > 0).astype(int)
    assert np.array_equal(univariate_power(X, y, "binary"), univariate_power(X, y, "classification"))
    assert np.array_equal(univariate_power(X, y.astype(str), "binary"), univariate_power(X, y, "binary"))


def test_binary_and_constant_features():
    rng = np.random.default_rng(8)
    b = rng.integers(0, 2, 1_000).astype(float)
    X = np.column_stack([b, np.full(1_000, 3.0)])
    y = 5 * b + 0.01 * rng.standard_normal(1_000)
    u = univariate_power(X, y, "regression")
    assert u[0] > 0.99 and u[1] == 0.0


def test_small_and_degenerate_inputs():
    X = np.arange(10.0)[:, None]
    assert univariate_power(X[:2], np.array([0.0, 1.0]), "regression").tolist() == [0.0]  # fewer than 3 rows
    assert univariate_power(X, np.zeros(10), "classification").tolist() == [0.0]  # one class
    assert univariate_power(X, np.arange(10), "classification").tolist() == [0.0]  # every row its own class
    u = univariate_power(np.random.default_rng(9).standard_normal((50, 4)), np.arange(50.0), "regression")
    assert np.all((u >= 0) & (u <= 1)) and u.shape == (4,)


@pytest.mark.parametrize(
    ("X", "y", "task", "exc", "text"),
    [
        (np.ones((3, 2)), np.ones(4), "regression", UsageError, "one value per row"),
        (np.ones((3, 2)), np.ones((3, 2)), "regression", UsageError, "multioutput_regression"),
        (np.ones((3, 2)), np.ones((4, 2)), "multioutput_regression", UsageError, "shape"),
        (np.ones((3, 2)), np.ones(3), "ranking", UsageError, "unknown task"),
        (np.ones((3, 2)), np.array([0, 1, 2]), "binary_classification", UsageError, "at most 2 classes"),
        (np.ones((3, 2)), np.array(["a", "b", "c"]), "regression", UsageError, "numeric"),
        (np.ones((3, 2)), np.array([1.0, np.nan, 2.0]), "regression", DataError, "target"),
        (np.ones((3, 2)), np.array([1.0, np.nan, 2.0]), "classification", DataError, "target"),
        (np.array([[1.0], [np.inf], [2.0]]), np.ones(3), "regression", DataError, "row 1"),
    ],
)
def test_bad_input(X, y, task, exc, text):
    with pytest.raises(exc, match=text):
        univariate_power(X, y, task)
