"""Section ``noise``: the features declared as noise, the attribution they get and whether a finding names them."""

from __future__ import annotations

from typing import Any

from audit.report._format import fmt_num, fmt_pct, is_missing
from audit.report.sections._common import feature_flags
from audit.results import AuditRun

__all__ = ["build"]


def build(run: AuditRun) -> dict[str, Any] | None:
    """One row per declared noise feature, against the uniform share.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``rows`` and ``uniform`` (the share every feature would get if attribution were uniform); None when
        no feature was declared as noise.
    """
    if not run.declared_noise:
        return None
    flags = feature_flags(run)
    stats = {s.name: s for s in run.features}
    n = len(run.features) or 1
    rows = []
    for name in run.declared_noise:
        s = stats.get(name)
        flag = flags.get(name, "noise")
        rows.append(
            {
                "name": name,
                "rank": f"{s.rank} of {len(run.features)}" if s else "not ranked",
                "share": fmt_pct(s.share) if s else "n/a",
                "vs_uniform": f"{fmt_num(s.share * n, 2)}×" if s and not is_missing(s.share) else "n/a",
                "ci": f"{fmt_num(s.ci_low)} – {fmt_num(s.ci_high)}" if s else "n/a",
                "status": {"fail": "fail", "warn": "warn"}.get(flag, "ok"),
                "status_label": {"fail": "used (fail)", "warn": "used (warning)"}.get(flag, "quiet"),
            }
        )
    return {"rows": rows, "uniform": fmt_pct(1 / n)}
