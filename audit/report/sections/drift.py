"""Section ``drift``: KS distance from the reference data per feature, weighted by the feature's share."""

from __future__ import annotations

import math
from typing import Any

from audit.report._format import fmt_num, fmt_pct, is_missing
from audit.results import AuditRun

__all__ = ["build"]


def build(run: AuditRun) -> dict[str, Any] | None:
    """One row per feature, largest weighted drift first, and the total.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``rows`` and ``total`` (the summed weighted drift); None when the run has no reference data.
    """
    if not run.drift:
        return None
    items = sorted(run.drift, key=lambda d: (-(d.weighted if not is_missing(d.weighted) else -math.inf), d.name))
    total = sum(d.weighted for d in run.drift if not is_missing(d.weighted))
    rows = [
        {"name": d.name, "ks": fmt_num(d.ks), "share": fmt_pct(d.share), "weighted": fmt_num(d.weighted)} for d in items
    ]
    return {"rows": rows, "total": fmt_num(total)}
