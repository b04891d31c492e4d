"""run_detectors: every detector wired in, worst-first order, JSON-ready evidence, quiet on clean linear models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from findings_planted import linear_case
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.analysis import drift, identifier_like, summarize_convergence, univariate_power
from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings import CODES, FindingsInput, run_detectors, sort_findings
from audit.results import Crosscheck, Finding, Severity, Verdict, to_dict, verdict_from_findings

T = Thresholds()


def _clean_input(seed: int, n: int, k: int, **overrides) -> FindingsInput:
    """A well-specified linear model y = X w + small noise, with every optional input filled in."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))
    w = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 1.5, k)
    y = X @ w + 0.1 * rng.standard_normal(n)
    names = [f"f{j}" for j in range(k)]
    case = linear_case(X, y, w, names, n_boot=30)
    out = X @ w  # F(x); the baseline 0 gives F(0) = 0
    rel = np.abs(case.A.sum(axis=1) - out) / np.maximum(np.abs(out), 1e-12)  # completeness, exact for IG here
    X_ref = rng.standard_normal((n, k))
    fields = dict(
        task="regression",
        stats=case.stats,
        names=tuple(names),
        univariate=univariate_power(X, y, "regression"),
        identifier=identifier_like(X, names),
        neutralisation=case.neutralisation,
        drift=drift(X, X_ref, {s.name: s.share for s in case.stats}, names),
        n_rows=n,
        n_ref_rows=n,
        baseline_output=0.0,
        output_mean=float(out.mean()),
        output_std=float(out.std()),
        convergence=summarize_convergence(rel, np.full(n, 50), "gausslegendre", 50, T.convergence_tol),
        crosscheck=Crosscheck(rows=64, max_abs_diff=1e-7, max_rel_diff=1e-6, rank_spearman=1.0, passed=True),
    )
    return FindingsInput(**(fields | overrides))


@settings(derandomize=True, max_examples=15, deadline=None)
@given(st.integers(0, 2**31), st.integers(5, 10))
def test_clean_linear_models_are_quiet(seed, k):
    assert run_detectors(_clean_input(seed, 600, k), T) == ()


def test_planted_problems_come_out_worst_first_with_json_evidence():
    rng = np.random.default_rng(0)
    n = 2_000
    X = rng.standard_normal((n, 4))
    y = X[:, 0] + X[:, 1]
    Xl = np.column_stack([X, y + 1e-3 * rng.standard_normal(n)])  # x4: a copy of the target
    names = ["x0", "x1", "x2", "x3", "leak"]
    case = linear_case(Xl, y, [0.2, 0.2, 0.6, 0.0, 2.0], names)  # x2 is noise to the target, weight 0.6
    inp = FindingsInput(
        task="regression",
        stats=case.stats,
        names=tuple(names),
        univariate=univariate_power(Xl, y, "regression"),
        declared_noise=("x2",),
        crosscheck=Crosscheck(rows=0, max_abs_diff=0, max_rel_diff=0, rank_spearman=1, passed=False,
                              skipped_reason="captum is not installed"),
    )  # fmt: skip
    out = run_detectors(inp, T)
    got = [(f.severity, f.code, f.features) for f in out]
    assert got == [
        (Severity.FAIL, "target_leakage", ("leak",)),
        (Severity.WARN, "noise_leakage", ("x2",)),
        (Severity.INFO, "concentration_skew", ("leak",)),
        (Severity.INFO, "engine_disagreement", ()),
    ]
    assert verdict_from_findings(out) is Verdict.FAIL
    assert {f.code for f in out} <= set(CODES)
    for f in out:
        json.dumps(to_dict(f), allow_nan=False)
        assert f.message.count(". ") == 0 and f.message.endswith(".")  # one sentence


def test_sort_order_is_total():
    fs = [
        Finding("b", Severity.WARN, ("z",), "m"),
        Finding("a", Severity.INFO, (), "m"),
        Finding("b", Severity.WARN, ("a",), "m"),
        Finding("c", Severity.FAIL, (), "m"),
    ]
    assert [(f.code, f.features) for f in sort_findings(fs)] == [("c", ()), ("b", ("a",)), ("b", ("z",)), ("a", ())]


def test_input_validation():
    good = _clean_input(0, 100, 5)
    with pytest.raises(UsageError, match="unknown task"):
        FindingsInput(task="ranking", stats=good.stats)
    with pytest.raises(UsageError, match="pass names"):
        FindingsInput(task="regression", stats=good.stats, univariate=np.zeros(5))
    with pytest.raises(UsageError, match="exactly the features"):
        FindingsInput(task="regression", stats=good.stats, names=("a", "b"))
    with pytest.raises(UsageError, match="global ranking"):
        FindingsInput(task="regression", stats=())
    assert FindingsInput(task="regression", stats=good.stats).names == tuple(s.name for s in good.stats)
