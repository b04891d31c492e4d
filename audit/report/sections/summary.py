"""The cover (not a numbered section): verdict banner, key facts, top features, findings at a glance, notes.

What the run audited (rows and features, or images and classes) comes from the modality's :class:`Scope`
provider (:data:`SCOPES`); a run that none of them claims is described by its rows and features.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from audit import __version__
from audit.report._format import fmt_date, fmt_num, fmt_pct, fmt_pct_sig, plural, short_hash
from audit.report.sections import findings as findings_section
from audit.report.sections import images, text
from audit.report.sections._common import FLAG_LEGEND, Scope, feature_flags
from audit.results import AuditRun

__all__ = ["TOP_SUMMARY_FEATURES", "SCOPES", "build"]

TOP_SUMMARY_FEATURES = 5
# modality-specific descriptions of what was audited, tried in order; None means "not this kind of run"
SCOPES: tuple[Callable[[AuditRun], Scope | None], ...] = (images.scope, text.scope)

_VERDICT_HEADLINE = {
    "fail": "Do not ship as is",
    "warn": "Review before shipping",
    "pass": "No problems found",
}


def _table_scope(run: AuditRun) -> Scope:
    """The default: a run over rows of feature columns."""
    n_feat = run.n_features or len(run.features)
    return Scope(
        facts=[("Rows audited", fmt_num(run.n_rows)), ("Features", fmt_num(n_feat))],
        audited=f"{plural(n_feat, 'feature')} audited on {plural(run.n_rows, 'row')}",
    )


def _scope(run: AuditRun) -> Scope:
    for provider in SCOPES:
        found = provider(run)
        if found is not None:
            return found
    return _table_scope(run)


def _facts(run: AuditRun, scope: Scope) -> list[dict[str, str]]:
    c, x = run.convergence, run.crosscheck
    task = run.task.replace("_", " ")
    if run.explained_output:
        task += f" (explains {run.explained_output})"
    facts = [{"label": "Task", "value": task, "status": ""}]
    if run.task_reason:
        facts.append({"label": "Task chosen", "value": run.task_reason, "status": ""})
    if run.class_names:
        facts.append({"label": "Classes", "value": ", ".join(run.class_names), "status": ""})
    if run.target_col:
        facts.append({"label": "Target", "value": run.target_col, "status": ""})
    facts += [{"label": label, "value": value, "status": ""} for label, value in scope.facts]
    baseline = run.baseline + (" (default)" if run.baseline_default else "")
    facts.append({"label": "Baseline", "value": baseline, "status": ""})
    n_rows = c.n_rows or run.n_rows
    conv_ok = c.n_not_converged == 0
    conv = f"median error {fmt_pct_sig(c.median_rel_delta)}"
    if n_rows:
        conv += f"; {c.n_not_converged:,} of {n_rows:,} rows above {fmt_pct(c.tolerance, 2, compact=True)}"
    facts.append({"label": "Convergence", "value": conv, "status": "ok" if conv_ok else "bad"})
    if x.skipped_reason:
        facts.append({"label": "Captum cross-check", "value": "not run", "status": ""})
    else:
        verdict = "agrees" if x.passed else "disagrees"
        facts.append(
            {
                "label": "Captum cross-check",
                "value": f"{verdict} on {plural(x.rows, 'row')} (rank ρ = {fmt_num(x.rank_spearman)})",
                "status": "ok" if x.passed else "bad",
            }
        )
    model = PurePath(run.provenance.model_path).name if run.provenance.model_path else "n/a"
    facts.append(
        {"label": "Model", "value": f"{model} · sha256 {short_hash(run.provenance.model_sha256)}", "status": ""}
    )
    facts.append({"label": "Created", "value": fmt_date(run.provenance.created_at), "status": ""})
    return facts


def _headline(run: AuditRun, findings: list[dict[str, Any]], scope: Scope) -> str:
    worst = next((f for f in findings if f["severity"] != "info"), None)
    if run.verdict.value != "pass" and worst is not None:
        return worst["message"]
    text = scope.audited
    extra = []
    if run.convergence.n_not_converged == 0:
        extra.append("attributions converged")
    if not run.crosscheck.skipped_reason and run.crosscheck.passed:
        extra.append("they agree with Captum")
    if extra:
        text += "; " + " and ".join(extra)
    return text + "."


def build(run: AuditRun) -> dict[str, Any]:
    """The cover's values.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict
        ``title``, ``verdict`` (value, label, headline, lead, counts line), ``counts``, ``facts``,
        ``top_features``, ``top_legend``, ``cover_picture`` (a ``data:`` URI or ``""``), ``notes`` and
        ``generator``. The findings at a glance read the ``findings`` section's entries.
    """
    findings = findings_section.build(run)
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("fail", "warn", "info")}
    count_parts = [
        plural(counts[sev], word)
        for sev, word in (("fail", "failure"), ("warn", "warning"), ("info", "note"))
        if counts[sev]
    ] or ["no findings"]
    flags = feature_flags(run)
    ranked = sorted(run.features, key=lambda s: (s.rank, s.name))
    top_features = [
        {
            "rank": s.rank,
            "name": s.name,
            "share": fmt_pct(s.share),
            "mean_abs": fmt_num(s.mean_abs),
            "flag": flags.get(s.name, ""),
        }
        for s in ranked[:TOP_SUMMARY_FEATURES]
    ]
    scope = _scope(run)
    verdict = run.verdict.value
    model_name = PurePath(run.provenance.model_path).name if run.provenance.model_path else ""
    return {
        "title": f"Model audit: {model_name}" if model_name else "Model audit",
        "verdict": {
            "value": verdict,
            "label": verdict.upper(),
            "headline": _VERDICT_HEADLINE[verdict],
            "lead": _headline(run, findings, scope),
            "counts": " · ".join(count_parts),
        },
        "counts": counts,
        "facts": _facts(run, scope),
        "top_features": top_features,
        "top_legend": [
            (k, FLAG_LEGEND[k]) for k in ("fail", "warn", "noise") if any(t["flag"] == k for t in top_features)
        ],
        "cover_picture": scope.picture,
        "notes": list(run.notes),
        "generator": f"audit {__version__}, results schema v{run.schema_version}",
    }
