"""target_leakage and identifier_leakage: planted leaks are flagged and named, clean data stays quiet."""

from __future__ import annotations

import numpy as np
import pytest
from findings_planted import linear_case

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
    assert "normalised accuracy" in out[0].message


def test_row_id_with_real_attribution_is_flagged():
    X, y, names = _clean()
    row_id = np.arange(N, dtype=float)
    Xi = np.column_stack([X, row_id])
    # the model gives the (standardised) row id a weight: IG of w * (x - 0) on the raw id column
    out = _detect(Xi, y, [1.0, 0.8, 0.6, 0.5, 0.4, 0.4 / N], names + ["row_id"])
    assert [(f.code, f.severity, f.features) for f in out] == [("identifier_leakage", Severity.WARN, ("row_id",))]
    assert out[0].evidence["rank"] > 1


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
