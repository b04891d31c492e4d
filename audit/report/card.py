"""A run as a small HTML card, for Jupyter (``AuditRun._repr_html_``): verdict, task, top features, findings.

Self-contained (inline styles), escaped, and it reads the record only, like the rest of the report layer.
"""

from __future__ import annotations

from html import escape

from audit.findings import sort_findings
from audit.results import AuditRun

__all__ = ["summary_card"]

_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "info": "#57606a"}
_TOP = 5
_TD = "padding:2px 8px;vertical-align:top;border-top:1px solid #eaeef2"
_TH = "padding:2px 8px;text-align:left;vertical-align:bottom"


def _ci(lo: float, hi: float) -> str:
    """``[lo, hi]``, or ``[no CI]`` where the ranking has none (NaN: fewer than 2 rows)."""
    return "[no CI]" if lo != lo or hi != hi else f"[{lo:.4g}, {hi:.4g}]"


def summary_card(run: AuditRun) -> str:
    """The card's HTML: one ``<div>``; no script, no external resource."""
    verdict = run.verdict.value
    rows = "".join(
        f"<tr><td style='{_TD}'>{s.rank}</td><td style='{_TD};overflow-wrap:anywhere'>{escape(s.name)}</td>"
        f"<td style='{_TD};text-align:right;white-space:nowrap'>{100 * s.share:.1f}%</td>"
        f"<td style='{_TD};text-align:right;white-space:nowrap'>{s.mean_abs:.4g} {_ci(s.ci_low, s.ci_high)}</td>"
        "</tr>"
        for s in run.features[:_TOP]
    )
    findings = "".join(
        f"<li><b style='color:{_COLOURS[f.severity.value]}'>{escape(f.severity.value)}</b> "
        f"<code>{escape(f.code)}</code>: {escape(f.message)}</li>"
        for f in sort_findings(run.findings)
    ) or "<li>none</li>"
    rows_label = f"{run.n_rows:,} images" if run.images is not None else f"{run.n_rows:,} rows"
    return (
        "<div style='font-family:system-ui,sans-serif;border:1px solid #d0d7de;border-radius:6px;padding:10px 12px;"
        "max-width:760px;box-sizing:border-box;overflow-wrap:anywhere'>"
        f"<div style='font-size:1.2em'><b style='color:{_COLOURS[verdict]}'>{verdict.upper()}</b> "
        f"&middot; {escape(run.task.replace('_', ' '))} &middot; {rows_label}, {run.n_features} features</div>"
        # fixed layout at the card's width: a long name wraps in its cell instead of pushing the table past the
        # border; cell padding is the card's own (outside Jupyter nothing else gives cells any)
        "<table style='margin-top:6px;border-collapse:collapse;width:100%;table-layout:fixed'>"
        f"<colgroup><col style='width:2.5em'><col><col style='width:5em'><col style='width:14em'></colgroup>"
        f"<tr><th style='{_TH}'>#</th><th style='{_TH}'>feature</th><th style='{_TH};text-align:right'>share</th>"
        f"<th style='{_TH};text-align:right'>mean |attribution| [95% CI]</th></tr>{rows}</table>"
        f"<div style='margin-top:6px'>Findings:</div><ul style='margin:2px 0'>{findings}</ul></div>"
    )
