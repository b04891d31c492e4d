"""Section ``convergence``: how well the integrals were resolved (completeness error per row, steps used)."""

from __future__ import annotations

import math
from typing import Any

from audit.report import charts
from audit.report._format import fmt_compact, fmt_num, fmt_pct, fmt_pct_sig, is_missing, plural
from audit.report.sections._common import markup
from audit.results import AuditRun

__all__ = ["build"]


def _as_number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.inf


def build(run: AuditRun) -> dict[str, Any]:
    """The convergence facts, a status sentence, the error histogram and the steps chart.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict
        ``facts``, ``ok``, ``status``, ``hist`` and ``steps`` (charts or None). Never None: every run has a
        convergence record.
    """
    c = run.convergence
    tol = c.tolerance
    n_rows = c.n_rows or run.n_rows
    tol_text = fmt_pct(tol, 2, compact=True) if not is_missing(tol) and tol < 1 else fmt_compact(tol)
    facts = [
        ("Integration rule", c.method or "n/a"),
        ("Steps", str(c.n_steps) if isinstance(c.n_steps, str) else fmt_num(c.n_steps)),
        ("Tolerance", tol_text),
        ("Median error", fmt_pct_sig(c.median_rel_delta)),
        ("95th percentile", fmt_pct_sig(c.p95_rel_delta)),
        ("Largest error", fmt_pct_sig(c.max_rel_delta)),
    ]
    if n_rows:
        facts.append(
            ("Rows above tolerance", f"{c.n_not_converged:,} of {n_rows:,} ({fmt_pct(c.n_not_converged / n_rows)})")
        )
    ok = c.n_not_converged == 0 and (is_missing(c.max_rel_delta) or is_missing(tol) or c.max_rel_delta <= tol)
    if ok:
        status = f"Every row's attributions add up to its output change within {tol_text}."
    elif c.n_not_converged:
        status = (
            f"{plural(c.n_not_converged, 'row')} of {n_rows:,} miss the {tol_text} tolerance; "
            "their attributions are approximate. More integration steps usually fix this"
            + (" (try --n-steps auto)." if c.n_steps != "auto" else ".")
        )
    else:
        status = f"The largest error, {fmt_pct_sig(c.max_rel_delta)}, is above the {tol_text} tolerance."
    hist = None
    if c.rel_delta_hist_counts:
        threshold = math.log10(tol) if not is_missing(tol) and tol > 0 else None
        hist = markup(
            charts.histogram_log10(
                c.rel_delta_hist_edges,
                c.rel_delta_hist_counts,
                chart_id="chart-convergence",
                title="Relative completeness error per row",
                x_label="|sum of attributions − (F(x) − F(baseline))| / |F(x) − F(baseline)|",
                threshold=threshold,
                threshold_label=f"tolerance {tol_text}",
            )
        )
    steps = None
    if c.steps_used:
        items = sorted(c.steps_used.items(), key=lambda kv: (_as_number(kv[0]), kv[0]))
        steps = markup(
            charts.column_chart(
                [str(k) for k, _ in items],
                [v for _, v in items],
                chart_id="chart-steps",
                title="Integration steps each row needed",
                x_label="steps",
                y_label="rows",
            )
        )
    return {"facts": facts, "ok": ok, "status": status, "hist": hist, "steps": steps}
