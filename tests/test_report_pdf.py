"""The PDF: WeasyPrint on the same page. Text is extracted (pypdf) and pages are turned into images
(poppler's pdftoppm) to check they are not blank and that nothing runs off the right edge."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from audit.errors import ReportError
from audit.report import html_to_pdf, render_html, write_pdf
from audit.report.context import finding_title
from audit.results import AuditRun
from tests.report_fixtures import ESCAPE_ME, make_image_run, make_regression_run

needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None and not os.environ.get("CI"),  # in CI a missing tool fails, never skips
    reason="poppler's pdftoppm is not installed",
)

DPI = 40
RIGHT_MARGIN_MM = 14  # print.css: @page margin 16mm 14mm 18mm 14mm


@pytest.fixture(scope="module")
def regression() -> AuditRun:
    return make_regression_run()


@pytest.fixture(scope="module")
def regression_pdf(regression: AuditRun, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    start = time.process_time()
    write_pdf(regression, path)
    return path, time.process_time() - start


@pytest.fixture(scope="module")
def pages_text(regression_pdf: tuple[Path, float]) -> list[str]:
    reader = PdfReader(str(regression_pdf[0]))
    return [" ".join((p.extract_text() or "").split()) for p in reader.pages]


def _rasterise(pdf: Path, out: Path) -> list[np.ndarray]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", str(pdf), str(out / "page")], check=True, timeout=120)
    return [np.asarray(Image.open(p).convert("L"), dtype=np.float64) for p in sorted(out.glob("page-*.png"))]


def _ink_right_of_content(page: np.ndarray) -> int:
    """Dark pixels in the right margin (content that ran off the content box)."""
    margin_px = int(RIGHT_MARGIN_MM / 25.4 * DPI) - 2
    strip = page[:, page.shape[1] - margin_px :]
    return int((strip < 200).sum())


def test_pdf_text_has_the_verdict_findings_and_top_features(regression: AuditRun, pages_text: list[str]) -> None:
    first = pages_text[0]
    assert "FAIL" in first and "Do not ship as is" in first
    for f in regression.findings:
        assert finding_title(f.code) in first  # the title page lists every finding
    text = " ".join(pages_text)
    top5 = [s.name for s in sorted(regression.features, key=lambda s: s.rank)[:5]]
    for name in top5:
        assert name in first
    for f in regression.findings:
        assert " ".join(f.message.split()) in text
    assert ESCAPE_ME in text  # escaped in HTML, shown literally on paper
    assert "x_099" in text  # the ranking table reaches the 100th feature


def test_pdf_has_a_title_page_and_page_numbers(pages_text: list[str]) -> None:
    n = len(pages_text)
    assert 6 <= n <= 20
    for i, text in enumerate(pages_text, start=1):
        assert f"Page {i} of {n}" in text
    assert "Key facts".upper() in pages_text[0].upper()
    assert "Global ranking" not in pages_text[0]  # the summary stands alone on page 1
    assert pages_text[1].startswith("Findings")


def test_pdf_metadata_and_vector_charts(regression_pdf: tuple[Path, float]) -> None:
    reader = PdfReader(str(regression_pdf[0]))
    assert reader.metadata.title == "FAIL · Model audit: churn.pt"
    # charts are inline SVG, so the PDF holds vector paths, not raster images: they print sharp
    assert all(len(p.images) == 0 for p in reader.pages)


def test_pdf_renders_100_features_in_seconds(regression_pdf: tuple[Path, float]) -> None:
    path, cpu_seconds = regression_pdf
    assert cpu_seconds < 30, f"PDF for 100 features took {cpu_seconds:.1f} s of CPU"
    assert path.stat().st_size < 3 * 1024 * 1024


@needs_pdftoppm
def test_pdf_pages_are_not_blank_and_nothing_runs_off_the_right_edge(
    regression_pdf: tuple[Path, float], tmp_path: Path
) -> None:
    pages = _rasterise(regression_pdf[0], tmp_path)
    assert len(pages) == len(PdfReader(str(regression_pdf[0])).pages)
    for i, page in enumerate(pages, start=1):
        body = page[: int(page.shape[0] * 0.9)]  # above the footer
        assert (body < 128).mean() > 0.002, f"page {i} is blank"
        assert _ink_right_of_content(page) == 0, f"page {i} has content in the right margin"
    # the title page carries the red verdict banner
    first = np.asarray(Image.open(sorted(tmp_path.glob("page-*.png"))[0]).convert("L"))
    assert (first[: first.shape[0] // 3] < 90).mean() > 0.01


@needs_pdftoppm
def test_right_edge_check_catches_a_page_that_overflows(tmp_path: Path) -> None:
    """Planted case: an unbreakable line wider than the page must be seen by the check above."""
    wide = "<html><body><pre style='font-size:14pt'>" + "W" * 300 + "</pre></body></html>"
    html = render_html(make_regression_run()).split("<body", 1)[0] + wide.split("<html>", 1)[1]
    pdf = tmp_path / "wide.pdf"
    pdf.write_bytes(html_to_pdf(html))
    pages = _rasterise(pdf, tmp_path / "png")
    assert _ink_right_of_content(pages[0]) > 0


def test_image_run_pdf_embeds_the_heatmaps() -> None:
    reader = PdfReader(io.BytesIO(html_to_pdf(render_html(make_image_run()))))
    n_images = sum(len(p.images) for p in reader.pages)
    assert n_images >= 3 + 4 * 2  # mean map, class maps, thumbnails and overlays
    text = " ".join(p.extract_text() for p in reader.pages)
    assert "img_001.png" in text and "Attribution sits outside the object" in text


def test_failed_pdf_leaves_the_old_file_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import weasyprint

    target = tmp_path / "report.pdf"
    target.write_bytes(b"%PDF old")

    class Broken:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("pango exploded")

    monkeypatch.setattr(weasyprint, "HTML", Broken)
    with pytest.raises(ReportError, match="PDF could not be laid out.*use --format html"):
        write_pdf(make_regression_run(), target)
    assert target.read_bytes() == b"%PDF old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]
