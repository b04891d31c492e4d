"""not_converged: quiet when every row converged, info under 1% of rows, warn above, fail past the fraction."""

from __future__ import annotations

import numpy as np

from audit.analysis import summarize_convergence
from audit.config import Thresholds
from audit.findings import convergence
from audit.results import Severity

T = Thresholds()


def _conv(n_bad: int, n: int = 1_000, n_steps: int | str = 50):
    rel = np.full(n, 1e-5)
    rel[:n_bad] = np.linspace(0.02, 0.2, n_bad) if n_bad else rel[:0]
    return summarize_convergence(rel, np.full(n, 50), "gausslegendre", n_steps, T.convergence_tol)


def test_all_converged_is_quiet():
    assert convergence.detect(convergence=_conv(0), thresholds=T) == []


def test_a_few_rows_warn_with_counts_and_advice():
    (f,) = convergence.detect(convergence=_conv(37), thresholds=T)
    assert (f.code, f.severity) == ("not_converged", Severity.WARN)
    assert "37 of 1,000 rows (3.7%)" in f.message and "--n-steps auto" in f.message and "20.0%" in f.message
    assert f.evidence["rows_not_converged"] == 37 and f.evidence["not_converged_fraction"] == 0.037


def test_many_rows_fail_and_auto_gets_other_advice():
    (f,) = convergence.detect(convergence=_conv(100), thresholds=T)  # exactly 10%
    assert f.severity is Severity.FAIL
    (g,) = convergence.detect(convergence=_conv(15, n_steps="auto"), thresholds=T)
    assert g.severity is Severity.WARN and "--n-steps auto" not in g.message and "step limit" in g.message


def test_under_one_percent_of_rows_is_info_not_a_warning():
    (f,) = convergence.detect(convergence=_conv(9), thresholds=T)  # 0.9%
    assert f.severity is Severity.INFO and "9 of 1,000 rows" in f.message
    (g,) = convergence.detect(convergence=_conv(10), thresholds=T)  # exactly 1%
    assert g.severity is Severity.WARN
