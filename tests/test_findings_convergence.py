"""not_converged: quiet when every row converged, info under 1% of rows, warn above; fail only when the attributions
are unusable (the median row misses >= 50% of its output change); the cause and advice from the re-runs, naming only
options that exist and are accepted."""

from __future__ import annotations

import re

import numpy as np
import pytest

from audit.analysis import summarize_convergence
from audit.analysis.convergence_cause import ConvergenceCause, classify_cause
from audit.attribution.quadrature import MAX_STEPS
from audit.cli.main import app
from audit.config import Thresholds
from audit.findings import convergence
from audit.results import Severity

T = Thresholds()


def _conv(n_bad: int, n: int = 1_000, n_steps: int | str = 50, steps: int = 50, bad: float | None = None):
    rel = np.full(n, 1e-5)
    if n_bad:
        rel[:n_bad] = np.linspace(0.02, 0.2, n_bad) if bad is None else bad
    return summarize_convergence(rel, np.full(n, steps), "gausslegendre", n_steps, T.convergence_tol)


def test_all_converged_is_quiet():
    assert convergence.detect(convergence=_conv(0), thresholds=T) == []


def test_a_few_rows_warn_with_counts_and_advice():
    (f,) = convergence.detect(convergence=_conv(37), thresholds=T)
    assert (f.code, f.severity) == ("not_converged", Severity.WARN)
    assert "37 of 1,000 rows (3.7%)" in f.message and "--n-steps auto" in f.message and "20.0%" in f.message
    assert f.evidence["rows_not_converged"] == 37 and f.evidence["not_converged_fraction"] == 0.037


def test_many_unconverged_rows_warn_not_fail_while_the_median_row_is_fine():
    # 45% of rows above 1%, but the median row is within tolerance: the evidence is weaker, the model is not wrong
    (f,) = convergence.detect(convergence=_conv(450), thresholds=T)
    assert f.severity is Severity.WARN and not f.evidence["unusable"]
    assert "the ranking stands but rests on approximate rows" in f.message


def test_unusable_attributions_fail_and_say_why():
    (f,) = convergence.detect(convergence=_conv(700, bad=0.9), thresholds=T)  # the median row misses 90%
    assert f.severity is Severity.FAIL and f.evidence["unusable"]
    assert f.message.startswith("The attributions are unusable: the median row's attributions miss 90.0%")
    assert "ranking meaningless" in f.message


def test_auto_advice_is_the_step_limit_that_is_accepted_and_none_at_the_limit():
    (g,) = convergence.detect(convergence=_conv(15, n_steps="auto", steps=1024), thresholds=T)
    assert f"--max-steps {MAX_STEPS}" in g.message and "--n-steps auto" not in g.message
    (h,) = convergence.detect(convergence=_conv(15, n_steps="auto", steps=MAX_STEPS), thresholds=T)
    assert "--max-steps" not in h.message and "most steps allowed" in h.message


def test_under_one_percent_of_rows_is_info_not_a_warning():
    (f,) = convergence.detect(convergence=_conv(9), thresholds=T)  # 0.9%
    assert f.severity is Severity.INFO and "9 of 1,000 rows" in f.message
    (g,) = convergence.detect(convergence=_conv(10), thresholds=T)  # exactly 1%
    assert g.severity is Severity.WARN


def _cause(kind: str, **kw) -> ConvergenceCause:
    base = dict(rows=32, baseline="zero", outside=("area", "perimeter"), outside_sd=(212.0, 180.0), n_outside=7,
                captured=0.97, fixed_by_mean=1.0, fixed_by_steps=0.1, steps_tried=MAX_STEPS)  # fmt: skip
    base.update(kw)
    return ConvergenceCause(cause=kind, **base)


def test_baseline_outside_the_data_is_named_with_columns_and_working_advice():
    (f,) = convergence.detect(convergence=_conv(370), thresholds=T, cause=_cause("baseline_outside_data"))
    assert f.severity is Severity.WARN and f.features == ("area", "perimeter")
    assert "the zero baseline lies outside the data on 7 column(s) ('area' (212 sd from the mean)" in f.message
    assert "and 5 more" in f.message and "100.0% of 32 re-run rows converge" in f.message
    assert "--baseline mean" in f.message and f.evidence["cause"] == "baseline_outside_data"


def test_steep_advice_names_the_steps_that_fixed_the_rows():
    (f,) = convergence.detect(convergence=_conv(37, n_steps=50), thresholds=T,
                              cause=_cause("steep", fixed_by_steps=0.9, fixed_by_mean=None, n_outside=0))  # fmt: skip
    assert f"--n-steps auto --max-steps {MAX_STEPS}" in f.message and "90.0% of 32 re-run rows" in f.message
    (g,) = convergence.detect(convergence=_conv(37, n_steps="auto"), thresholds=T,
                              cause=_cause("steep", fixed_by_steps=0.9, fixed_by_mean=None, n_outside=0))  # fmt: skip
    assert f"with --max-steps {MAX_STEPS}" in g.message and "--n-steps" not in g.message


def test_non_differentiable_says_no_option_fixes_it():
    (f,) = convergence.detect(convergence=_conv(37), thresholds=T,
                              cause=_cause("non_differentiable", captured=0.02, fixed_by_mean=0.0, fixed_by_steps=0.0))
    assert "gradients are ~0" in f.message and "no option fixes that" in f.message and "2.0%" in f.message
    assert "--max-steps" not in f.message and "--n-steps" not in f.message


@pytest.mark.parametrize("cause", ["baseline_outside_data", "steep", "non_differentiable", "unresolved", None])
@pytest.mark.parametrize("n_steps", [50, "auto"])
def test_every_option_the_advice_names_is_accepted_by_audit_run(cause, n_steps):
    """The advice never names an option the CLI refuses (it once said --max-steps 8192)."""
    from typer.testing import CliRunner

    c = None if cause is None else _cause(cause, captured=0.02 if cause == "non_differentiable" else 0.97)
    (f,) = convergence.detect(convergence=_conv(37, n_steps=n_steps), thresholds=T, cause=c)
    flags = re.findall(r"--[a-z-]+(?: [a-z0-9]+)?", f.message)
    for flag in flags:
        if flag.startswith("--baseline"):
            continue  # a choice, validated when the data are read
        parts = flag.split()
        result = CliRunner().invoke(app, ["run", "--model", "m.pt", "--data", "d.csv", *parts])
        # exit 3: every option was accepted and the run got as far as opening the (missing) data file
        assert result.exit_code == 3 and "does not exist" in result.output, (flag, result.output)


def test_classify_cause_order():
    assert classify_cause(n_outside=3, captured=0.9, fixed_by_mean=0.8, fixed_by_steps=0.9) == "baseline_outside_data"
    assert classify_cause(n_outside=0, captured=0.9, fixed_by_mean=None, fixed_by_steps=0.9) == "steep"
    assert classify_cause(n_outside=0, captured=0.01, fixed_by_mean=None, fixed_by_steps=0.0) == "non_differentiable"
    assert classify_cause(n_outside=3, captured=0.9, fixed_by_mean=0.1, fixed_by_steps=0.1) == "unresolved"
