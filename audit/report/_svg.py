"""SVG building blocks for :mod:`audit.report.charts`: escaping, coordinates, ticks, axes, the chart frame.

Private to the report layer (the charts re-export :data:`PALETTE` and :func:`nice_ticks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from audit.errors import ReportError
from audit.report._format import fmt_compact

__all__ = [
    "PALETTE",
    "FONT",
    "esc",
    "pt",
    "finite",
    "nice_ticks",
    "svg_open",
    "svg_text",
    "x_axis",
    "y_axis",
    "check_lengths",
]

# Colours with at least 4.5:1 contrast against white where they carry text, 3:1 for marks.
PALETTE = {
    "bar": "#3565a8",
    "fail": "#b42318",
    "warn": "#b54708",
    "info": "#175cd3",
    "pass": "#067647",
    "noise": "#7a5af8",
    "axis": "#475467",
    "grid": "#e4e7ec",
    "text": "#1d2939",
    "muted": "#475467",
    "point": "#3565a8",
    "ok": "#3565a8",
    "bad": "#b42318",
}

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', 'DejaVu Sans', Arial, sans-serif"


def esc(text: object) -> str:
    """``text`` escaped for SVG text and attribute values."""
    return escape(str(text), quote=True)


def pt(x: float) -> str:
    """Coordinates with two decimals: small files, sub-pixel precision."""
    return f"{x:.2f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def finite(values: Sequence[float | None]) -> list[float]:
    """The finite values of ``values`` as floats (None, NaN and infinities left out)."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick positions (1, 2, 2.5, 5 x 10^k steps) covering ``[lo, hi]``.

    Parameters
    ----------
    lo, hi : float
        The data range; ``lo == hi`` is widened so a constant still gets an axis.
    n : int, default 5
        About how many intervals to draw.

    Returns
    -------
    list of float
        Increasing ticks; the first is <= ``lo`` and the last >= ``hi``.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.5 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    k = 0
    while True:
        t = start + k * step
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        if t >= hi - step * 1e-9:
            break
        k += 1
    return ticks


def svg_open(width: float, height: float, chart_id: str, title: str, desc: str, shown: str | None = None) -> list[str]:
    """The opening ``<svg>`` tag, its accessible ``<title>`` and ``<desc>`` and the visible title (``shown``, a
    shortened ``title``, when given), as parts."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {pt(width)} {pt(height)}" '
        f'width="{pt(width)}" height="{pt(height)}" role="img" aria-labelledby="{esc(chart_id)}-t {esc(chart_id)}-d" '
        f'font-family="{FONT}" font-size="11" fill="{PALETTE["text"]}">',
        f'<title id="{esc(chart_id)}-t">{esc(title)}</title>',
        f'<desc id="{esc(chart_id)}-d">{esc(desc)}</desc>',
        f'<text x="0" y="14" font-size="13" font-weight="600">{esc(title if shown is None else shown)}</text>',
    ]


def svg_text(
    x: float, y: float, text: str, anchor: str = "start", size: int = 11, fill: str = "", extra: str = ""
) -> str:
    """One escaped ``<text>`` element at ``(x, y)``."""
    colour = f' fill="{fill}"' if fill else ""
    return f'<text x="{pt(x)}" y="{pt(y)}" text-anchor="{anchor}" font-size="{size}"{colour}{extra}>{esc(text)}</text>'


def x_axis(
    x0: float,
    x1: float,
    y: float,
    ticks: list[float],
    scale: Callable[[float], float],
    label: str,
    grid_top: float | None,
    tick_text: Callable[[float], str] = fmt_compact,
) -> list[str]:
    """A horizontal axis from ``x0`` to ``x1`` at height ``y`` with ticks, tick labels, a label and optional
    vertical grid lines up to ``grid_top``."""
    out = [f'<line x1="{pt(x0)}" y1="{pt(y)}" x2="{pt(x1)}" y2="{pt(y)}" stroke="{PALETTE["axis"]}"/>']
    for t in ticks:
        x = scale(t)
        if grid_top is not None:
            out.append(f'<line x1="{pt(x)}" y1="{pt(grid_top)}" x2="{pt(x)}" y2="{pt(y)}" stroke="{PALETTE["grid"]}"/>')
        out.append(f'<line x1="{pt(x)}" y1="{pt(y)}" x2="{pt(x)}" y2="{pt(y + 4)}" stroke="{PALETTE["axis"]}"/>')
        out.append(svg_text(x, y + 15, tick_text(t), "middle", 10, PALETTE["muted"]))
    out.append(svg_text((x0 + x1) / 2, y + 31, label, "middle", 11))
    return out


def y_axis(
    x: float,
    y0: float,
    y1: float,
    ticks: list[float],
    scale: Callable[[float], float],
    label: str,
    grid_right: float | None,
    tick_text: Callable[[float], str] = fmt_compact,
) -> list[str]:
    """A vertical axis at ``x`` from ``y0`` to ``y1`` with ticks, tick labels, a rotated label and optional
    horizontal grid lines out to ``grid_right``."""
    out = [f'<line x1="{pt(x)}" y1="{pt(y0)}" x2="{pt(x)}" y2="{pt(y1)}" stroke="{PALETTE["axis"]}"/>']
    for t in ticks:
        y = scale(t)
        if grid_right is not None:
            out.append(
                f'<line x1="{pt(x)}" y1="{pt(y)}" x2="{pt(grid_right)}" y2="{pt(y)}" stroke="{PALETTE["grid"]}"/>'
            )
        out.append(f'<line x1="{pt(x - 4)}" y1="{pt(y)}" x2="{pt(x)}" y2="{pt(y)}" stroke="{PALETTE["axis"]}"/>')
        out.append(svg_text(x - 6, y + 3.5, tick_text(t), "end", 10, PALETTE["muted"]))
    cy = (y0 + y1) / 2
    out.append(
        f'<text x="0" y="0" transform="translate({pt(x - 44)} {pt(cy)}) rotate(-90)" text-anchor="middle" '
        f'font-size="11">{esc(label)}</text>'
    )
    return out


def check_lengths(**series: Sequence) -> int:
    """The common length of the given series (None ones skipped); ReportError when they differ."""
    lengths = {k: len(v) for k, v in series.items() if v is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ReportError(f"chart series have different lengths ({detail}); the run record is inconsistent, re-run it")
    return next(iter(lengths.values()), 0)
