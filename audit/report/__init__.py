"""The report layer: a saved :class:`~audit.results.AuditRun` in, a self-contained HTML page and its PDF out.

Never imports torch or Captum and never recomputes: ``audit render audit.json`` works without the model.
Templates live in the top-level ``templates/`` folder (package ``audit.templates`` once installed).
"""

from audit.report.context import build_context, finding_title, sort_findings
from audit.report.html import atomic_write, render_html, templates_root, write_html
from audit.report.pdf import html_to_pdf, render_pdf, write_pdf
from audit.report.writer import DEFAULT_NAMES, REPORT_FORMATS, parse_formats, report_paths, write_reports

__all__ = [
    "build_context",
    "finding_title",
    "sort_findings",
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
