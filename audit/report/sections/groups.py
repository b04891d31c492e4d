"""Section ``groups``: the grouped ranking, where each one-hot category or declared group counts as one feature."""

from __future__ import annotations

from typing import Any

from audit.report._format import fmt_num, fmt_pct, fmt_signed
from audit.report.sections._common import feature_flags
from audit.results import AuditRun

__all__ = ["build"]

_KIND = {"one-hot": "one-hot category", "one-hot (a dropped level)": "one-hot category (first level dropped)",
         "declared": "declared with --group"}


def build(run: AuditRun) -> dict[str, Any] | None:
    """One row per unit of the grouped ranking (groups and the columns outside them), in rank order.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``rows`` (rank, name, members, kind, mean |attribution|, interval, share, signed mean, flag) and ``n``;
        None when the run has no feature groups.
    """
    if not run.groups or not run.group_features:
        return None
    flags = feature_flags(run)
    group = {g.name: g for g in run.groups}
    rows = []
    for s in sorted(run.group_features, key=lambda s: (s.rank, s.name)):
        g = group.get(s.name)
        rows.append({
            "rank": s.rank,
            "name": s.name,
            "members": ", ".join(g.members) if g else "",
            "kind": _KIND.get(g.kind, g.kind) if g else "",
            "mean_abs": fmt_num(s.mean_abs),
            "ci": f"{fmt_num(s.ci_low)} – {fmt_num(s.ci_high)}",
            "share": fmt_pct(s.share),
            "mean": fmt_signed(s.mean),
            "flag": flags.get(s.name, ""),
        })
    return {"rows": rows, "n": len(rows), "n_groups": len(run.groups)}
