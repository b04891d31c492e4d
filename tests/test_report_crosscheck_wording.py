"""The cross-check facts say which tolerance decides: a relative difference above tol_rel that passes is the
absolute allowance at work on a row with small attributions, and the report says so instead of printing
"largest relative difference 0.0131" beside "tolerance 0.001 relative" under "Agrees"."""

from __future__ import annotations

import dataclasses

from audit.report.sections import crosscheck
from tests.report_fixtures import make_regression_run


def _facts(**changes) -> dict[str, str]:
    run = make_regression_run()
    run = dataclasses.replace(run, crosscheck=dataclasses.replace(run.crosscheck, **changes))
    return dict(crosscheck.build(run)["facts"])


def test_a_pass_with_a_large_relative_difference_names_the_absolute_allowance():
    facts = _facts(max_rel_diff=0.0131, max_abs_diff=6.5e-5, passed=True)
    assert facts["What decides"] == "each row agrees when max|diff| ≤ 1×10⁻⁴ + 0.001 × its largest |attribution|"
    rel = facts["Largest relative difference"]
    assert rel.startswith("0.0131 (max|diff| ÷ the row's largest |attribution|)")
    assert "the absolute allowance 1×10⁻⁴ decides, and they agree" in rel
    assert "tolerance" not in facts["Largest absolute difference"]  # the rule is stated once, on its own line


def test_within_the_relative_tolerance_no_extra_words():
    facts = _facts(max_rel_diff=4.1e-5, passed=True)
    assert "absolute allowance" not in facts["Largest relative difference"]
    facts = _facts(max_rel_diff=0.18, max_abs_diff=0.042, passed=False)
    assert "absolute allowance" not in facts["Largest relative difference"] and "What decides" in facts
