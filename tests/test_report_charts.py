"""Charts, formatting and heatmap pictures: known answers and properties."""

from __future__ import annotations

import base64
import io
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from audit.errors import ReportError
from audit.report import charts, images
from audit.report._format import fmt_compact, fmt_evidence_value, fmt_num, fmt_pct, fmt_pct_sig, humanize_key

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    return root


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


# --- formatting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0"),
        (1234, "1,234"),
        (0.5, "0.500"),
        (-0.012345, "−0.0123"),
        (2.7777, "2.78"),
        (0.0099996, "0.0100"),  # rounding up crosses a decade: still 3 significant digits
        (999.96, "1,000"),
        (3.2e-6, "3.20×10⁻⁶"),
        (1.5e7, "1.50×10⁷"),
        (float("nan"), "n/a"),
        (None, "n/a"),
        (True, "yes"),
    ],
)
def test_fmt_num_known_answers(value: object, expected: str) -> None:
    assert fmt_num(value) == expected


def test_compact_and_percent_forms() -> None:
    assert fmt_compact(0.8) == "0.8"
    assert fmt_compact(1e-4) == "1×10⁻⁴"
    assert fmt_compact(2.0) == "2"
    assert fmt_pct(0.381) == "38.1%"
    assert fmt_pct(0.0002) == "<0.1%"
    assert fmt_pct(0.01, 2, compact=True) == "1%"
    assert fmt_pct_sig(0.000114) == "0.011%"
    assert fmt_pct_sig(0.031) == "3.1%"


def test_evidence_values_read_as_words() -> None:
    assert humanize_key("univariate_r2") == "Univariate R²"
    assert humanize_key("n_features") == "Number of features"
    assert fmt_evidence_value("share", 0.38) == "38.0%"
    assert fmt_evidence_value("unique_fraction", 0.98) == "98.0%"
    assert fmt_evidence_value("rank", 4) == "4"  # an int is never a percentage
    assert fmt_evidence_value("threshold", 0.800) == "0.8"
    assert fmt_evidence_value("p_value", None) == "n/a"  # NaN comes back from JSON as null
    assert fmt_evidence_value("features", ["a", "b"]) == "a, b"
    assert fmt_evidence_value("per_class", {"cat": 0.5}) == "cat: 0.5"


# --- ticks -----------------------------------------------------------------------------------------


@settings(derandomize=True, max_examples=200)
@given(
    lo=st.floats(-1e6, 1e6, allow_nan=False),
    width=st.floats(1e-6, 1e6, allow_nan=False),
)
def test_nice_ticks_cover_the_range_with_round_steps(lo: float, width: float) -> None:
    assume(width >= 1e-6 * max(1.0, abs(lo)))  # ranges narrower than float spacing allows are not charts
    hi = lo + width
    ticks = charts.nice_ticks(lo, hi)
    steps = np.diff(ticks)
    slack = 1e-8 * steps[0]  # a value a hair below a tick sits on it
    assert ticks[0] <= lo + slack and ticks[-1] >= hi - slack
    assert np.all(steps > 0)
    assert np.allclose(steps, steps[0], rtol=1e-6)
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))
    assert 2 <= len(ticks) <= 13


def test_nice_ticks_known_answer() -> None:
    assert charts.nice_ticks(0, 2.78) == [0.0, 1.0, 2.0, 3.0]  # 5 intervals of 0.556 round up to steps of 1
    assert charts.nice_ticks(0, 2.78, 10) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert charts.nice_ticks(3, 3) == [1.0, 2.0, 3.0, 4.0, 5.0]  # a constant is widened by half: 1.5 .. 4.5


# --- bar chart -------------------------------------------------------------------------------------


def test_bar_lengths_are_proportional_and_whiskers_sit_on_the_interval() -> None:
    svg = charts.bar_chart_ci(
        ["a", "b", "c"], [1.0, 2.0, 4.0], [0.5, 1.5, 3.0], [1.5, 2.5, 5.0], chart_id="t", title="T", x_label="X"
    )
    root = _parse(svg)
    assert root.find(f"{SVG}title").text == "T"
    bars = [r for r in root.iter(f"{SVG}rect")]
    widths = [float(r.get("width")) for r in bars]
    assert len(widths) == 3
    assert widths[1] / widths[0] == pytest.approx(2.0, rel=1e-3)
    assert widths[2] / widths[0] == pytest.approx(4.0, rel=1e-3)
    x0 = float(bars[0].get("x"))
    unit = widths[0]  # pixels per 1.0
    whisker = [p for p in root.iter(f"{SVG}path")][2].get("d")  # the third bar's interval, 3.0 .. 5.0
    xs = [float(v) for v in re.findall(r"M([\d.]+)", whisker)]
    assert min(xs) == pytest.approx(x0 + 3.0 * unit, abs=0.02)
    assert max(xs) == pytest.approx(x0 + 5.0 * unit, abs=0.02)
    texts = _texts(root)
    assert "X" in texts and "a" in texts and "c" in texts


def test_bar_chart_escapes_names_and_keeps_the_full_name_in_the_tooltip() -> None:
    long = "a_" * 30 + "<b>"
    root = _parse(charts.bar_chart_ci([long], [1.0], chart_id="t", title="T", x_label="X"))
    tips = [t.text for t in root.iter(f"{SVG}title")]
    assert any(tip.startswith(long) for tip in tips)
    assert any(t.endswith("…") for t in _texts(root))


