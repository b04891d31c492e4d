"""target_leakage and identifier_leakage: planted leaks are flagged and named, clean data stays quiet."""

from __future__ import annotations

import numpy as np
import pytest
from findings_planted import linear_case, stats_from_shares

from audit.analysis import identifier_like, univariate_power
from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings import leakage
from audit.results import Severity

T = Thresholds()
N = 3_000


def _clean(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Five informative features, none predicts y alone: y = X @ (1, 0.8, 0.6, 0.5, 0.4) + noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, 5))
    y = X @ np.array([1.0, 0.8, 0.6, 0.5, 0.4]) + 0.3 * rng.standard_normal(N)
    return X, y, [f"x{j}" for j in range(5)]


def _detect(X, y, w, names, task="regression"):
    case = linear_case(X, y, w, names)
    return leakage.detect(
        stats=case.stats,
        names=names,
        thresholds=T,
        univariate=univariate_power(X, y, task),
        identifier=identifier_like(X, names),
        task=task,
    )


def test_planted_target_copy_is_flagged_fail_and_named():
    X, y, names = _clean()
    leak = y + 1e-3 * np.random.default_rng(1).standard_normal(N)
    Xl = np.column_stack([X, leak])
    out = _detect(Xl, y, [0.1, 0.1, 0.1, 0.1, 0.1, 3.0], names + ["leak"])
    assert [(f.code, f.severity, f.features) for f in out] == [("target_leakage", Severity.FAIL, ("leak",))]
    ev = out[0].evidence
    assert ev["univariate_power"] >= T.leak_univariate and ev["rank"] == 1 and ev["share"] > 0.5
    assert "'leak'" in out[0].message and "R^2" in out[0].message


def test_leak_the_model_ignores_is_not_flagged():
    X, y, names = _clean()
    Xl = np.column_stack([X, y + 1e-3])
    out = _detect(Xl, y, [1.0, 0.8, 0.6, 0.5, 0.4, 0.0], names + ["leak"])
    assert out == []  # predicts perfectly, but the model does not lean on it


def test_classification_leak_is_flagged():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((N, 4))
    y = (X[:, 0] + X[:, 1] + rng.standard_normal(N) > 0).astype(int)
    Xl = np.column_stack([X, y + 0.01 * rng.standard_normal(N)])
    out = _detect(Xl, y, [0.5, 0.5, 0.5, 0.5, 6.0], ["a", "b", "c", "d", "label_copy"], task="classification")
    assert [(f.code, f.features) for f in out] == [("target_leakage", ("label_copy",))]
    # without a rule search (no separation scores) the neighbour tau stands in
    assert "neighbour tau" in out[0].message and out[0].evidence["measure"] == "neighbour tau"


def _sklearn_datasets():
    """scikit-learn's bundled data sets (no network; scikit-learn is in the dev extra)."""
    from sklearn import datasets

    return datasets


def _ranking_with_top(names: list[str], top: str, top_share: float, second: str | None = None, second_share=0.0):
    """A ranking where ``top`` carries ``top_share`` (rank 1), ``second`` (optional) ``second_share`` and the rest
    split what is left evenly."""
    rest = [n for n in names if n not in (top, second)]
    left = (1.0 - top_share - second_share) / max(len(rest), 1)
    share = {n: left for n in rest} | {top: top_share} | ({second: second_share} if second else {})
    return stats_from_shares([share[n] for n in names], names)


