"""Section ``slices``: the ranking recomputed in each group of a slicing column, against the global one."""

from __future__ import annotations

from typing import Any

from audit.report._format import fmt_compact, fmt_num, fmt_pct, is_missing
from audit.report.sections._common import recorded_thresholds
from audit.results import AuditRun

__all__ = ["build"]


def build(run: AuditRun) -> dict[str, Any] | None:
    """One row per group, marked where its Spearman ρ is below the recorded ``slice_spearman`` threshold.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``rows`` and ``limit`` (the threshold in words); None when the run has no slices.
    """
    if not run.slices:
        return None
    limit = recorded_thresholds(run).get("slice_spearman", 0.5)
    rows = []
    for s in run.slices:
        low = not is_missing(s.spearman_vs_all) and isinstance(limit, int | float) and s.spearman_vs_all < limit
        rows.append(
            {
                "column": s.column,
                "group": s.group,
                "rows": fmt_num(s.rows),
                "spearman": fmt_num(s.spearman_vs_all),
                "low": low,
                "top": ", ".join(f"{n} ({fmt_pct(s.shares.get(n))})" for n in s.top_features[:5]),
            }
        )
    return {"rows": rows, "limit": fmt_compact(limit) if isinstance(limit, int | float) else "n/a"}
