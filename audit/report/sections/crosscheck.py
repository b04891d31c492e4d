"""Section ``crosscheck``: the native engine's attributions against Captum's on a sample of rows."""

from __future__ import annotations

from typing import Any

from audit.report._format import fmt_compact, fmt_num, fmt_pct_sig, plural
from audit.results import AuditRun

__all__ = ["build"]


def build(run: AuditRun) -> dict[str, Any]:
    """The cross-check's facts and what they mean, or why it did not run.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict
        ``skipped`` (the reason, ``""`` when it ran), and when it ran ``passed``, ``facts``, ``meaning`` and
        ``bias`` (a known Captum-side bias). Never None: every run records the cross-check, run or not.
    """
    x = run.crosscheck
    if x.skipped_reason:
        return {"skipped": x.skipped_reason}
    facts = [("Rows compared", fmt_num(x.rows))]
    rel_note = " (max|diff| ÷ the row's largest |attribution|)"
    small = ""
    if x.tol_abs or x.tol_rel:
        # one rule with two allowances: a relative difference above tol_rel passes in a row whose attributions
        # are so small that the absolute allowance decides; reading 0.0131 beside "0.001 relative" as a pass
        # against the relative tolerance is the misreading this spells out
        ta, tr = fmt_compact(x.tol_abs), fmt_compact(x.tol_rel)
        facts.append(("What decides", f"each row agrees when max|diff| ≤ {ta} + {tr} × its largest |attribution|"))
        if x.passed and x.max_rel_diff is not None and x.max_rel_diff > x.tol_rel:
            small = (f"; above {tr} only in rows whose attributions are so small that the absolute allowance {ta} "
                     "decides, and they agree")
    facts += [
        ("Largest absolute difference", fmt_num(x.max_abs_diff)),
        ("Largest relative difference", fmt_num(x.max_rel_diff) + rel_note + small),
        ("Rank agreement (Spearman ρ)", fmt_num(x.rank_spearman)),
    ]
    if x.method or x.n_steps:
        facts.append(("Captum run", f"{x.method or 'default rule'}, {fmt_num(x.n_steps)} steps"))
    if x.native_median_rel_delta or x.captum_median_rel_delta:
        facts.append(
            (
                "Median completeness error",
                f"native {fmt_pct_sig(x.native_median_rel_delta)}, Captum {fmt_pct_sig(x.captum_median_rel_delta)}",
            )
        )
    if x.captum_version:
        facts.append(("Captum version", x.captum_version))
    if x.explanation:
        meaning = x.explanation
    elif x.passed:
        meaning = (
            f"Captum's IntegratedGradients on {plural(x.rows, 'row')}, with the same baseline and steps, matches "
            f"the native engine to within {fmt_num(x.max_abs_diff)} and ranks the features the same way "
            f"(ρ = {fmt_num(x.rank_spearman)}). The attributions in this report are standard Integrated Gradients."
        )
    else:
        meaning = (
            f"Captum's IntegratedGradients on the same {plural(x.rows, 'row')} differs from the native engine by "
            f"up to {fmt_num(x.max_abs_diff)}, more than the tolerance. Treat the attributions with care and "
            "check the convergence section."
        )
    return {"skipped": "", "passed": bool(x.passed), "facts": facts, "meaning": meaning, "bias": x.captum_bias}
