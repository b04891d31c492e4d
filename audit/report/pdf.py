"""PDF rendering: WeasyPrint applied to the same HTML page, laid out for paper by ``print.css``.

There is no second layout: the PDF is the report page printed (A4, page numbers, the summary as title
page). WeasyPrint may only read ``data:`` URLs, so rendering never touches the network or the disk.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from audit.errors import ReportError
from audit.report.html import atomic_write, render_html
from audit.results import AuditRun

__all__ = ["html_to_pdf", "render_pdf", "write_pdf"]


def _url_fetcher() -> Any:
    """A fetcher that serves ``data:`` URLs only (the report embeds everything it shows)."""
    from weasyprint import urls

    if hasattr(urls, "URLFetcher"):  # WeasyPrint >= 68
        return urls.URLFetcher(allowed_protocols=("data",), timeout=1)

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:  # older WeasyPrint: a plain function
        if not url.startswith("data:"):
            raise ValueError(f"the report may not load '{url}'")
        return urls.default_url_fetcher(url, *args, **kwargs)

    return fetch


class _Quiet(logging.Filter):
    """WeasyPrint logs every CSS property it skips; those are layout notes, not user-facing problems."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def html_to_pdf(html: str) -> bytes:
    """Lay out a report page for paper.

    Parameters
    ----------
    html : str
        A page from :func:`audit.report.html.render_html`.

    Returns
    -------
    bytes
        The PDF file contents.

    Raises
    ------
    ReportError
        If WeasyPrint is missing or fails.
    """
    try:
        import weasyprint
    except ImportError as e:  # weasyprint needs Pango; a broken system install shows up here
        raise ReportError(
            f"cannot make a PDF: WeasyPrint is not usable ({e}); install its system libraries "
            "(Pango) or use --format html"
        ) from None
    logger = logging.getLogger("weasyprint")
    quiet = _Quiet()
    logger.addFilter(quiet)
    try:
        pdf = weasyprint.HTML(string=html, base_url=None, url_fetcher=_url_fetcher()).write_pdf()
    except Exception as e:  # noqa: BLE001 - any layout failure becomes one line for the user
        raise ReportError(f"the PDF could not be laid out ({type(e).__name__}: {e}); use --format html") from None
    finally:
        logger.removeFilter(quiet)
    if not pdf:
        raise ReportError("the PDF came out empty; use --format html and report this as a bug")
    return pdf


def render_pdf(run: AuditRun) -> bytes:
    """The report of one run as PDF bytes (the HTML page, printed).

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    bytes
        The PDF file contents.
    """
    return html_to_pdf(render_html(run))


def write_pdf(run: AuditRun, path: str | Path, html: str | None = None) -> Path:
    """Render ``run`` as PDF and write it to ``path`` atomically.

    Parameters
    ----------
    run : AuditRun
        The results record.
    path : str or Path
        Where to write (usually ``report.pdf`` next to ``audit.json``).
    html : str, optional
        The page already rendered from ``run`` by :func:`~audit.report.html.render_html`, to avoid
        rendering it twice when writing both formats.

    Returns
    -------
    Path
        ``path``. On failure nothing is written and an existing file stays as it was.
    """
    pdf = html_to_pdf(html if html is not None else render_html(run))
    return atomic_write(path, pdf)
