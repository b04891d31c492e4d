"""Section ``expected``: the known-answer check, estimated against expected attribution for a linear model."""

from __future__ import annotations

import math
from typing import Any

from audit.report import charts
from audit.report._format import fmt_num, fmt_signed, is_missing
from audit.report.sections._common import markup
from audit.results import AuditRun

__all__ = ["build"]


def build(run: AuditRun) -> dict[str, Any] | None:
    """The identity scatter and the per-feature table of known answers.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``rows``, ``chart`` and ``worst`` (the largest per-row error); None when the run has no known answers.
    """
    if not run.expected:
        return None
    rows = [
        {
            "name": e.name,
            "coefficient": fmt_signed(e.coefficient),
            "expected_mean": fmt_signed(e.expected_mean),
            "estimated_mean": fmt_signed(e.estimated_mean),
            "expected_mean_abs": fmt_num(e.expected_mean_abs),
            "estimated_mean_abs": fmt_num(e.estimated_mean_abs),
            "max_abs_error": fmt_num(e.max_abs_error),
        }
        for e in run.expected
    ]
    worst = max((e.max_abs_error for e in run.expected if not is_missing(e.max_abs_error)), default=math.nan)
    chart = charts.identity_scatter(
        [e.name for e in run.expected],
        [e.expected_mean for e in run.expected],
        [e.estimated_mean for e in run.expected],
        chart_id="chart-expected",
        title="Estimated against expected mean attribution",
        x_label="expected: coefficient × (x − x′), mean over rows",
        y_label="estimated (IG)",
    )
    return {"rows": rows, "chart": markup(chart), "worst": fmt_num(worst)}
