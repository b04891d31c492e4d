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


def _ci(lo: float, hi: float) -> str:
    """``[lo, hi]``, or ``[no CI]`` where the ranking has none (NaN: fewer than 2 rows)."""
    return "[no CI]" if lo != lo or hi != hi else f"[{lo:.4g}, {hi:.4g}]"


def summary_card(run: AuditRun) -> str:
    """The card's HTML: one ``<div>``; no script, no external resource."""
    verdict = run.verdict.value
    rows = "".join(
        f"<tr><td>{s.rank}</td><td>{escape(s.name)}</td><td style='text-align:right'>{100 * s.share:.1f}%</td>"
        f"<td style='text-align:right'>{s.mean_abs:.4g} {_ci(s.ci_low, s.ci_high)}</td></tr>"
        for s in run.features[:_TOP]
    )
    findings = "".join(
        f"<li><b style='color:{_COLOURS[f.severity.value]}'>{escape(f.severity.value)}</b> "
        f"<code>{escape(f.code)}</code>: {escape(f.message)}</li>"
        for f in sort_findings(run.findings)
    ) or "<li>none</li>"
    rows_label = f"{run.n_rows:,} images" if run.images is not None else f"{run.n_rows:,} rows"
    return (
        "<div style='font-family:system-ui,sans-serif;border:1px solid #d0d7de;border-radius:6px;padding:10px;"
        "max-width:760px'>"
        f"<div style='font-size:1.2em'><b style='color:{_COLOURS[verdict]}'>{verdict.upper()}</b> "
        f"&middot; {escape(run.task.replace('_', ' '))} &middot; {rows_label}, {run.n_features} features</div>"
        "<table style='margin-top:6px;border-collapse:collapse'><tr><th>#</th><th>feature</th><th>share</th>"
        f"<th>mean |attribution| [95% CI]</th></tr>{rows}</table>"
        f"<div style='margin-top:6px'>Findings:</div><ul style='margin:2px 0'>{findings}</ul></div>"
    )
