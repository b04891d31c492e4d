"""Section ``classes``: a heat table of each feature's share of |attribution| when explaining each class."""

from __future__ import annotations

from typing import Any

from audit.report._format import fmt_pct, is_missing
from audit.results import AuditRun

__all__ = ["MAX_CLASS_COLUMNS", "MAX_CLASS_ROWS", "build"]

MAX_CLASS_COLUMNS = 12
MAX_CLASS_ROWS = 15

_HEAT_DARK = (0x1F, 0x4E, 0x8C)
_TEXT_DARK = (0x1D, 0x29, 0x39)


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance of an sRGB colour."""
    lin = [(c / 255) / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return (hi + 0.05) / (lo + 0.05)


def _share_cell(share: float, max_share: float) -> dict[str, str]:
    """A heat-table cell: light to dark blue by share relative to the largest share in the table, with
    whichever text colour (white or near-black) has more contrast on that background."""
    if is_missing(share):
        return {"text": "n/a", "style": ""}
    a = (min(1.0, max(0.0, share / max_share)) if max_share > 0 else 0.0) ** 0.7
    rgb = tuple(round(255 + (c - 255) * a) for c in _HEAT_DARK)
    lum = _luminance(rgb)
    white = _contrast(1.0, lum) >= _contrast(_luminance(_TEXT_DARK), lum)
    text = "#ffffff" if white else "#1d2939"
    return {"text": fmt_pct(share), "style": f"background:#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x};color:{text}"}


def build(run: AuditRun) -> dict[str, Any] | None:
    """Feature shares per class for the first :data:`MAX_CLASS_COLUMNS` classes and :data:`MAX_CLASS_ROWS` features.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``classes``, ``rows`` (cells with text and style), ``tops`` (each class's top 3) and ``note``; None
        when the run has no per-class rankings.
    """
    if not run.class_features:
        return None
    names = list(run.class_features)[:MAX_CLASS_COLUMNS]
    by_class = {c: {s.name: s for s in run.class_features[c]} for c in names}
    order = [s.name for s in sorted(run.features, key=lambda s: (s.rank, s.name))]
    for c in names:  # features only ranked per class come after the global ones
        order += [s.name for s in sorted(run.class_features[c], key=lambda s: s.rank) if s.name not in order]
    order = order[:MAX_CLASS_ROWS]
    shown = [by_class[c][n].share for c in names for n in order if n in by_class[c]]
    max_share = max((v for v in shown if not is_missing(v)), default=0.0)
    rows = []
    for name in order:
        cells = []
        for c in names:
            stat = by_class[c].get(name)
            cells.append(_share_cell(stat.share, max_share) if stat else {"text": "–", "style": ""})
        rows.append({"name": name, "cells": cells})
    tops = []
    for c in names:
        best = sorted(run.class_features[c], key=lambda s: s.rank)[:3]
        tops.append({"cls": c, "top": ", ".join(f"{s.name} ({fmt_pct(s.share)})" for s in best)})
    note = ""
    n_classes = len(run.class_features)
    if n_classes > len(names):
        note = f"Showing {len(names)} of {n_classes} classes; audit.json has all of them."
    return {"classes": names, "rows": rows, "tops": tops, "note": note}