def test_perfect_binary_separator_is_flagged_even_at_rank_two():
    """label + N(0, 0.01): univariate score exactly 1 (the binned score gave ~0.9 and missed it); the model ranks
    it second with 20% of the attribution, and it is still a leak."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((N, 5))
    y = (X[:, 0] + X[:, 1] + 0.5 * rng.standard_normal(N) > 0).astype(int)
    names = ["a", "b", "c", "d", "e", "leak"]
    Xl = np.column_stack([X, y + 0.01 * rng.standard_normal(N)])
    u = univariate_power(Xl, y, "binary_classification")
    assert u[-1] >= 0.99 and u[:5].max() < 0.5
    stats = _ranking_with_top(names, "a", 0.5, "leak", 0.2)
    out = leakage.detect_target_leakage(
        stats=stats, names=names, univariate=u, thresholds=T, task="binary_classification"
    )
    assert [(f.code, f.severity, f.features) for f in out] == [("target_leakage", Severity.FAIL, ("leak",))]
    assert out[0].evidence["rank"] == 2 and out[0].evidence["share"] == pytest.approx(0.2, rel=1e-3)
    assert "neighbour tau 1.000" in out[0].message
    # a model that ignores the column (share below real_share_factor / n_features) is left alone
    quiet = _ranking_with_top(names, "a", 0.5, "leak", 0.1 * T.real_share_factor / len(names))
    assert leakage.detect_target_leakage(stats=quiet, names=names, univariate=u, thresholds=T, task="binary") == []


@pytest.mark.parametrize(
    ("task", "make_y", "make_leak"),
    [
        ("regression", lambda X, r: X[:, 0] + X[:, 1], lambda y, r: y + 0.1 * y.std() * r.standard_normal(len(y))),
        ("binary_classification", lambda X, r: (X[:, 0] + X[:, 1] > 0).astype(int), lambda y, r: y.astype(float)),
        ("binary_classification", lambda X, r: (np.abs(X[:, 0] + X[:, 1]) > 1.4).astype(int),  # not monotone
         lambda y, r: np.where(y == 1, r.choice([-2.0, 2.0], len(y)), 0.0) + 0.01 * r.standard_normal(len(y))),
        ("classification", lambda X, r: (X[:, 0] + X[:, 1] > 0) + (X[:, 2] > 0.5),
         lambda y, r: y + 0.01 * r.standard_normal(len(y))),
    ],
)
def test_planted_leaks_of_every_task_are_flagged(task, make_y, make_leak):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, 4))
    y = make_y(X, rng)
    names = ["a", "b", "c", "d", "leak"]
    Xl = np.column_stack([X, make_leak(y, rng)])
    u = univariate_power(Xl, y, task)
    stats = _ranking_with_top(names, "leak", 0.6)
    out = leakage.detect_target_leakage(stats=stats, names=names, univariate=u, thresholds=T, task=task)
    assert [f.features for f in out] == [("leak",)], u


def test_real_data_sets_are_not_flagged_even_as_the_top_feature():
    """A genuinely strong feature is no leak: every feature of scikit-learn's breast-cancer ('worst perimeter',
    AUC 0.975), wine, iris (petal width separates setosa perfectly), digits and diabetes sets in turn ranked first
    with 60% of the attribution gives no target_leakage; a label + N(0, 0.01) column added to each is flagged."""
    ds = _sklearn_datasets()
    cases = [
        (ds.load_breast_cancer, "binary_classification"),
        (ds.load_wine, "classification"),
        (ds.load_iris, "classification"),
        (ds.load_digits, "classification"),
        (ds.load_diabetes, "regression"),
    ]
    rng = np.random.default_rng(6)
    for load, task in cases:
        d = load()
        names = [str(n) for n in d.feature_names]
        u = univariate_power(d.data, d.target, task)
        for top in np.argsort(-u)[:5]:
            stats = _ranking_with_top(names, names[top], 0.6)
            assert leakage.detect_target_leakage(stats=stats, names=names, univariate=u, thresholds=T, task=task) == []
        leak = d.target + 0.01 * rng.standard_normal(len(d.target))
        names_l = names + ["leak"]
        u_l = univariate_power(np.column_stack([d.data, leak]), d.target, task)
        stats = _ranking_with_top(names_l, names[int(np.argmax(u))], 0.6, "leak", 0.1)
        out = leakage.detect_target_leakage(stats=stats, names=names_l, univariate=u_l, thresholds=T, task=task)
        assert [f.features for f in out] == [("leak",)], load.__name__


def test_target_leakage_task_names():
    X, y, names = _clean()
    case = linear_case(X, y, [1.0, 0.8, 0.6, 0.5, 0.4], names)
    for task in ("regression", "multioutput_regression", "binary_classification", "classification",
                 "image_classification", "binary"):
        assert leakage.detect_target_leakage(
            stats=case.stats, names=names, univariate=np.zeros(5), thresholds=T, task=task
        ) == []
    with pytest.raises(UsageError, match="unknown task"):
        leakage.detect_target_leakage(stats=case.stats, names=names, univariate=np.zeros(5), thresholds=T, task="x")


def test_row_id_with_real_attribution_is_flagged():
    X, y, names = _clean()
    row_id = np.arange(N, dtype=float)
    Xi = np.column_stack([X, row_id])
    # the model gives the (standardised) row id a weight: IG of w * (x - 0) on the raw id column
    out = _detect(Xi, y, [1.0, 0.8, 0.6, 0.5, 0.4, 0.4 / N], names + ["row_id"])
    assert [(f.code, f.severity, f.features) for f in out] == [("identifier_leakage", Severity.WARN, ("row_id",))]
    assert out[0].evidence["rank"] > 1


def test_standardised_row_id_is_flagged_without_saying_whole_numbers():
    X, y, names = _clean()
    row = np.arange(N, dtype=float)
    Xi = np.column_stack([X, (row - row.mean()) / row.std()])  # the row number after StandardScaler
    out = _detect(Xi, y, [1.0, 0.8, 0.6, 0.5, 0.4, 0.3], names + ["position"])
    assert [(f.code, f.features) for f in out] == [("identifier_leakage", ("position",))]
    assert "whole numbers" not in out[0].message and "row identifier" in out[0].message


def test_row_id_that_is_the_top_feature_fails():
    X, y, names = _clean()
    Xi = np.column_stack([X, np.random.default_rng(3).permutation(N).astype(float)])
    out = _detect(Xi, y, [1.0, 0.8, 0.6, 0.5, 0.4, 10.0 / N], names + ["seq"])
    assert [(f.code, f.severity, f.features) for f in out] == [("identifier_leakage", Severity.FAIL, ("seq",))]


def test_row_id_the_model_ignores_and_clean_data_are_quiet():
    X, y, names = _clean()
    Xi = np.column_stack([X, np.arange(N, dtype=float)])
    assert _detect(Xi, y, [1.0, 0.8, 0.6, 0.5, 0.4, 1e-9], names + ["row_id"]) == []
    assert _detect(X, y, [1.0, 0.8, 0.6, 0.5, 0.4], names) == []


def test_arrays_must_align_with_names():
    X, y, names = _clean()
    case = linear_case(X, y, [1.0, 0.8, 0.6, 0.5, 0.4], names)
    with pytest.raises(UsageError, match="one value per feature"):
        leakage.detect_target_leakage(stats=case.stats, names=names, univariate=np.ones(4), thresholds=T)
    with pytest.raises(UsageError, match="do not match"):
        leakage.detect_identifier_leakage(
            stats=case.stats, names=["a", "b", "c", "d", "e"], identifier=np.zeros(5, bool), thresholds=T
        )


def test_strong_real_feature_on_few_rows_is_not_a_leak_but_a_copy_of_the_label_is():
    """Iris on a 45-row split: petal length/width reach a worst-class recall of 0.9-1.0 but 15 rows per class
    cannot prove a rule (lower bounds below 0.85): they stay quiet or get an info note; on all 150 rows the label
    + N(0, 0.01) column fails and the petal features stay quiet (worst-class recall 0.92, lower bound 0.83)."""
    from sklearn.model_selection import train_test_split

    from audit.analysis.separation import rule_separation

    data = _sklearn_datasets().load_iris()
    rng = np.random.default_rng(5)
    names = ["sl", "sw", "pl", "pw", "leak"]
    _, X, _, y = train_test_split(data.data, data.target, test_size=0.3, random_state=5)  # a 45-row validation split
    Xl = np.column_stack([X, y + 0.01 * rng.standard_normal(45)])
    sep, low = rule_separation(Xl, y)
    assert (low < T.leak_separation).all()  # nothing is proven on 15 rows per class
    stats = _ranking_with_top(names, "pl", 0.5, "pw", 0.3)
    out = leakage.detect_target_leakage(stats=stats, names=names, univariate=univariate_power(Xl, y, "classification"),
                                        thresholds=T, task="classification", separation=sep, separation_low=low)
    assert all(f.severity == Severity.INFO for f in out)  # a note that names it and says why it is not judged
    assert all("too few" in f.message for f in out)
    X, y = data.data, data.target
    Xl = np.column_stack([X, y + 0.01 * rng.standard_normal(150)])
    sep, low = rule_separation(Xl, y)
    assert low[-1] >= T.leak_separation and low[:4].max() < 0.85
    stats = _ranking_with_top(names, "pw", 0.4, "leak", 0.3)
    out = leakage.detect_target_leakage(stats=stats, names=names, univariate=univariate_power(Xl, y, "classification"),
                                        thresholds=T, task="classification", separation=sep, separation_low=low)
    assert [(f.severity, f.features) for f in out] == [(Severity.FAIL, ("leak",))]


def test_reverse_score_is_evidence_not_a_gate():
    """A follow-up time that is 0 for one class and 1-120 days for the other varies within its class (the target
    explains under half of it), and the old reverse bar of 0.95 let it PASS; it is a leak all the same."""
    from audit.analysis.separation import rule_separation
    from audit.analysis.univariate import target_explains

    rng = np.random.default_rng(0)
    n = 400
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] + rng.standard_normal(n) > 0).astype(int)
    follow = np.where(y == 1, rng.integers(1, 121, n), 0).astype(float)
    Xl = np.column_stack([X, follow])
    names = ["a", "b", "c", "d", "followup_days"]
    sep, low = rule_separation(Xl, y)
    rev = target_explains(Xl, y, [4])
    assert rev[4] < 0.6
    stats = _ranking_with_top(names, "followup_days", 0.6)
    out = leakage.detect_target_leakage(stats=stats, names=names, univariate=univariate_power(Xl, y, "binary"),
                                        reverse=rev, thresholds=T, task="binary_classification", separation=sep,
                                        separation_low=low)
    assert [(f.severity, f.features) for f in out] == [(Severity.FAIL, ("followup_days",))]
    assert out[0].evidence["target_explains_feature"] == pytest.approx(rev[4], abs=1e-4)
    assert "varies within a class" in out[0].message
