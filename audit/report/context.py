"""What the templates may read: :func:`build_context` turns an :class:`~audit.results.AuditRun` into plain,
already formatted values (strings, lists, dicts) and inline SVG charts.

Templates do no arithmetic and no formatting; everything a reviewer sees is decided by the section builders
(:mod:`audit.report.sections`), from the record alone (nothing is recomputed from the model or the data). The
output is deterministic: the same record always gives the same context, so ``audit render`` reproduces the
report that ``audit run`` wrote.
"""

from __future__ import annotations

from typing import Any

from audit.errors import ReportError
from audit.findings import finding_title, sort_findings
from audit.report.sections import SECTIONS, summary
from audit.report.sections.classes import MAX_CLASS_COLUMNS
from audit.report.sections.ranking import TOP_CHART_FEATURES
from audit.results import AuditRun

__all__ = ["build_context", "sort_findings", "finding_title", "TOP_CHART_FEATURES", "MAX_CLASS_COLUMNS"]


def build_context(run: AuditRun) -> dict[str, Any]:
    """Everything the report templates read, formatted, from one saved run.

    Parameters
    ----------
    run : AuditRun
        The results record (from the pipeline or :func:`audit.results.load_run`).

    Returns
    -------
    dict
        The cover's keys (:func:`audit.report.sections.summary.build`: ``title``, ``verdict``, ``counts``,
        ``facts``, ``top_features``, ``top_legend``, ``cover_picture``, ``notes``, ``generator``); one key per
        entry of :data:`audit.report.sections.SECTIONS`, its anchor (``findings``: the entries worst first, each
        with ``evidence`` pairs and an ``evidence_line``; ``ranking``, ``classes``, ``signed``, ``images``,
        ``expected``, ``noise``, ``slices``, ``drift``: None when the run has no data for them;
        ``convergence``, ``crosscheck``, ``provenance``); ``sections``, the (anchor, label) pairs of the
        present sections for the navigation; and ``page``, every section in order with its ``template`` and
        whether it is ``present``, for the page's includes. Charts are inline SVG marked safe; every other
        string is escaped by the templates.

    Raises
    ------
    ReportError
        If ``run`` is not an AuditRun or holds arrays that cannot be drawn (ragged image data, histogram
        edges that do not match their counts).
    """
    if not isinstance(run, AuditRun):
        raise ReportError(
            f"cannot render a {type(run).__name__}; pass an AuditRun (load one with audit.results.load_run)"
        )
    ctx: dict[str, Any] = summary.build(run)
    page = []
    for section in SECTIONS:
        data = section.build(run)
        ctx[section.anchor] = data
        page.append({"anchor": section.anchor, "template": section.template, "present": data is not None})
    ctx["sections"] = [(s.anchor, s.label) for s, p in zip(SECTIONS, page, strict=True) if p["present"]]
    ctx["page"] = page
    return ctx
