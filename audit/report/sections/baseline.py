"""Section ``baseline``: which baseline the attributions are measured from, and whether the ranking depends on it
(the ranking of a sample of rows under a second baseline, :class:`~audit.results.BaselineSensitivity`)."""

from __future__ import annotations

from typing import Any

from audit.report._format import fmt_pct, is_missing
from audit.results import AuditRun

__all__ = ["build"]


def _rho(x: float) -> str:
    return "n/a" if is_missing(x) else f"{x:.2f}"


def build(run: AuditRun) -> dict[str, Any] | None:
    """The baseline facts and the two top-5 rankings side by side.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``facts``, ``status``, ``ok`` and ``rows`` (rank, feature and share under each baseline); None when the run
        has no sensitivity record (images, text, or the check was off).
    """
    s = run.baseline_sensitivity
    if s is None:
        return None
    flagged = any(f.code == "baseline_sensitive" for f in run.findings)
    chosen = s.chosen + (" (default)" if run.baseline_default else "")
    facts = [
        ("Baseline used", chosen),
        ("Compared with", s.second),
        ("Rows compared", f"{s.rows:,}"),
        ("Rank correlation", f"{_rho(s.spearman)} (95% CI {_rho(s.ci_low)} to {_rho(s.ci_high)}, "
                             f"{s.features_compared} features)"),
    ]  # fmt: skip
    if flagged:
        status = "The ranking depends on the baseline: read it as relative to the reference point shown."
    else:
        status = "The ranking holds under the second baseline, within sampling noise."
    rows = []
    for k in range(max(len(s.top_chosen), len(s.top_second))):
        rows.append({
            "rank": k + 1,
            "chosen": s.top_chosen[k] if k < len(s.top_chosen) else "",
            "chosen_share": fmt_pct(s.shares_chosen[k]) if k < len(s.shares_chosen) else "",
            "second": s.top_second[k] if k < len(s.top_second) else "",
            "second_share": fmt_pct(s.shares_second[k]) if k < len(s.shares_second) else "",
        })
    return {"facts": facts, "status": status, "ok": not flagged, "rows": rows, "chosen": chosen, "second": s.second}
