"""The report layer: a saved :class:`~audit.results.AuditRun` in, a self-contained HTML page and its PDF out.

Never imports torch or Captum and never recomputes: ``audit render audit.json`` works without the model.
Templates live in the top-level ``templates/`` folder (package ``audit.templates`` once installed); the page's
sections are listed once, in :data:`SECTIONS` (:mod:`audit.report.sections`). Finding titles and their order
come from :mod:`audit.findings` (:func:`finding_title`, :func:`sort_findings`).
"""

from audit.findings import finding_title, sort_findings
from audit.report.context import build_context
from audit.report.html import atomic_write, render_html, templates_root, write_html
from audit.report.pdf import html_to_pdf, render_pdf, write_pdf
from audit.report.sections import SECTIONS, Section
from audit.report.writer import DEFAULT_NAMES, REPORT_FORMATS, parse_formats, report_paths, write_reports

__all__ = [
    "build_context",
    "finding_title",
    "sort_findings",
    "SECTIONS",
    "Section",
    "render_html",
    "write_html",
    "atomic_write",
    "templates_root",
    "html_to_pdf",
    "render_pdf",
    "write_pdf",
    "REPORT_FORMATS",
    "DEFAULT_NAMES",
    "parse_formats",
    "report_paths",
    "write_reports",
]