def test_mismatched_series_raise_report_error() -> None:
    with pytest.raises(ReportError, match="different lengths"):
        charts.bar_chart_ci(["a", "b"], [1.0], chart_id="t", title="T", x_label="X")


# --- histogram, scatter, identity ------------------------------------------------------------------


def test_histogram_marks_bins_past_the_threshold_and_counts_their_rows() -> None:
    edges = [-6.0, -5.0, -4.0, -3.0, -2.0, -1.0]
    counts = [5, 40, 30, 10, 3]
    root = _parse(
        charts.histogram_log10(
            edges, counts, chart_id="h", title="H", x_label="err", threshold=-2.0, threshold_label="tol"
        )
    )
    bars = [r for r in root.iter(f"{SVG}rect")]
    assert len(bars) == 5
    fills = [r.get("fill") for r in bars]
    assert fills == [charts.PALETTE["ok"]] * 4 + [charts.PALETTE["bad"]]
    heights = [float(r.get("height")) for r in bars]
    assert heights[1] / heights[2] == pytest.approx(40 / 30, rel=1e-3)
    texts = _texts(root)
    assert "3 rows beyond" in texts
    assert "10⁻⁴" in texts  # log10 ticks read as powers of ten


def test_histogram_rejects_edges_that_do_not_match_counts() -> None:
    with pytest.raises(ReportError, match="one more edge"):
        charts.histogram_log10([0.0, 1.0], [1, 2], chart_id="h", title="H", x_label="x")
    with pytest.raises(ReportError, match="not increasing"):
        charts.histogram_log10([0.0, 2.0, 1.0], [1, 2], chart_id="h", title="H", x_label="x")


def test_scatter_keeps_points_in_the_plot_and_caps_their_number() -> None:
    xs = [float(i) for i in range(1000)]
    ys = [float(-i) for i in range(1000)]
    root = _parse(charts.scatter_signed(xs, ys, chart_id="s", title="S", x_label="v", max_points=100))
    circles = list(root.iter(f"{SVG}circle"))
    assert len(circles) == 100
    w, h = (float(v) for v in root.get("viewBox").split()[2:])
    for c in circles:
        assert 0 <= float(c.get("cx")) <= w and 0 <= float(c.get("cy")) <= h
    # a falling relation: the rightmost point is the lowest (largest y in SVG coordinates)
    first, last = circles[0], circles[-1]
    assert float(last.get("cx")) > float(first.get("cx")) and float(last.get("cy")) > float(first.get("cy"))


def test_identity_scatter_puts_exact_estimates_on_the_diagonal() -> None:
    root = _parse(
        charts.identity_scatter(
            ["a", "b", "c"], [-1.0, 0.5, 2.0], [-1.0, 0.5, 2.0], chart_id="e", title="E", x_label="x", y_label="y"
        )
    )
    diag = [ln for ln in root.iter(f"{SVG}line") if ln.get("stroke-dasharray") == "5 3"][0]
    x1, y1, x2, y2 = (float(diag.get(k)) for k in ("x1", "y1", "x2", "y2"))
    for c in root.iter(f"{SVG}circle"):
        cx, cy = float(c.get("cx")), float(c.get("cy"))
        # on the segment from (x1, y1) to (x2, y2)
        assert (cx - x1) * (y2 - y1) - (cy - y1) * (x2 - x1) == pytest.approx(0.0, abs=1.0)


# --- heatmap pictures ------------------------------------------------------------------------------


def _decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_colormap_runs_dark_to_bright() -> None:
    rgb = images.apply_colormap(np.array([[0.0, 0.5, 1.0, float("nan")]]))[0]
    lum = rgb.astype(float) @ np.array([0.2126, 0.7152, 0.0722])
    assert lum[0] < lum[1] < lum[2]
    assert tuple(rgb[3]) == tuple(rgb[0])  # NaN counts as no attribution
    assert len(images.colormap_hex(5)) == 5


def test_heatmap_png_is_upsampled_and_bright_where_the_map_is_high() -> None:
    heat = np.zeros((8, 8))
    heat[0:2, 0:2] = 1.0
    img = np.asarray(_decode(images.data_uri(images.heatmap_png(heat.tolist()))).convert("L"), dtype=float)
    assert img.shape == (images.DISPLAY_SIZE, images.DISPLAY_SIZE)
    assert img[:20, :20].mean() > img[-40:, -40:].mean() + 100


def test_overlay_shows_the_picture_where_there_is_no_attribution() -> None:
    thumb = np.full((16, 16, 3), 200, dtype=np.uint8).tolist()
    heat = np.zeros((8, 8))
    heat[:, 4:] = 1.0
    img = np.asarray(_decode(images.data_uri(images.overlay_png(thumb, heat.tolist()))).convert("RGB"), dtype=float)
    left, right = img[:, :40], img[:, -40:]
    assert np.allclose(left, 200 * 0.85, atol=2)  # greyed picture only
    assert np.abs(right - left.mean()).mean() > 30  # colour laid over it


def test_ragged_image_arrays_raise_report_error() -> None:
    with pytest.raises(ReportError, match="re-run 'audit run'"):
        images.heatmap_png([[0.1, 0.2], [0.3]], what="heatmap of x")
    with pytest.raises(ReportError, match="expected \\(height, width, 3\\)"):
        images.thumbnail_png([[[1, 2]]])
