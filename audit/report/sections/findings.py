"""Section ``findings``: every finding, worst first, with its title, message, features and evidence."""

from __future__ import annotations

from typing import Any

from audit.findings import finding_title, sort_findings
from audit.report._format import fmt_evidence_value, humanize_key
from audit.report.sections._evidence import present
from audit.results import AuditRun, Finding, Severity

__all__ = ["SEVERITY_LABEL", "build"]

SEVERITY_LABEL = {"fail": "Fail", "warn": "Warning", "info": "Note"}


def _entry(i: int, f: Finding) -> dict[str, Any]:
    sev = Severity(f.severity).value
    evidence = present(f.code, f.evidence or {})
    lines = evidence is not None  # labelled sentences, one per line, rather than chips
    if evidence is None:
        evidence = [(humanize_key(k), fmt_evidence_value(k, v)) for k, v in (f.evidence or {}).items()]
    return {
        "anchor": f"finding-{i + 1}",
        "code": f.code,
        "title": finding_title(f.code, f.evidence),
        "severity": sev,
        "severity_label": SEVERITY_LABEL[sev],
        "message": f.message,
        "features": list(f.features),
        "evidence": evidence,
        "evidence_lines": lines,
        "evidence_line": "; ".join(f"{k}: {v}" for k, v in evidence),
    }


def build(run: AuditRun) -> list[dict[str, Any]]:
    """The findings of ``run`` in :func:`audit.findings.sort_findings` order, ready for the templates.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    list of dict
        One entry per finding (``anchor``, ``code``, ``title``, ``severity``, ``severity_label``, ``message``,
        ``features``, ``evidence`` pairs and the ``evidence_line``). Never None: the section always shows,
        with a "no findings" line when the list is empty. The cover's list at a glance reads the same entries.
    """
    return [_entry(i, f) for i, f in enumerate(sort_findings(run.findings))]
