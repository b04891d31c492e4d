"""Reports that hold any name: long and Chinese feature names fit the charts, the cover's top list, the notebook
card and the terminal summary, and a PDF whose characters no installed font covers is written with a warning
(one stderr line and a note in the report), never a failure."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from audit.report import charts, render_html
from audit.report import fonts as report_fonts
from audit.report.card import summary_card
from audit.report.textwidth import display_width, pad_width, truncate_width
from audit.report.writer import write_reports
from tests.report_fixtures import CJK_NAMES, LEAK, make_cjk_run

LONG = CJK_NAMES[LEAK]


def _texts(svg: str, anchor: str) -> list[tuple[float, str]]:
    found = re.findall(rf'<text x="([\d.]+)" y="[\d.]+" text-anchor="{anchor}"[^>]*>([^<]*)</text>', svg)
    return [(float(x), html_lib.unescape(t)) for x, t in found]


def test_display_width_counts_wide_characters_twice():
    assert display_width("age") == 3 and display_width("在网时长") == 8 and display_width("e\u0301") == 1
    assert truncate_width(LONG, 10) == "客户流失…" and display_width(truncate_width(LONG, 10)) <= 10
    assert pad_width("在网", 6) + "|" == "在网  |" and pad_width("ab", 4, ">") == "  ab"


def test_bar_chart_label_fits_its_margin_and_keeps_the_full_name_as_tooltip():
    svg = charts.bar_chart_ci([LONG, "age"], [1.0, 0.5], [0.9, 0.4], [1.1, 0.6], chart_id="c", title="t",
                              x_label="x")  # fmt: skip
    labels = [(x, t) for x, t in _texts(svg, "end") if t != "age"]
    assert len(labels) == 1
    x, shown = labels[0]
    assert shown.endswith("…") and x - 6.4 * display_width(shown) >= 0  # the start is not cut off
    assert f"<title>{LONG}: " in svg


def test_direction_plot_title_and_axis_label_fit_the_panel():
    name = CJK_NAMES["monthly_spend"]
    svg = charts.scatter_signed([0.0, 1.0], [0.0, 1.0], chart_id="s", title=name, x_label=f"value of {name}")
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
    title = re.search(r'<text x="0" y="14"[^>]*>([^<]*)</text>', svg).group(1)
    assert 8 * display_width(title) <= width and f"<title id=\"s-t\">{name}</title>" in svg
    x_label = [t for _, t in _texts(svg, "middle") if t.startswith("value of")][0]
    assert x_label.endswith("…") and 6.6 * display_width(x_label) <= width


def test_top_list_number_stays_with_a_wrapped_name_and_captions_wrap():
    page = render_html(make_cjk_run())
    item = re.search(r'<ol class="top-list">\s*<li>(.*?)</li>', page, re.S).group(1)
    assert item.index('class="top-share"') < item.index('class="top-name')  # float first, name flows inline
    css = page.split("</style>", 1)[0]
    assert re.search(r"\.panel figcaption \{[^}]*overflow-wrap: anywhere", css)


def test_card_table_stays_inside_its_border_with_its_own_padding():
    card = summary_card(make_cjk_run())
    assert "table-layout:fixed" in card and "width:100%" in card
    name_cell = re.search(rf"<td style='([^']*)'>{re.escape(html_lib.escape(LONG))}</td>", card)
    assert name_cell and "overflow-wrap:anywhere" in name_cell.group(1) and "padding:2px 8px" in name_cell.group(1)


def test_terminal_summary_aligns_cjk_names(capsys):
    from audit.cli._execute import _summary

    run = make_cjk_run()
    _summary(run, {}, 1.0)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if re.match(r"\s+\d+\. ", ln)]
    assert len(lines) == 5
    # the value column starts at the same display column on every line, whatever the script of the name
    starts = {display_width(ln[: ln.index("  [")]) for ln in lines}  # the end of the right-aligned value field
    assert len(starts) == 1, lines


def test_font_note_names_characters_no_font_covers():
    latin_only = ((0x20, 0x7E), (0xA0, 0x2FFF))
    page = f"<html><style>.x{{}}</style><body><p>{LONG} &amp; café</p></body></html>"
    note = report_fonts.font_note(page, latin_only)
    assert note is not None and note.startswith("the PDF shows boxes for ") and "e.g. '客户流失前剩余天'" in note
    assert "apt-get install fonts-noto-cjk" in note
    assert report_fonts.font_note(page, ((0x20, 0x10FFFF),)) is None  # every character covered
    assert report_fonts.font_note("<p>plain ascii</p>", latin_only) is None


def test_pdf_without_a_cjk_font_is_written_with_a_warning(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(report_fonts, "covered_ranges", lambda: ((0x20, 0x7E), (0xA0, 0x2FFF)))
    written = write_reports(make_cjk_run(), {"html": tmp_path / "r.html", "pdf": tmp_path / "r.pdf"})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("audit: warning: the PDF shows boxes for "), err
    assert written["pdf"].stat().st_size > 10_000
    assert "the PDF shows boxes for" in (tmp_path / "r.html").read_text()  # among the report's notes
    monkeypatch.setattr(report_fonts, "covered_ranges", lambda: ((0x20, 0x10FFFF),))
    write_reports(make_cjk_run(), {"html": tmp_path / "ok.html"})
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def cjk_pdf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cjk") / "report.pdf"
    write_reports(make_cjk_run(), {"pdf": path})
    return path


def test_cjk_pdf_pages_keep_inside_the_right_margin(cjk_pdf: Path, tmp_path: Path):
    """Page images (poppler): the direction-plot captions and titles used to run into the right margin."""
    from tests.test_report_pdf import _ink_right_of_content, _rasterise, needs_pdftoppm

    if needs_pdftoppm.args[0]:
        pytest.skip("poppler's pdftoppm is not installed")
    pages = _rasterise(cjk_pdf, tmp_path)
    assert pages and all(_ink_right_of_content(p) == 0 for p in pages), [_ink_right_of_content(p) for p in pages]


def test_cjk_report_screenshot_has_nothing_past_the_content(tmp_path: Path):
    """Chromium at 1280 px: the page content is 72rem wide and centred, so the right 40 px stay page-white."""
    from tests.test_report_browser import CHROMIUM, WIDTH, _chromium

    if CHROMIUM is None:
        import os

        if os.environ.get("CI"):
            raise AssertionError("chromium is not installed (CI installs it)")
        pytest.skip("Debian's chromium is not installed")
    page = tmp_path / "report.html"
    page.write_text(render_html(make_cjk_run()))
    shot = tmp_path / "shot.png"
    result = _chromium(page, tmp_path / "profile", f"--screenshot={shot}")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.int32)
    assert img.shape[1] == WIDTH and img.std() > 10
    assert int((img[:, -40:] < 200).sum()) == 0
