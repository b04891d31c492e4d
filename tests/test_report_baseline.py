"""The report's baseline section: which baseline (and that it was the default), the rank correlation with its
interval, and both top-5 rankings; absent when the run has no sensitivity record."""

from __future__ import annotations

import dataclasses

from report_fixtures import make_classifier_run

from audit.report.html import render_html
from audit.report.sections import baseline as section
from audit.results import BaselineSensitivity, Finding, Severity

SENS = BaselineSensitivity(
    chosen="data mean", second="expected gradients (8 data rows per row)", spearman=0.31, ci_low=0.12, ci_high=0.55,
    rows=256, features_compared=6, top_chosen=("bump", "x1", "x2", "x3", "x4"),
    top_second=("x1", "x2", "x3", "x4", "bump"), shares_chosen=(0.7, 0.1, 0.1, 0.05, 0.05),
    shares_second=(0.5, 0.3, 0.1, 0.06, 0.04), top_changed=True,
)  # fmt: skip


def test_section_is_absent_without_a_sensitivity_record():
    run = make_classifier_run()
    assert run.baseline_sensitivity is None and section.build(run) is None
    assert 'id="baseline"' not in render_html(run)


def test_section_shows_both_rankings_the_interval_and_the_default():
    flag = Finding("baseline_sensitive", Severity.WARN, ("bump", "x1"), "The ranking depends on the baseline.", {})
    run = dataclasses.replace(make_classifier_run(), baseline="data mean", baseline_default=True,
                              baseline_sensitivity=SENS, findings=(flag,))  # fmt: skip
    out = section.build(run)
    assert out["chosen"] == "data mean (default)" and not out["ok"]
    assert ("Rank correlation", "0.31 (95% CI 0.12 to 0.55, 6 features)") in out["facts"]
    assert [r["chosen"] for r in out["rows"]] == list(SENS.top_chosen)
    assert [r["second"] for r in out["rows"]] == list(SENS.top_second)
    html = render_html(run)
    assert 'id="baseline"' in html and "Depends on the baseline." in html and "data mean (default)" in html
    quiet = dataclasses.replace(run, findings=())
    assert section.build(quiet)["ok"] and "Stable." in render_html(quiet)
