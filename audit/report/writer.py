"""Write the report files of one run: the page rendered once, then saved as HTML and/or printed to PDF.

Both ``audit run`` and ``audit render`` go through :func:`write_reports`, so a re-rendered report is the
same as the one the run wrote. A PDF whose text has characters no installed font covers (Chinese names without
a CJK font) is still written, with a note in the report and a warning line on stderr (:mod:`audit.report.fonts`).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath

from audit.errors import UsageError
from audit.report.fonts import font_note
from audit.report.html import atomic_write, render_html
from audit.report.pdf import html_to_pdf
from audit.results import AuditRun

__all__ = ["REPORT_FORMATS", "DEFAULT_NAMES", "parse_formats", "report_paths", "write_reports"]

REPORT_FORMATS = ("html", "pdf")
DEFAULT_NAMES = {"html": "report.html", "pdf": "report.pdf"}
_SUFFIXES = {"html": (".html", ".htm"), "pdf": (".pdf",)}


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"html,pdf"`` -> ``("html", "pdf")``: report formats in a fixed order, without repeats.

    Parameters
    ----------
    text : str or iterable of str
        A comma list (``"pdf"``, ``"html,pdf"``) or already split names.

    Returns
    -------
    tuple of str
        A non-empty subset of :data:`REPORT_FORMATS`, in that order.

    Raises
    ------
    UsageError
        For an empty list or a name that is not a report format.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [str(x).strip().lower() for x in items if str(x).strip()]
    if "json" in names:
        raise UsageError("--format json is not a report: audit.json is the saved run itself; use html, pdf or html,pdf")
    bad = [n for n in names if n not in REPORT_FORMATS]
    if bad or not names:
        raise UsageError(f"unknown --format '{','.join(bad) or text}'; use html, pdf or html,pdf")
    return tuple(f for f in REPORT_FORMATS if f in names)


def _is_plain_name(name: str) -> bool:
    return bool(name) and PurePath(name).name == name and name not in (".", "..")


def report_paths(
    directory: str | Path, formats: Iterable[str], artifacts: Mapping[str, str] | None = None
) -> dict[str, Path]:
    """Where each report goes inside ``directory``: the file names the run recorded in
    ``AuditRun.artifacts`` when they are plain names, else ``report.html`` / ``report.pdf``.

    Parameters
    ----------
    directory : str or Path
        The output folder.
    formats : iterable of str
        Report formats (see :func:`parse_formats`).
    artifacts : mapping of str to str, optional
        ``AuditRun.artifacts`` (kind -> file name next to audit.json).

    Returns
    -------
    dict of str to Path
        format -> file path.
    """
    artifacts = artifacts or {}
    out = {}
    for fmt in parse_formats(list(formats)):
        recorded = artifacts.get(fmt, "")
        name = (
            recorded if _is_plain_name(recorded) and recorded.lower().endswith(_SUFFIXES[fmt]) else DEFAULT_NAMES[fmt]
        )
        out[fmt] = Path(directory) / name
    return out


def write_reports(run: AuditRun, targets: Mapping[str, str | Path]) -> dict[str, Path]:
    """Render ``run`` once and write each requested report atomically.

    Parameters
    ----------
    run : AuditRun
        The results record.
    targets : mapping of str to path
        format (``html`` or ``pdf``) -> destination file, e.g. from :func:`report_paths`.

    Returns
    -------
    dict of str to Path
        format -> written file, in :data:`REPORT_FORMATS` order.

    Raises
    ------
    UsageError
        For an unknown format.
    ReportError
        If rendering or writing fails; files already written stay complete, nothing is half-written.
    """
    formats = parse_formats(list(targets))
    html = render_html(run)
    note = font_note(html) if "pdf" in formats else None
    if note is not None:  # a warning, never a failure: the report says it too, among its notes
        print(f"audit: warning: {note}", file=sys.stderr)
        html = render_html(dataclasses.replace(run, notes=(*run.notes, note)))
    written: dict[str, Path] = {}
    for fmt in formats:
        path = Path(targets[fmt])
        written[fmt] = atomic_write(path, html if fmt == "html" else html_to_pdf(html))
    return written
