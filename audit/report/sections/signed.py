"""Section ``signed``: direction of the top features, each a scatter of value against signed attribution."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from audit.report import charts
from audit.report._format import fmt_signed, is_missing
from audit.report.sections._common import markup
from audit.results import AuditRun

__all__ = ["MAX_SIGNED_PANELS", "build"]

MAX_SIGNED_PANELS = 12


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if not (is_missing(x) or is_missing(y))]
    n = len(pairs)
    if n < 3:
        return math.nan
    mx = sum(p[0] for p in pairs) / n
    my = sum(p[1] for p in pairs) / n
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    syy = sum((p[1] - my) ** 2 for p in pairs)
    if sxx <= 0 or syy <= 0:
        return math.nan
    return sum((p[0] - mx) * (p[1] - my) for p in pairs) / math.sqrt(sxx * syy)


def _direction(r: float, subject: str = "the output") -> str:
    if is_missing(r):
        return "no direction can be read from this sample"
    if r >= 0.3:
        return f"higher values push {subject} up (correlation {fmt_signed(r, 2)})"
    if r <= -0.3:
        return f"higher values push {subject} down (correlation {fmt_signed(r, 2)})"
    return f"no consistent direction (correlation {fmt_signed(r, 2)})"


def _subject(run: AuditRun) -> str:
    """What the direction samples explain: the output, or one fixed class's score for every row."""
    return f"the score of class '{run.signed_class}'" if run.signed_class else "the output"


def build(run: AuditRun) -> dict[str, Any] | None:
    """One panel per signed sample (at most :data:`MAX_SIGNED_PANELS`), with the direction in words.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``panels`` (``name``, ``chart``, ``direction``, ``mean``, ``rows``) and ``subject`` (what the
        attributions explain); None when the run has no signed samples.
    """
    if not run.signed:
        return None
    stats = {s.name: s for s in run.features}
    subject = _subject(run)
    panels = []
    for i, sample in enumerate(run.signed[:MAX_SIGNED_PANELS]):
        chart = charts.scatter_signed(
            sample.values,
            sample.attributions,
            chart_id=f"chart-signed-{i + 1}",
            title=sample.name,
            x_label=f"value of {sample.name}",
        )
        stat = stats.get(sample.name)
        panels.append(
            {
                "name": sample.name,
                "chart": markup(chart),
                "direction": _direction(_pearson(sample.values, sample.attributions), subject),
                "mean": fmt_signed(stat.mean) if stat else "n/a",
                "rows": len(sample.values),
            }
        )
    return {"panels": panels, "subject": subject}
