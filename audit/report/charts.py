"""Inline SVG charts in pure Python: no matplotlib, no scripts, no external assets.

Every chart is one ``<svg role="img">`` string with a ``<title>`` and ``<desc>`` (read by screen readers),
a visible title, axis labels and ticks. Text is escaped here, so callers may pass feature names as they are.
Charts scale with the page (``viewBox``) and stay vector graphics in the PDF, so they print sharp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from audit.errors import ReportError
from audit.report._format import display_width, fmt_compact, fmt_num, fmt_pow10, truncate_width
from audit.report._svg import (
    PALETTE,
    check_lengths,
    esc,
    finite,
    nice_ticks,
    pt,
    svg_open,
    svg_text,
    x_axis,
    y_axis,
)

__all__ = [
    "PALETTE",
    "nice_ticks",
    "bar_chart_ci",
    "scatter_signed",
    "histogram_log10",
    "column_chart",
    "identity_scatter",
    "colorbar",
]

def bar_chart_ci(
    labels: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float] | None = None,
    highs: Sequence[float] | None = None,
    *,
    chart_id: str,
    title: str,
    x_label: str,
    colors: Sequence[str] | None = None,
    legend: Sequence[tuple[str, str]] = (),
    width: float = 760,
    value_format: Callable[[float], str] = fmt_num,
    tick_format: Callable[[float], str] = fmt_compact,
) -> str:
    """Horizontal bars, one row per label, with optional interval whiskers.

    Parameters
    ----------
    labels : sequence of str, length n
        Row labels, top to bottom (long ones are shortened; the full name stays in the row's tooltip).
    values : sequence of float, length n
        Bar lengths; must be >= 0 (the axis starts at 0).
    lows, highs : sequence of float, length n, optional
        Interval ends drawn as whiskers (e.g. a bootstrap 95% interval).
    chart_id : str
        Unique id within the page (used for the accessible title).
    title, x_label : str
        Visible title and axis label.
    colors : sequence of str, length n, optional
        One fill colour per bar; default :data:`PALETTE` ``bar``.
    legend : sequence of (colour, text)
        Legend entries drawn under the axis.
    width : float, default 760
        Width in CSS pixels (the chart scales with the page).
    value_format, tick_format : callable
        How to write the value next to each bar and the axis ticks (e.g. as percentages).

    Returns
    -------
    str
        The ``<svg>`` element.
    """
    n = check_lengths(labels=labels, values=values, lows=lows, highs=highs, colors=colors)
    # display width: a Chinese character is two Latin letters wide; a label too wide for the margin would be cut
    # at its start (the text is anchored at its end)
    label_w = min(230.0, max(80.0, 6.4 * max((display_width(truncate_width(str(lb), 34)) for lb in labels),
                                            default=8)))
    left, right, top, row = label_w + 8, 64.0, 30.0, 18.0
    plot_h = max(1, n) * row
    legend_h = 18.0 if legend else 0.0
    height = top + plot_h + 40 + legend_h + 4
    data = finite(list(values) + list(highs or []))
    ticks = nice_ticks(0.0, max(data, default=1.0) or 1.0)
    vmax = ticks[-1]
    x0, x1 = left, width - right

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * (min(max(v, 0.0), vmax) / vmax)

    parts = svg_open(width, height, chart_id, title, f"{n} bars of {x_label}" + (" with intervals" if lows else ""))
    parts += x_axis(x0, x1, top + plot_h, ticks, sx, x_label, top, tick_text=tick_format)
    for i in range(n):
        y = top + i * row
        v = values[i]
        colour = colors[i] if colors else PALETTE["bar"]
        name = str(labels[i])
        tip = f"{name}: {value_format(v)}"
        if lows is not None and highs is not None:
            tip += f" (95% interval {value_format(lows[i])} to {value_format(highs[i])})"
        parts.append(f"<g><title>{esc(tip)}</title>")
        parts.append(svg_text(left - 6, y + row / 2 + 4, truncate_width(name, 34), "end"))
        if v is not None and math.isfinite(v):
            parts.append(
                f'<rect x="{pt(x0)}" y="{pt(y + 3)}" width="{pt(max(0.5, sx(v) - x0))}" height="{pt(row - 6)}" '
                f'fill="{colour}"/>'
            )
        end = v
        if lows is not None and highs is not None:
            lo, hi = lows[i], highs[i]
            if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
                cy = y + row / 2
                parts.append(
                    f'<path d="M{pt(sx(lo))} {pt(cy)}H{pt(sx(hi))}M{pt(sx(lo))} {pt(cy - 4)}V{pt(cy + 4)}'
                    f'M{pt(sx(hi))} {pt(cy - 4)}V{pt(cy + 4)}" stroke="{PALETTE["text"]}" stroke-width="1.2" '
                    'fill="none"/>'
                )
                end = max(hi, v if v is not None and math.isfinite(v) else hi)
        if end is not None and math.isfinite(end):
            parts.append(svg_text(sx(end) + 5, y + row / 2 + 4, value_format(v), size=10, fill=PALETTE["muted"]))
        parts.append("</g>")
    lx = x0
    ly = top + plot_h + 44
    for colour, text in legend:
        parts.append(f'<rect x="{pt(lx)}" y="{pt(ly - 9)}" width="10" height="10" fill="{colour}"/>')
        parts.append(svg_text(lx + 14, ly, text, size=10))
        lx += 24 + 6 * display_width(text)
    parts.append("</svg>")
    return "".join(parts)


def scatter_signed(
    values: Sequence[float],
    attributions: Sequence[float],
    *,
    chart_id: str,
    title: str,
    x_label: str,
    y_label: str = "attribution",
    width: float = 320,
    height: float = 230,
    max_points: int = 400,
) -> str:
    """Attribution against feature value for one feature: points above zero push the output up.

    Parameters
    ----------
    values, attributions : sequence of float, length n
        Feature values and that feature's signed attributions on the same rows.
    chart_id, title, x_label, y_label : str
        Unique id, visible title, axis labels.
    width, height : float
        Size in CSS pixels.
    max_points : int, default 400
        At most this many points are drawn (an even stride through the sample), to keep files small.

    Returns
    -------
    str
        The ``<svg>`` element.
    """
    n = check_lengths(values=values, attributions=attributions)
    pairs = [
        (float(v), float(a))
        for v, a in zip(values, attributions, strict=True)
        if v is not None and a is not None and math.isfinite(float(v)) and math.isfinite(float(a))
    ]
    if len(pairs) > max_points:
        stride = len(pairs) / max_points
        pairs = [pairs[int(i * stride)] for i in range(max_points)]
    left, right, top, bottom = 56.0, 10.0, 26.0, 40.0
    xs = [p[0] for p in pairs] or [0.0]
    ys = [p[1] for p in pairs] or [0.0]
    xt = nice_ticks(min(xs), max(xs), 4)
    yt = nice_ticks(min(min(ys), 0.0), max(max(ys), 0.0), 4)
    x0, x1, y0, y1 = left, width - right, height - bottom, top

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * (v - xt[0]) / (xt[-1] - xt[0])

    def sy(v: float) -> float:
        return y0 - (y0 - y1) * (v - yt[0]) / (yt[-1] - yt[0])

    desc = f"{len(pairs)} of {n} rows: {y_label} against {x_label}"
    # long names are cut to the panel (13 px bold title: about 8 px a column; 11 px axis label: about 6.6)
    parts = svg_open(width, height, chart_id, title, desc, shown=truncate_width(title, int(width / 8)))
    parts += x_axis(x0, x1, y0, xt, sx, truncate_width(x_label, int((x1 - x0 + 2 * right) / 6.6)), y1)
    parts += y_axis(x0, y0, y1, yt, sy, y_label, x1)
    parts.append(
        f'<line x1="{pt(x0)}" y1="{pt(sy(0.0))}" x2="{pt(x1)}" y2="{pt(sy(0.0))}" stroke="{PALETTE["axis"]}" '
        'stroke-dasharray="4 3"/>'
    )
    parts.append(f'<g fill="{PALETTE["point"]}" fill-opacity="0.5">')
    parts.extend(f'<circle cx="{pt(sx(v))}" cy="{pt(sy(a))}" r="2.3"/>' for v, a in pairs)
    parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def histogram_log10(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    chart_id: str,
    title: str,
    x_label: str,
    y_label: str = "rows",
    threshold: float | None = None,
    threshold_label: str = "",
    width: float = 760,
    height: float = 250,
) -> str:
    """A histogram over log10 bins, e.g. the per-row relative completeness error.

    Parameters
    ----------
    edges : sequence of float, length n + 1
        Increasing bin edges in log10 units (``-3`` is 0.001).
    counts : sequence of int, length n
        Rows per bin.
    chart_id, title, x_label, y_label : str
        Unique id, visible title, axis labels.
    threshold : float, optional
        A log10 position marked with a vertical line; bins at or past it are drawn in the warning colour
        and the rows in them are counted next to the line.
    threshold_label : str
        Text next to the threshold line.
    width, height : float
        Size in CSS pixels.

    Returns
    -------
    str
        The ``<svg>`` element.
    """
    if len(edges) != len(counts) + 1:
        raise ReportError(
            f"histogram has {len(edges)} edges for {len(counts)} counts (need one more edge than counts); "
            "the run record is inconsistent, re-run it"
        )
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ReportError("histogram edges are not increasing; the run record is inconsistent, re-run it")
    left, right, top, bottom = 56.0, 14.0, 30.0, 42.0
    lo, hi = float(edges[0]), float(edges[-1])
    if threshold is not None and math.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    decades = [float(k) for k in range(math.floor(lo), math.ceil(hi) + 1)]
    xt = decades if hi - lo >= 2 else nice_ticks(lo, hi, 4)
    yt = nice_ticks(0.0, float(max(counts, default=1) or 1), 4)
    x0, x1, y0, y1 = left, width - right, height - bottom, top

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * (v - xt[0]) / (xt[-1] - xt[0])

    def sy(v: float) -> float:
        return y0 - (y0 - y1) * v / yt[-1]

    total = sum(counts)
    parts = svg_open(width, height, chart_id, title, f"{total} rows in {len(counts)} bins of {x_label}")
    parts += y_axis(x0, y0, y1, yt, sy, y_label, x1)
    parts += x_axis(x0, x1, y0, xt, sx, x_label, None, tick_text=fmt_pow10)
    for a, b, c in zip(edges, edges[1:], counts, strict=False):
        bad = threshold is not None and a >= threshold - 1e-12
        colour = PALETTE["bad"] if bad else PALETTE["ok"]
        h = y0 - sy(c)
        parts.append(
            f'<rect x="{pt(sx(a) + 0.5)}" y="{pt(sy(c))}" width="{pt(max(0.5, sx(b) - sx(a) - 1))}" '
            f'height="{pt(h)}" fill="{colour}"><title>{esc(f"{fmt_pow10(a)} to {fmt_pow10(b)}: {c} rows")}'
            "</title></rect>"
        )
    if threshold is not None and math.isfinite(threshold):
        tx = sx(threshold)
        parts.append(
            f'<line x1="{pt(tx)}" y1="{pt(y1)}" x2="{pt(tx)}" y2="{pt(y0)}" stroke="{PALETTE["text"]}" '
            'stroke-dasharray="5 3" stroke-width="1.4"/>'
        )
        beyond = sum(c for a, c in zip(edges, counts, strict=False) if a >= threshold - 1e-12)
        anchor = "end" if tx > (x0 + x1) / 2 else "start"
        dx = -5 if anchor == "end" else 5
        parts.append(svg_text(tx + dx, y1 + 10, threshold_label, anchor, 10))
        parts.append(
            svg_text(
                tx + dx,
                y1 + 24,
                f"{beyond:,} {'row' if beyond == 1 else 'rows'} beyond",
                anchor,
                10,
                PALETTE["bad"] if beyond else PALETTE["muted"],
            )
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    labels: Sequence[str],
    counts: Sequence[float],
    *,
    chart_id: str,
    title: str,
    x_label: str,
    y_label: str,
    width: float = 360,
    height: float = 220,
) -> str:
    """Vertical bars for a few categories (e.g. rows per number of integration steps).

    Parameters
    ----------
    labels : sequence of str, length n
        Category names, left to right.
    counts : sequence of float, length n
        Bar heights (>= 0).
    chart_id, title, x_label, y_label : str
        Unique id, visible title, axis labels.
    width, height : float
        Size in CSS pixels.

    Returns
    -------
    str
        The ``<svg>`` element.
    """
    n = check_lengths(labels=labels, counts=counts)
    left, right, top, bottom = 56.0, 10.0, 30.0, 42.0
    yt = nice_ticks(0.0, float(max(finite(counts), default=1.0) or 1.0), 4)
    x0, x1, y0, y1 = left, width - right, height - bottom, top
    slot = (x1 - x0) / max(1, n)

    def sy(v: float) -> float:
        return y0 - (y0 - y1) * v / yt[-1]

    parts = svg_open(width, height, chart_id, title, f"{n} bars: {y_label} per {x_label}")
    parts += y_axis(x0, y0, y1, yt, sy, y_label, x1)
    parts.append(f'<line x1="{pt(x0)}" y1="{pt(y0)}" x2="{pt(x1)}" y2="{pt(y0)}" stroke="{PALETTE["axis"]}"/>')
    for i, (lb, c) in enumerate(zip(labels, counts, strict=True)):
        bx = x0 + i * slot + slot * 0.15
        parts.append(
            f'<rect x="{pt(bx)}" y="{pt(sy(c))}" width="{pt(slot * 0.7)}" height="{pt(y0 - sy(c))}" '
            f'fill="{PALETTE["bar"]}"><title>{esc(f"{lb}: {fmt_num(c)}")}</title></rect>'
        )
        parts.append(svg_text(bx + slot * 0.35, y0 + 15, truncate_width(str(lb), 10), "middle", 10, PALETTE["muted"]))
        parts.append(svg_text(bx + slot * 0.35, sy(c) - 4, fmt_num(c), "middle", 10, PALETTE["muted"]))
    parts.append(svg_text((x0 + x1) / 2, y0 + 31, x_label, "middle", 11))
    parts.append("</svg>")
    return "".join(parts)


def identity_scatter(
    names: Sequence[str],
    expected: Sequence[float],
    estimated: Sequence[float],
    *,
    chart_id: str,
    title: str,
    x_label: str,
    y_label: str,
    size: float = 380,
    max_labels: int = 12,
) -> str:
    """Estimated against expected values with the ``y = x`` line: points on the line are exact.

    Parameters
    ----------
    names : sequence of str, length n
        Point labels (the first ``max_labels`` are written next to their points).
    expected, estimated : sequence of float, length n
        Known answers (x) and estimates (y).
    chart_id, title, x_label, y_label : str
        Unique id, visible title, axis labels.
    size : float, default 380
        Width and height in CSS pixels (square, so the diagonal is at 45 degrees).
    max_labels : int, default 12
        Label at most this many points (the first ones, skipping labels that would overlap).

    Returns
    -------
    str
        The ``<svg>`` element.
    """
    n = check_lengths(names=names, expected=expected, estimated=estimated)
    data = finite(list(expected) + list(estimated)) or [0.0, 1.0]
    ticks = nice_ticks(min(data), max(data), 4)
    left, right, top, bottom = 58.0, 14.0, 30.0, 42.0
    side = min(size - left - right, size - top - bottom)
    x0, x1, y0, y1 = left, left + side, top + side, top

    def sx(v: float) -> float:
        return x0 + side * (v - ticks[0]) / (ticks[-1] - ticks[0])

    def sy(v: float) -> float:
        return y0 - side * (v - ticks[0]) / (ticks[-1] - ticks[0])

    parts = svg_open(size, top + side + bottom, chart_id, title, f"{n} features: {y_label} against {x_label}")
    parts += x_axis(x0, x1, y0, ticks, sx, x_label, y1)
    parts += y_axis(x0, y0, y1, ticks, sy, y_label, x1)
    parts.append(
        f'<line x1="{pt(sx(ticks[0]))}" y1="{pt(sy(ticks[0]))}" x2="{pt(sx(ticks[-1]))}" y2="{pt(sy(ticks[-1]))}" '
        f'stroke="{PALETTE["muted"]}" stroke-dasharray="5 3"/>'
    )
    parts.append(svg_text(x1 - 4, y0 - 6, "dashed: y = x (exact)", "end", 10, PALETTE["muted"]))
    placed: list[tuple[float, float]] = []
    for i, (nm, ex, es) in enumerate(zip(names, expected, estimated, strict=True)):
        if ex is None or es is None or not (math.isfinite(ex) and math.isfinite(es)):
            continue
        parts.append(
            f'<circle cx="{pt(sx(ex))}" cy="{pt(sy(es))}" r="3.5" fill="{PALETTE["point"]}" fill-opacity="0.8">'
            f"<title>{esc(f'{nm}: expected {fmt_num(ex)}, estimated {fmt_num(es)}')}</title></circle>"
        )
        lx, ly = sx(ex) + 6, sy(es) - 4
        if i < max_labels and all(abs(ly - py) > 11 or abs(lx - px) > 90 for px, py in placed):
            placed.append((lx, ly))
            parts.append(svg_text(lx, ly, truncate_width(str(nm), 16), size=9, fill=PALETTE["muted"]))
    parts.append("</svg>")
    return "".join(parts)


def colorbar(
    colors: Sequence[str], *, chart_id: str, title: str, low_label: str, high_label: str, width: float = 240
) -> str:
    """A horizontal colour scale legend for heatmaps.

    Parameters
    ----------
    colors : sequence of str
        Colours from low to high, drawn as equal slices.
    chart_id, title : str
        Unique id and visible title.
    low_label, high_label : str
        Text under the two ends.
    width : float, default 240
        Width in CSS pixels.

    Returns
    -------
    str
        The ``<svg>`` element.
    """
    if not colors:
        raise ReportError("colorbar needs at least one colour; this is a bug in the report layer")
    height = 52.0
    parts = svg_open(width, height, chart_id, title, f"colour scale from {low_label} to {high_label}")
    slot = width / len(colors)
    for i, c in enumerate(colors):
        parts.append(f'<rect x="{pt(i * slot)}" y="20" width="{pt(slot + 0.6)}" height="12" fill="{c}"/>')
    parts.append(svg_text(0, 46, low_label, "start", 10, PALETTE["muted"]))
    parts.append(svg_text(width, 46, high_label, "end", 10, PALETTE["muted"]))
    parts.append("</svg>")
    return "".join(parts)
