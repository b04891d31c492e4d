"""Section ``slices``: the ranking recomputed in each group of a slicing column, against the global one, and the
direction of the global top features there (average local effect per standard deviation, in the group against
the other rows), marked where it is reversed (the two 95% intervals on opposite sides of zero)."""

from __future__ import annotations

from typing import Any

from audit.report._format import fmt_compact, fmt_num, fmt_pct, fmt_signed, is_missing
from audit.report.sections._common import recorded_thresholds
from audit.results import AuditRun, SliceDirection

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
                "directions": [_direction(d) for d in s.directions[:3]],
                "reversed": any(_reversed(d) for d in s.directions),
            }
        )
    return {
        "rows": rows,
        "limit": fmt_compact(limit) if isinstance(limit, int | float) else "n/a",
        "has_directions": any(r["directions"] for r in rows),
    }


def _reversed(d: SliceDirection) -> bool:
    return (d.low > 0 and d.rest_high < 0) or (d.high < 0 and d.rest_low > 0)


def _direction(d: SliceDirection) -> dict[str, Any]:
    """``{"text": "a +0.98 (elsewhere -0.49)", "reversed": bool}``."""
    return {
        "text": f"{d.feature} {fmt_signed(d.effect)} (elsewhere {fmt_signed(d.rest_effect)})",
        "reversed": _reversed(d),
    }
