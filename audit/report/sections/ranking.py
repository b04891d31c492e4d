"""Section ``ranking``: the global ranking as a bar chart of the top features and a table of all of them."""

from __future__ import annotations

from typing import Any

from audit.report import charts
from audit.report._format import fmt_num, fmt_pct, fmt_signed, is_missing
from audit.report.sections._common import FLAG_COLOUR, FLAG_LEGEND, feature_flags, markup
from audit.results import AuditRun

__all__ = ["TOP_CHART_FEATURES", "build"]

TOP_CHART_FEATURES = 30  # bars in the global ranking chart; the table lists every feature


def build(run: AuditRun) -> dict[str, Any] | None:
    """The ranking chart (top :data:`TOP_CHART_FEATURES`, coloured by the findings that name them) and table.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``chart``, ``rows``, ``note``, ``has_rank_ci``, ``n`` (features) and ``n_rows``; None when the run
        ranks no features, or is a text run (its token section ranks them).
    """
    feats = sorted(run.features, key=lambda s: (s.rank, s.name))
    if not feats or run.text is not None:
        return None  # a text run ranks its tokens in its own section (audit.report.sections.text)
    flags = feature_flags(run)
    top = feats[:TOP_CHART_FEATURES]
    colours = [FLAG_COLOUR.get(flags.get(s.name, ""), charts.PALETTE["bar"]) for s in top]
    present = [k for k in ("fail", "warn", "noise") if any(flags.get(s.name) == k for s in top)]
    legend = [(charts.PALETTE["bar"], "other features")] if present else []
    legend += [(FLAG_COLOUR[k], FLAG_LEGEND[k]) for k in present]
    chart = charts.bar_chart_ci(
        [s.name for s in top],
        [s.mean_abs for s in top],
        [s.ci_low for s in top],
        [s.ci_high for s in top],
        chart_id="chart-ranking",
        title=f"Mean |attribution| of the top {len(top)} features",
        x_label="mean |attribution| (whiskers: 95% bootstrap interval)",
        colors=colours,
        legend=legend,
    )
    max_share = max((s.share for s in feats if not is_missing(s.share)), default=0.0) or 1.0
    has_rank_ci = any(s.rank_ci_low > 0 for s in feats)
    rows = []
    for s in feats:
        flag = flags.get(s.name, "")
        rows.append(
            {
                "rank": s.rank,
                "name": s.name,
                "mean_abs": fmt_num(s.mean_abs),
                "ci": (  # no interval below 2 rows (global_ranking gives NaN): never "[39, 39]" from one row
                    "no interval (too few rows)" if is_missing(s.ci_low) or is_missing(s.ci_high)
                    else f"{fmt_num(s.ci_low)} – {fmt_num(s.ci_high)}"
                ),
                "share": fmt_pct(s.share),
                "share_width": 0.0 if is_missing(s.share) else round(100 * max(0.0, s.share) / max_share, 1),
                "mean": fmt_signed(s.mean),
                "std": fmt_num(s.std),
                "rank_ci": (
                    (str(s.rank_ci_low) if s.rank_ci_low == s.rank_ci_high else f"{s.rank_ci_low}–{s.rank_ci_high}")
                    if s.rank_ci_low > 0
                    else ""
                ),
                "flag": flag,
                "flag_label": {"fail": "fail", "warn": "warn", "noise": "noise"}.get(flag, ""),
            }
        )
    note = ""
    if len(feats) > len(top):
        note = f"The chart shows the top {len(top)} of {len(feats)} features; the table lists all of them."
    return {
        "chart": markup(chart),
        "rows": rows,
        "note": note,
        "has_rank_ci": has_rank_ci,
        "n": len(feats),
        "n_rows": fmt_num(run.n_rows),
    }
