"""engine_disagreement: pass is quiet; skips and explained Captum-side bias are info; the rest warn or fail."""

from __future__ import annotations

import dataclasses

from audit.config import Thresholds
from audit.findings import crosscheck
from audit.results import Crosscheck, Severity

T = Thresholds()
BASE = Crosscheck(
    rows=256,
    max_abs_diff=3e-3,
    max_rel_diff=2e-2,
    rank_spearman=0.99,
    passed=False,
    method="riemann_trapezoid",
    n_steps=50,
    tol_abs=1e-4,
    tol_rel=1e-3,
    native_median_rel_delta=1e-6,
    captum_median_rel_delta=2e-2,
)


def _detect(**changes):
    return crosscheck.detect(crosscheck=dataclasses.replace(BASE, **changes), thresholds=T)


def test_pass_is_quiet():
    assert _detect(passed=True) == []


def test_skipped_is_info_with_reason():
    (f,) = _detect(skipped_reason="captum is not installed")
    assert (f.code, f.severity) == ("engine_disagreement", Severity.INFO)
    assert "captum is not installed" in f.message


def test_known_captum_bias_is_info_and_compares_completeness():
    (f,) = _detect(captum_bias="its trapezoid weights sum to (n-1)/n")
    assert f.severity is Severity.INFO
    assert "bias on Captum's side" in f.message and "1.00e-06" in f.message and "0.02" in f.message
    assert f.evidence["captum_bias"] == "its trapezoid weights sum to (n-1)/n"  # the full account stays


def test_unexplained_disagreement_warns_and_fails_when_rankings_differ():
    (f,) = _detect()
    assert f.severity is Severity.WARN and "Spearman 0.99" in f.message
    (g,) = _detect(rank_spearman=0.5)
    assert g.severity is Severity.FAIL
    (h,) = _detect(rank_spearman=float("nan"))  # undefined agreement is not evidence of disagreement
    assert h.severity is Severity.WARN and h.evidence["rank_spearman"] is None
